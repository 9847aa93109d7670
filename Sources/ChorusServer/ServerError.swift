import ChorusWebSocket

// Every reason the server itself ends a connection or refuses a request, and what the peer is
// told, chosen here in one switch each instead of where the reason arises. The protocol layer's
// errors (`WebSocketProtocolError`, `HTTPParseError`) carry the code or status their RFC gives and
// pass through unchanged.

/// Why the server closes an open WebSocket connection: the close code (RFC 6455 §7.4.1) and reason.
enum CloseReason: Error, Equatable {
    /// The peer broke the protocol, or sent a message over its limit.
    case protocolViolation(WebSocketProtocolError)
    /// A slow consumer over `maxBackpressure`, under the `close` policy.
    case backpressureLimit
    /// A message not complete within `messageTimeout` of its first byte.
    case messageTimeout
    /// Nothing heard within `idleTimeout`.
    case idleTimeout
    /// Over `messageRate` or `byteRate`, under the `close` policy.
    case rateLimited
    /// `maxLoopQueue` broadcasts were already waiting for the loop, under the `close` policy.
    case overloaded
    case shuttingDown

    var code: WebSocketCloseCode {
        switch self {
        case .protocolViolation(let error): error.closeCode
        case .backpressureLimit, .messageTimeout, .rateLimited: .policyViolation
        case .idleTimeout, .shuttingDown: .goingAway
        case .overloaded: .tryAgainLater
        }
    }

    /// The close frame's reason (constant text: repeats share one rate-limit window in the log).
    var reason: String {
        switch self {
        case .protocolViolation(let error): error.reason
        case .backpressureLimit: "backpressure limit exceeded"
        case .messageTimeout: "message timeout"
        case .idleTimeout: "idle timeout"
        case .rateLimited: "rate limit exceeded"
        case .overloaded: "server overloaded"
        case .shuttingDown: "server shutting down"
        }
    }

    /// Whether the connection is failed (RFC 6455 §7.1.7: whatever the peer sends after the close
    /// is ignored) rather than closed with a handshake the peer completes.
    var failsConnection: Bool {
        switch self {
        case .protocolViolation, .messageTimeout, .rateLimited: true
        case .backpressureLimit, .idleTimeout, .overloaded, .shuttingDown: false
        }
    }
}

/// Why the server refuses an HTTP request before any upgrade: the status and body it answers.
enum RequestRefusal: Error, Equatable {
    /// An unreadable request head (400, 431).
    case malformedRequest(HTTPParseError)
    /// A request head or body stalled past the handshake timeout (RFC 9110 §15.5.9).
    case requestTimeout
    case shuttingDown
    /// `maxConnections` reached.
    case connectionLimit
    /// `maxConnectionsPerIP` reached.
    case perAddressConnectionLimit

    var response: HTTPResponse {
        switch self {
        case .malformedRequest(let error): .text(error.status, error.message + "\n")
        case .requestTimeout: .text(408, "request timeout\n")
        case .shuttingDown: .text(503, "server shutting down\n")
        case .connectionLimit: .text(503, "connection limit reached\n")
        case .perAddressConnectionLimit: .text(503, "per-address connection limit reached\n")
        }
    }
}
