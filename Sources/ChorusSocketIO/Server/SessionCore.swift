// The pure part of one Engine.IO/Socket.IO session over WebSocket: frame decoding, attachment
// reassembly, heartbeat timing. No I/O; the server feeds it frames and clock ticks and acts on
// what it returns. Unit-tested without sockets.

import ChorusJSON

/// Why a socket left its namespace (the strings Socket.IO's server reports).
public enum DisconnectReason: String, Sendable, Hashable {
    /// The client sent a DISCONNECT packet for the namespace.
    case clientNamespaceDisconnect = "client namespace disconnect"
    /// The server called `socket.disconnect()`.
    case serverNamespaceDisconnect = "server namespace disconnect"
    /// The client did not answer a ping within pingTimeout.
    case pingTimeout = "ping timeout"
    /// The WebSocket closed (client closed it or vanished).
    case transportClose = "transport close"
    /// The WebSocket failed (e.g. a message over maxPayload).
    case transportError = "transport error"
    /// The client sent something that is not a valid Engine.IO/Socket.IO packet.
    case parseError = "parse error"
    /// The client sent an Engine.IO close packet.
    case forcedClose = "forced close"
    /// The server closed the whole connection (`socket.disconnect(close: true)`).
    case forcedServerClose = "forced server close"
    case serverShuttingDown = "server shutting down"

    /// The client did not leave on purpose: connection state recovery keeps its session (the
    /// reference's RECOVERABLE_DISCONNECT_REASONS).
    public var isRecoverable: Bool {
        switch self {
        case .transportError, .transportClose, .forcedClose, .pingTimeout, .serverShuttingDown, .forcedServerClose: true
        case .clientNamespaceDisconnect, .serverNamespaceDisconnect, .parseError: false
        }
    }
}

/// What a decoded frame means for the session.
public enum SessionInput: Sendable, Equatable {
    case connect(namespace: String, auth: JSONValue?)
    case disconnect(namespace: String)
    case event(namespace: String, name: String, args: [JSONValue], ackId: Int?)
    case ack(namespace: String, id: Int, args: [JSONValue])
    /// Engine.IO pong: the heartbeat is answered.
    case pong
    /// Engine.IO ping from the client (only "probe" in v4): answer with pong + same data.
    case ping([UInt8])
    /// Engine.IO close packet.
    case close
    /// Nothing for the application (noop, or a binary packet awaiting its attachments).
    case none
    /// A protocol violation: the connection must be closed with `parseError`.
    case invalid(String)
    /// A message over maxPayload: the connection is closed with 1009 (`transportError`).
    case tooLarge
}

/// What the heartbeat wants done at a tick.
public enum HeartbeatAction: Sendable, Equatable {
    case none
    case sendPing
    case timeout
}

/// Engine.IO v4 heartbeat (server-driven): ping every `interval`, expect a pong within `timeout`.
/// The timing is the server's, passed in: a session keeps only its deadline (16 bytes less per client).
public struct Heartbeat: Sendable, Equatable {
    public struct Timing: Sendable, Equatable {
        public let interval: UInt64
        public let timeout: UInt64

        /// Nanoseconds.
        public init(interval: UInt64, timeout: UInt64) {
            self.interval = interval
            self.timeout = timeout
        }
    }

    /// When the next ping is due (if not awaiting a pong) or when the pong is overdue.
    public private(set) var deadline: UInt64
    public private(set) var awaitingPong = false

    /// Times in nanoseconds (monotonic).
    public init(_ timing: Timing, now: UInt64) {
        self.deadline = now &+ timing.interval
    }

    public mutating func tick(now: UInt64, _ timing: Timing) -> HeartbeatAction {
        guard now >= deadline else { return .none }
        if awaitingPong { return .timeout }
        awaitingPong = true
        deadline = now &+ timing.timeout
        return .sendPing
    }

    public mutating func pongReceived(now: UInt64, _ timing: Timing) {
        guard awaitingPong else { return }
        awaitingPong = false
        deadline = now &+ timing.interval
    }
}

/// Decodes the frames of one WebSocket connection into `SessionInput`s.
public struct SessionCore: Sendable {
    public var decoder: SocketIODecoder
    public let maxPayload: Int

    public init(maxPayload: Int = 1_000_000, maxAttachments: Int = 10) {
        self.maxPayload = maxPayload
        self.decoder = SocketIODecoder(options: .init(maxAttachments: maxAttachments))
    }

    public mutating func receive(text: UnsafeRawBufferPointer) -> SessionInput {
        if text.count > maxPayload { return .tooLarge }
        let packet: EngineIOPacket
        if let payload = EngineIOPacket.messagePayload(ofText: text) {
            do {
                guard let p = try decoder.decode(text: payload) else { return .none }
                return Self.input(for: p)
            } catch {
                return .invalid("invalid Socket.IO packet: \(error)")
            }
        }
        do { packet = try EngineIOPacket.decode(text: text) } catch {
            return .invalid("invalid Engine.IO packet: \(error)")
        }
        switch packet {
        case .pong: return .pong
        case .ping(let d): return .ping(d)
        case .close: return .close
        case .noop: return .none
        case .open, .upgrade, .message, .binaryMessage:
            return .invalid("unexpected Engine.IO packet \(packet.type)")
        }
    }

    public mutating func receive(text: [UInt8]) -> SessionInput {
        text.withUnsafeBytes { receive(text: $0) }
    }

    public mutating func receive(text: String) -> SessionInput { receive(text: Array(text.utf8)) }

    public mutating func receive(binary: UnsafeRawBufferPointer) -> SessionInput {
        if binary.count > maxPayload { return .tooLarge }
        do {
            guard let p = try decoder.decode(binary: Array(binary)) else { return .none }
            return Self.input(for: p)
        } catch {
            return .invalid("invalid attachment: \(error)")
        }
    }

    public mutating func receive(binary: [UInt8]) -> SessionInput {
        binary.withUnsafeBytes { receive(binary: $0) }
    }

    static func input(for p: SocketIOPacket) -> SessionInput {
        switch p.type {
        case .connect:
            return .connect(namespace: p.namespace, auth: p.data)
        case .disconnect:
            return .disconnect(namespace: p.namespace)
        case .event, .binaryEvent:
            guard let e = p.event else { return .invalid("event without a name") }
            return .event(namespace: p.namespace, name: e.name, args: Array(e.args), ackId: p.ackId)
        case .ack, .binaryAck:
            guard let id = p.ackId else { return .invalid("ack without id") }
            return .ack(namespace: p.namespace, id: id, args: p.data?.arrayValue ?? [])
        case .connectError:
            return .invalid("CONNECT_ERROR from a client")
        }
    }
}
