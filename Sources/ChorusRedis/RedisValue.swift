// Redis replies as Swift values (copied out of hiredis's reply tree) and the errors a command can end with.
import CHiredis

/// One RESP2 reply. A top-level error reply is delivered as `RedisError.server`; `.error` appears
/// only nested inside an array (e.g. in the replies of `EXEC`).
public enum RedisValue: Sendable, Equatable, CustomStringConvertible {
    /// A bulk string: arbitrary bytes.
    case bulk([UInt8])
    /// A simple string such as `OK` or `PONG`.
    case status(String)
    case integer(Int64)
    case array([RedisValue])
    /// The null bulk string or null array.
    case null
    case error(String)

    /// The bytes of a bulk or status reply.
    public var bytes: [UInt8]? {
        switch self {
        case .bulk(let b): b
        case .status(let s): Array(s.utf8)
        default: nil
        }
    }

    public var integer: Int64? {
        if case .integer(let i) = self { return i }
        return nil
    }

    public var array: [RedisValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    public var description: String {
        switch self {
        case .bulk(let b): "\"\(String(decoding: b, as: UTF8.self))\""
        case .status(let s): s
        case .integer(let i): "(integer) \(i)"
        case .array(let a): "[" + a.map(\.description).joined(separator: ", ") + "]"
        case .null: "(nil)"
        case .error(let e): "(error) \(e)"
        }
    }

    /// Copies hiredis's reply tree. Nil when the tree is not well formed (a null pointer where a
    /// string or element must be, an unknown type): the caller counts it and moves on.
    init?(reply: UnsafePointer<redisReply>) {
        let r = reply.pointee
        switch r.type {
        case REDIS_REPLY_STRING, REDIS_REPLY_STATUS, REDIS_REPLY_ERROR:
            guard let bytes = Self.bytes(r) else { return nil }
            switch r.type {
            case REDIS_REPLY_STRING: self = .bulk(bytes)
            case REDIS_REPLY_STATUS: self = .status(String(decoding: bytes, as: UTF8.self))
            default: self = .error(String(decoding: bytes, as: UTF8.self))
            }
        case REDIS_REPLY_INTEGER:
            self = .integer(Int64(r.integer))
        case REDIS_REPLY_NIL:
            self = .null
        case REDIS_REPLY_ARRAY:
            guard r.elements == 0 || r.element != nil else { return nil }
            var items: [RedisValue] = []
            items.reserveCapacity(r.elements)
            for i in 0..<r.elements {
                guard let child = r.element[i], let value = RedisValue(reply: child) else { return nil }
                items.append(value)
            }
            self = .array(items)
        default:
            return nil
        }
    }

    private static func bytes(_ r: redisReply) -> [UInt8]? {
        if r.len == 0 { return [] }
        guard let str = r.str else { return nil }
        return Array(UnsafeRawBufferPointer(start: str, count: r.len))
    }
}

/// Why a command got no value.
public enum RedisError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No reply within the command's time-out (the reply, if it comes later, is dropped).
    case timeout
    /// Redis answered with an error reply (`ERR ...`, `WRONGTYPE ...`, `NOAUTH ...`).
    case server(String)
    /// The connection was lost after the command was sent and before its reply.
    case disconnected(String)
    /// Redis is unreachable and the queue of waiting commands is full.
    case queueFull
    /// The client was stopped.
    case stopped
    /// The reply could not be read (counted as malformed).
    case malformedReply
    /// A command `RedisClient` does not send (subscribe or monitor mode, HELLO, RESET, QUIT...):
    /// use `RedisSubscriber` for subscriptions.
    case unsupportedCommand(String)

    public var description: String {
        switch self {
        case .timeout: "timed out"
        case .server(let message): "Redis error: \(message)"
        case .disconnected(let reason): "disconnected: \(reason)"
        case .queueFull: "not connected and the command queue is full"
        case .stopped: "the client is stopped"
        case .malformedReply: "malformed reply"
        case .unsupportedCommand(let name):
            "'\(name)' is not sent on a command connection (subscriptions go through RedisSubscriber)"
        }
    }
}

/// What a client or subscriber tells its state callback.
public enum RedisConnectionState: Sendable, Equatable {
    /// Logged in (AUTH/SELECT done); for a subscriber, also every held channel and pattern confirmed.
    case connected
    /// The connection was lost or could not be made; the client retries after a back-off.
    case disconnected(reason: String)
}
