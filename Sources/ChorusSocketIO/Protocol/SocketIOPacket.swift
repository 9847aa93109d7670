// Socket.IO v5 packets: `<type>[<#attachments>-][<namespace>,][<ack id>][JSON payload]`,
// carried in Engine.IO message packets ("4" prefix). Binary values are replaced by
// `{"_placeholder":true,"num":N}` and sent as N following binary frames.
// Over the ~400-line guide by a little: the packet, its encoder and its decoder stay one file,
// which scripts/fuzz.sh compiles into its harness with the JSON files alone.

#if canImport(ChorusJSON)
// scripts/fuzz.sh compiles the protocol files with ChorusJSON's and ChorusUTF8's into one module.
import ChorusJSON
import ChorusUTF8
#endif

public enum SocketIOPacketType: UInt8, Sendable, Hashable, CaseIterable {
    case connect = 0
    case disconnect = 1
    case event = 2
    case ack = 3
    case connectError = 4
    case binaryEvent = 5
    case binaryAck = 6

    public var wireByte: UInt8 { UInt8(ascii: "0") + rawValue }
    public var isBinary: Bool { self == .binaryEvent || self == .binaryAck }
}

public enum SocketIOProtocolError: Error, Hashable, Sendable {
    case emptyPacket
    case unknownPacketType(UInt8)
    /// Binary packet without a well-formed `<digits>-` attachment count.
    case invalidAttachmentCount
    case tooManyAttachments(count: Int, limit: Int)
    /// The namespace must start with "/" (e.g. `2admin,[...]`).
    case invalidNamespace
    case ackIdOverflow
    /// An ack id on CONNECT / DISCONNECT / CONNECT_ERROR.
    case unexpectedAckId
    /// ACK / BINARY_ACK without an ack id.
    case missingAckId
    case invalidJSON(JSONError)
    case missingPayload
    /// Payload shape not allowed for the packet type (e.g. CONNECT with an array).
    case invalidPayload(SocketIOPacketType)
    case eventPayloadNotArray
    case emptyEventPayload
    case eventNameNotString
    case reservedEventName(String)
    /// `_placeholder` object with a missing/invalid `num`.
    case invalidPlaceholder
    /// Binary frame received when no binary packet is awaiting attachments.
    case unexpectedBinaryFrame
    /// Text frame received while a binary packet still awaits attachments.
    case unexpectedTextFrame
    case invalidUTF8
}

public struct SocketIOPacket: Sendable, Hashable {
    public var type: SocketIOPacketType
    /// "/" is the main namespace (omitted on the wire).
    public var namespace: String
    public var ackId: Int?
    /// Payload; `.binary` values anywhere inside are the attachments.
    public var data: JSONValue?

    public init(type: SocketIOPacketType, namespace: String = "/", ackId: Int? = nil, data: JSONValue? = nil) {
        self.type = type
        self.namespace = namespace
        self.ackId = ackId
        self.data = data
    }

    /// The binary attachments, in placeholder order (depth-first), derived from `data`.
    public var attachments: [[UInt8]] {
        var out: [[UInt8]] = []
        func walk(_ v: JSONValue) {
            switch v {
            case .binary(let b): out.append(b)
            case .array(let a): a.forEach(walk)
            case .object(let o): o.values.forEach(walk)
            default: break
            }
        }
        if let data { walk(data) }
        return out
    }

    // MARK: Convenience constructors

    public static func connect(namespace: String = "/", auth: JSONValue? = nil) -> SocketIOPacket {
        SocketIOPacket(type: .connect, namespace: namespace, data: auth)
    }

    /// Server reply to CONNECT: `0{"sid":"..."}`.
    public static func connected(namespace: String = "/", sid: String) -> SocketIOPacket {
        SocketIOPacket(type: .connect, namespace: namespace, data: ["sid": .string(sid)])
    }

    /// The reply with connection state recovery on: `0{"sid":"...","pid":"..."}`.
    public static func connected(namespace: String = "/", sid: String, pid: String?) -> SocketIOPacket {
        guard let pid else { return connected(namespace: namespace, sid: sid) }
        return SocketIOPacket(type: .connect, namespace: namespace, data: ["sid": .string(sid), "pid": .string(pid)])
    }

    public static func disconnect(namespace: String = "/") -> SocketIOPacket {
        SocketIOPacket(type: .disconnect, namespace: namespace)
    }

    public static func connectError(namespace: String = "/", message: String, data: JSONValue? = nil)
        -> SocketIOPacket
    {
        var o: JSONObject = ["message": .string(message)]
        if let data { o["data"] = data }
        return SocketIOPacket(type: .connectError, namespace: namespace, data: .object(o))
    }

    public static func event(namespace: String = "/", _ name: String, _ args: [JSONValue] = [], ackId: Int? = nil)
        -> SocketIOPacket
    {
        var payload: [JSONValue] = [.string(name)]
        payload.append(contentsOf: args)
        return SocketIOPacket(type: .event, namespace: namespace, ackId: ackId, data: .array(payload))
    }

    public static func ack(namespace: String = "/", id: Int, _ args: [JSONValue] = []) -> SocketIOPacket {
        SocketIOPacket(type: .ack, namespace: namespace, ackId: id, data: .array(args))
    }

    /// For EVENT / BINARY_EVENT: the event name and arguments.
    public var event: (name: String, args: ArraySlice<JSONValue>)? {
        guard type == .event || type == .binaryEvent, case .array(let a)? = data, let name = a.first?.stringValue
        else { return nil }
        return (name, a.dropFirst())
    }

    // MARK: Encoding

    /// Encodes as socket.io-parser does. EVENT/ACK whose data contains binary become
    /// BINARY_EVENT/BINARY_ACK; `.binary` values become placeholders and are returned as
    /// attachments (to send as binary frames after the text frame).
    /// - Parameter engineIOPrefix: prepend the Engine.IO message type ("4") so `text` is the
    ///   complete WebSocket text frame.
    public func encode(engineIOPrefix: Bool = false) -> (text: [UInt8], attachments: [[UInt8]]) {
        let binaryCount = data?.binaryCount ?? 0
        let hasBinary = binaryCount > 0
        var t = type
        if hasBinary {
            if t == .event { t = .binaryEvent } else if t == .ack { t = .binaryAck }
        }
        var out: [UInt8] = []
        var attachments: [[UInt8]] = []
        attachments.reserveCapacity(binaryCount)
        let dataCount =
            data.map { hasBinary ? $0.serializedCountWithPlaceholders() : $0.serializedCount } ?? 0
        out.reserveCapacity(24 + namespace.utf8.count + dataCount)
        if engineIOPrefix { out.append(EngineIOPacketType.message.wireByte) }
        out.append(t.wireByte)
        if t.isBinary {
            JSONValue.int(Int64(binaryCount)).serialize(into: &out)
            out.append(UInt8(ascii: "-"))
        }
        if namespace != "/" && !namespace.isEmpty {
            out.append(contentsOf: namespace.utf8)
            out.append(UInt8(ascii: ","))
        }
        if let ackId { JSONValue.int(Int64(ackId)).serialize(into: &out) }
        if let data {
            if hasBinary {
                data.serialize(into: &out, attachments: &attachments)
            } else {
                data.serialize(into: &out)
            }
        }
        return (out, attachments)
    }
}

// MARK: - Decoding

public struct SocketIODecoder: Sendable {
    public struct Options: Sendable, Hashable {
        /// Maximum attachments announced by one binary packet.
        public var maxAttachments: Int
        /// Largest accepted ack id (default: JavaScript's Number.MAX_SAFE_INTEGER).
        public var maxAckId: Int
        public var json: JSONParseOptions

        public init(maxAttachments: Int = 10, maxAckId: Int = 9_007_199_254_740_991, json: JSONParseOptions = .default)
        {
            self.maxAttachments = maxAttachments
            self.maxAckId = maxAckId
            self.json = json
        }
    }

    public static let reservedEventNames: Set<String> = [
        "connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener",
    ]

    /// Copies share it: a session's decoder is a copy of its server's (one box per server, 8
    /// bytes per session instead of the options' 32).
    private let settings: Settings
    public var options: Options { settings.options }
    /// A binary packet waiting for its attachment frames: boxed (8 bytes), since almost no session
    /// has one (the packet and its attachments inline would be 80 bytes in every session).
    private var partial: Partial?

    private final class Settings: Sendable {
        let options: Options
        init(_ options: Options) { self.options = options }
    }

    private indirect enum Partial {
        case awaiting(SocketIOPacket, expected: Int, received: [[UInt8]])
    }

    public init(options: Options = Options()) {
        self.settings = Settings(options)
    }

    /// True while a binary packet waits for attachment frames.
    public var isAwaitingAttachments: Bool { partial != nil }

    public mutating func reset() {
        partial = nil
    }

    /// Feeds a text frame's Socket.IO packet (the Engine.IO "4" already stripped).
    /// Returns the packet when complete, nil when it awaits binary attachments.
    /// On error the decoder resets; the connection should normally be closed.
    public mutating func decode(text: UnsafeRawBufferPointer) throws(SocketIOProtocolError) -> SocketIOPacket? {
        guard partial == nil else {
            reset()
            throw .unexpectedTextFrame
        }
        let (packet, count) = try Self.parse(text, options: options)
        if packet.type.isBinary && count > 0 {
            var received: [[UInt8]] = []
            received.reserveCapacity(count)
            partial = .awaiting(packet, expected: count, received: received)
            return nil
        }
        if packet.type.isBinary {
            // Zero attachments: placeholders (if any) are necessarily invalid.
            return try Self.reconstruct(packet, attachments: [])
        }
        return packet
    }

    public mutating func decode(text: [UInt8]) throws(SocketIOProtocolError) -> SocketIOPacket? {
        let r: Result<SocketIOPacket?, SocketIOProtocolError> = text.withUnsafeBytes { raw in
            do throws(SocketIOProtocolError) { return .success(try decode(text: raw)) } catch { return .failure(error) }
        }
        return try r.get()
    }

    public mutating func decode(text: String) throws(SocketIOProtocolError) -> SocketIOPacket? {
        try decode(text: Array(text.utf8))
    }

    /// Feeds a binary frame (an attachment). Returns the packet once all attachments arrived.
    public mutating func decode(binary: [UInt8]) throws(SocketIOProtocolError) -> SocketIOPacket? {
        guard case .awaiting(let packet, let expected, var received) = partial else { throw .unexpectedBinaryFrame }
        partial = nil
        received.append(binary)
        guard received.count == expected else {
            partial = .awaiting(packet, expected: expected, received: received)
            return nil
        }
        return try Self.reconstruct(packet, attachments: received)
    }

    static func reconstruct(_ p: SocketIOPacket, attachments: [[UInt8]]) throws(SocketIOProtocolError) -> SocketIOPacket
    {
        var p = p
        if let d = p.data { p.data = try d.replacingPlaceholders(with: attachments) }
        return p
    }

    @inline(__always)
    static func isDigit(_ c: UInt8) -> Bool { c &- UInt8(ascii: "0") < 10 }

    /// Parses one packet's text; binary values are still placeholders.
    /// Returns the packet and the announced attachment count.
    public static func parse(_ s: UnsafeRawBufferPointer, options: Options = Options())
        throws(SocketIOProtocolError) -> (packet: SocketIOPacket, attachmentCount: Int)
    {
        guard let first = s.first else { throw .emptyPacket }
        guard let type = SocketIOPacketType(rawValue: first &- UInt8(ascii: "0")) else {
            throw .unknownPacketType(first)
        }
        var i = 1
        let n = s.count

        // Attachment count.
        var attachmentCount = 0
        if type.isBinary {
            let start = i
            while i < n, isDigit(s[i]) {
                if i - start >= 9 { throw .invalidAttachmentCount }
                attachmentCount = attachmentCount * 10 + Int(s[i] &- UInt8(ascii: "0"))
                i += 1
            }
            guard i > start, i < n, s[i] == UInt8(ascii: "-") else { throw .invalidAttachmentCount }
            i += 1
            if attachmentCount > options.maxAttachments {
                throw .tooManyAttachments(count: attachmentCount, limit: options.maxAttachments)
            }
        }

        // Namespace.
        var namespace = "/"
        if i < n, s[i] == UInt8(ascii: "/") {
            let start = i
            while i < n, s[i] != UInt8(ascii: ",") { i += 1 }
            let nsBytes = UnsafeRawBufferPointer(rebasing: s[start..<i])
            if !UTF8Validator.validate(nsBytes) { throw .invalidUTF8 }
            namespace = String(decoding: nsBytes, as: UTF8.self)
            if i < n { i += 1 }  // ","
        } else if i < n {
            // Something like `2admin,["x"]`: a namespace without the leading "/".
            let c = s[i]
            let isJSONStart =
                c == UInt8(ascii: "[") || c == UInt8(ascii: "{") || c == UInt8(ascii: "\"") || isDigit(c)
                || c == UInt8(ascii: "-") || c == UInt8(ascii: " ") || c == UInt8(ascii: "\t")
                || c == UInt8(ascii: "\n") || c == UInt8(ascii: "\r")
            if !isJSONStart {
                var j = i
                while j < n, s[j] != UInt8(ascii: ","), s[j] != UInt8(ascii: "["), s[j] != UInt8(ascii: "{"),
                    s[j] != UInt8(ascii: "\"")
                { j += 1 }
                if j < n, s[j] == UInt8(ascii: ",") { throw .invalidNamespace }
            }
        }

        // Ack id.
        var ackId: Int? = nil
        if i < n, isDigit(s[i]) {
            var v = 0
            let start = i
            while i < n, isDigit(s[i]) {
                if i - start >= 16 { throw .ackIdOverflow }
                v = v * 10 + Int(s[i] &- UInt8(ascii: "0"))
                i += 1
            }
            if v > options.maxAckId { throw .ackIdOverflow }
            ackId = v
        }

        // Payload.
        var data: JSONValue? = nil
        if i < n {
            do {
                data = try JSONValue.parse(UnsafeRawBufferPointer(rebasing: s[i..<n]), options: options.json)
            } catch {
                throw .invalidJSON(error)
            }
        }

        // Validation per type.
        switch type {
        case .connect:
            if ackId != nil { throw .unexpectedAckId }
            if let data, data.objectValue == nil { throw .invalidPayload(type) }
        case .disconnect:
            if ackId != nil { throw .unexpectedAckId }
            if data != nil { throw .invalidPayload(type) }
        case .connectError:
            if ackId != nil { throw .unexpectedAckId }
            guard let data else { throw .missingPayload }
            if data.objectValue == nil && data.stringValue == nil { throw .invalidPayload(type) }
        case .event, .binaryEvent:
            guard let data else { throw .missingPayload }
            guard case .array(let a) = data else { throw .eventPayloadNotArray }
            guard let name = a.first else { throw .emptyEventPayload }
            guard case .string(let s) = name else { throw .eventNameNotString }
            if reservedEventNames.contains(s) { throw .reservedEventName(s) }
        case .ack, .binaryAck:
            if ackId == nil { throw .missingAckId }
            guard let data else { throw .missingPayload }
            guard data.arrayValue != nil else { throw .invalidPayload(type) }
        }
        return (SocketIOPacket(type: type, namespace: namespace, ackId: ackId, data: data), attachmentCount)
    }
}

extension JSONValue {
    /// Number of `.binary` values in the tree (the attachment count).
    public var binaryCount: Int {
        switch self {
        case .binary: return 1
        case .array(let a): return a.reduce(0) { $0 + $1.binaryCount }
        case .object(let o): return o.values.reduce(0) { $0 + $1.binaryCount }
        default: return 0
        }
    }

    /// Replaces `{"_placeholder":true,"num":N}` objects by `.binary(attachments[N])`.
    public func replacingPlaceholders(with attachments: [[UInt8]]) throws(SocketIOProtocolError) -> JSONValue {
        switch self {
        case .array(var a):
            for i in a.indices { a[i] = try a[i].replacingPlaceholders(with: attachments) }
            return .array(a)
        case .object(let o):
            if case .bool(true)? = o["_placeholder"] {
                guard let num = o["num"]?.intValue, num >= 0, num < attachments.count else {
                    throw .invalidPlaceholder
                }
                return .binary(attachments[num])
            }
            var replaced = JSONObject(minimumCapacity: o.count)
            for (k, v) in o { replaced.appendUnchecked(key: k, value: try v.replacingPlaceholders(with: attachments)) }
            return .object(replaced)
        default:
            return self
        }
    }
}
