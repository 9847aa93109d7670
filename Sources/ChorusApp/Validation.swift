import ChorusJSON
import ChorusSocketIO

#if canImport(Glibc)
import Glibc
#endif

public struct PayloadError: Error, Equatable, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
}

public struct MessageSend: Equatable, Sendable {
    public var conversationId: String
    /// As the client sent it (string or number), echoed in `message:new`.
    public var conversationIdValue: JSONValue
    public var content: String
    public var type: String
}

/// Pure validation of the client events' payloads.
public enum RealtimeValidation {
    public static let maxTypeLength = 32

    /// The first argument as an object.
    static func payload(_ args: [JSONValue]) throws(PayloadError) -> JSONObject {
        guard let first = args.first, let object = first.objectValue else {
            throw PayloadError("payload must be an object")
        }
        return object
    }

    static func idField(_ object: JSONObject, _ field: String) throws(PayloadError) -> (String, JSONValue) {
        guard let raw = object[field] else { throw PayloadError("\(field) is required") }
        guard let id = RealtimeIDs.id(from: raw) else {
            throw PayloadError(
                "\(field) must be a non-empty string (at most \(RealtimeIDs.maxLength) bytes) or an integer")
        }
        return (id, raw)
    }

    /// `join:project` / `leave:project`: `{projectId}`.
    public static func projectId(_ args: [JSONValue]) throws(PayloadError) -> String {
        try idField(payload(args), "projectId").0
    }

    /// `join:conversation` / `leave:conversation`: `{conversationId}`.
    public static func conversationId(_ args: [JSONValue]) throws(PayloadError) -> String {
        try idField(payload(args), "conversationId").0
    }

    /// `message:send`: `{conversationId, message: {content, type}}`. `content` is counted in
    /// Unicode scalars (characters as most clients count them) against `maxContentLength`.
    public static func messageSend(_ args: [JSONValue], maxContentLength: Int) throws(PayloadError) -> MessageSend {
        let object = try payload(args)
        let (conversationId, raw) = try idField(object, "conversationId")
        guard let messageValue = object["message"] else { throw PayloadError("message is required") }
        guard let message = messageValue.objectValue else { throw PayloadError("message must be an object") }
        guard let contentValue = message["content"] else { throw PayloadError("message.content is required") }
        guard let content = contentValue.stringValue else { throw PayloadError("message.content must be a string") }
        let length = content.unicodeScalars.count
        if length == 0 || content.allSatisfy(\.isWhitespace) { throw PayloadError("message.content must not be empty") }
        if length > maxContentLength {
            throw PayloadError("message.content is longer than \(maxContentLength) characters")
        }
        var type = "text"
        if let typeValue = message["type"], !typeValue.isNull {
            guard let t = typeValue.stringValue, !t.isEmpty, t.utf8.count <= maxTypeLength else {
                throw PayloadError("message.type must be a non-empty string of at most \(maxTypeLength) bytes")
            }
            type = t
        }
        return MessageSend(conversationId: conversationId, conversationIdValue: raw, content: content, type: type)
    }
}

/// Server-assigned message ids and timestamps.
public enum MessageStamp {
    /// A random UUID v4, lower-case.
    public static func uuid() -> String {
        // Two 8-byte draws (one getrandom(2) each), not one per byte: this runs for every chat
        // message, and 16 system calls per message showed in a profile of the publishing node.
        var g = SystemRandomNumberGenerator()
        let high = g.next()
        let low = g.next()
        var bytes = (0..<16).map { i in UInt8(truncatingIfNeeded: (i < 8 ? high : low) >> UInt64(8 * (i % 8))) }
        bytes[6] = bytes[6] & 0x0F | 0x40
        bytes[8] = bytes[8] & 0x3F | 0x80
        let hex = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for (i, b) in bytes.enumerated() {
            if i == 4 || i == 6 || i == 8 || i == 10 { out.append(UInt8(ascii: "-")) }
            out.append(hex[Int(b >> 4)])
            out.append(hex[Int(b & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// ISO 8601 UTC with milliseconds, as JavaScript's `Date.toISOString()`: 2024-05-01T12:00:00.123Z
    public static func iso8601(epochMilliseconds ms: Int64) -> String {
        var seconds = time_t(ms / 1000)
        var tm = tm()
        gmtime_r(&seconds, &tm)
        func pad(_ v: Int32, _ width: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(pad(tm.tm_year + 1900, 4))-\(pad(tm.tm_mon + 1, 2))-\(pad(tm.tm_mday, 2))T"
            + "\(pad(tm.tm_hour, 2)):\(pad(tm.tm_min, 2)):\(pad(tm.tm_sec, 2)).\(pad(Int32(ms % 1000), 3))Z"
    }

    public static func nowMilliseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }
}
