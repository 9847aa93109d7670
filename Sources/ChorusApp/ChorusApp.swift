// ChorusApp
