// ChorusWebSocket
