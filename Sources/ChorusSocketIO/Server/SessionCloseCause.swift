import ChorusWebSocket

/// Why the server ends a whole Engine.IO session (every namespace of the connection): what its
/// sockets are told (`DisconnectReason`, the reference server's strings, also the close frame's
/// reason) and the WebSocket close code, decided here in one switch each instead of at the places
/// that end a session (EngineSession, Socket).
enum SessionCloseCause: CaseIterable, Equatable {
    /// The client sent an Engine.IO close packet.
    case clientClosed
    /// A message over `maxPayload` (RFC 6455 §7.4.1: 1009).
    case messageTooLarge
    /// Not a valid Engine.IO/Socket.IO packet.
    case invalidPacket
    /// A packet wrong for its namespace's state (socket.io's `Client.ondecoded` "invalid state").
    case invalidState
    /// More packets or bytes than allowed queued behind a CONNECT parked on an asynchronous middleware.
    case tooManyPendingPackets
    /// No pong within `pingTimeout`.
    case pingTimeout
    /// No namespace CONNECT within `connectTimeout`.
    case connectTimeout
    /// The application called `socket.disconnect(close: true)`.
    case closedByServer

    var disconnectReason: DisconnectReason {
        switch self {
        case .clientClosed: .forcedClose
        case .messageTooLarge, .tooManyPendingPackets: .transportError
        case .invalidPacket: .parseError
        case .invalidState, .closedByServer: .forcedServerClose
        case .pingTimeout: .pingTimeout
        case .connectTimeout: .transportClose
        }
    }

    /// §7.4.1: 1000 for an ending either side asked for, 1001 for a peer gone silent, 1009 for a
    /// message too big, 1008 for a client that broke Socket.IO's rules.
    var closeCode: WebSocketCloseCode {
        switch self {
        case .clientClosed, .closedByServer: .normalClosure
        case .pingTimeout: .goingAway
        case .messageTooLarge: .messageTooBig
        case .invalidPacket, .invalidState, .tooManyPendingPackets, .connectTimeout: .policyViolation
        }
    }
}
