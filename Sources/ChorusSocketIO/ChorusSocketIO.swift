// ChorusSocketIO
