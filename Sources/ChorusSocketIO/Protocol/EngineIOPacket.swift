// Engine.IO v4 packets over WebSocket: one packet per WebSocket frame.
// Text frame: "<type digit><data>". Binary frame: a message packet whose data is the raw
// bytes (no type prefix).

#if canImport(ChorusJSON)
// scripts/fuzz.sh compiles the protocol files with ChorusJSON's into one module.
import ChorusJSON
#endif

public enum EngineIOPacketType: UInt8, Sendable, Hashable, CaseIterable {
    case open = 0
    case close = 1
    case ping = 2
    case pong = 3
    case message = 4
    case upgrade = 5
    case noop = 6

    /// The ASCII digit used on the wire.
    public var wireByte: UInt8 { UInt8(ascii: "0") + rawValue }
}

/// Payload of the open packet (server → client, first frame).
public struct EngineIOHandshake: Sendable, Hashable {
    public var sid: String
    public var upgrades: [String]
    public var pingInterval: Int
    public var pingTimeout: Int
    public var maxPayload: Int

    public init(
        sid: String, upgrades: [String] = [], pingInterval: Int = 25_000, pingTimeout: Int = 20_000,
        maxPayload: Int = 1_000_000
    ) {
        self.sid = sid
        self.upgrades = upgrades
        self.pingInterval = pingInterval
        self.pingTimeout = pingTimeout
        self.maxPayload = maxPayload
    }

    /// `{"sid":"...","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`
    public var json: JSONValue {
        [
            "sid": .string(sid),
            "upgrades": .array(upgrades.map { .string($0) }),
            "pingInterval": JSONValue(pingInterval),
            "pingTimeout": JSONValue(pingTimeout),
            "maxPayload": JSONValue(maxPayload),
        ]
    }

    public init(json: JSONValue) throws(EngineIOError) {
        guard let sid = json["sid"]?.stringValue,
            let ups = json["upgrades"]?.arrayValue,
            let pi = json["pingInterval"]?.intValue,
            let pt = json["pingTimeout"]?.intValue
        else { throw .invalidOpenPayload }
        var upgrades: [String] = []
        for u in ups {
            guard let s = u.stringValue else { throw .invalidOpenPayload }
            upgrades.append(s)
        }
        // maxPayload is optional for older v4 servers.
        self.init(
            sid: sid, upgrades: upgrades, pingInterval: pi, pingTimeout: pt,
            maxPayload: json["maxPayload"]?.intValue ?? 1_000_000)
    }
}

public enum EngineIOError: Error, Hashable, Sendable {
    case emptyFrame
    case unknownPacketType(UInt8)
    /// close/upgrade/noop must carry no data.
    case unexpectedData(EngineIOPacketType)
    case invalidOpenPayload
    case invalidUTF8
}

/// What the WebSocket layer sends or received.
public enum WebSocketFrame: Sendable, Hashable {
    case text([UInt8])
    case binary([UInt8])
}

public enum EngineIOPacket: Sendable, Hashable {
    case open(EngineIOHandshake)
    case close
    /// Optional data (e.g. "probe"); echoed back in the pong.
    case ping([UInt8])
    case pong([UInt8])
    /// Text message; the data is UTF-8 (for Socket.IO: the Socket.IO packet text).
    case message([UInt8])
    /// Binary message (binary WebSocket frame, raw bytes).
    case binaryMessage([UInt8])
    case upgrade
    case noop

    public var type: EngineIOPacketType {
        switch self {
        case .open: .open
        case .close: .close
        case .ping: .ping
        case .pong: .pong
        case .message, .binaryMessage: .message
        case .upgrade: .upgrade
        case .noop: .noop
        }
    }

    /// Convenience: a text message from a String.
    public static func message(_ text: String) -> EngineIOPacket { .message(Array(text.utf8)) }

    // MARK: Encoding

    /// The WebSocket frame carrying this packet.
    public func encode() -> WebSocketFrame {
        if case .binaryMessage(let b) = self { return .binary(b) }
        var out: [UInt8] = []
        encodeText(into: &out)
        return .text(out)
    }

    /// Appends the text-frame encoding. For `.binaryMessage` (which travels as a binary
    /// frame) appends the raw bytes instead.
    public func encodeText(into out: inout [UInt8]) {
        switch self {
        case .open(let h):
            let json = h.json
            out.reserveCapacity(out.count + 1 + json.serializedCount)
            out.append(EngineIOPacketType.open.wireByte)
            json.serialize(into: &out)
        case .ping(let d), .pong(let d), .message(let d):
            out.reserveCapacity(out.count + 1 + d.count)
            out.append(type.wireByte)
            out.append(contentsOf: d)
        case .close, .upgrade, .noop:
            out.append(type.wireByte)
        case .binaryMessage(let b):
            out.append(contentsOf: b)
        }
    }

    /// Pre-encoded control frames.
    public static let pingFrame: [UInt8] = [UInt8(ascii: "2")]
    public static let closeFrame: [UInt8] = [UInt8(ascii: "1")]

    // MARK: Decoding

    /// Decodes a text frame. The WebSocket layer is expected to have validated UTF-8 already;
    /// only the open packet's JSON is parsed here.
    public static func decode(text: UnsafeRawBufferPointer) throws(EngineIOError) -> EngineIOPacket {
        guard let first = text.first else { throw .emptyFrame }
        guard first >= UInt8(ascii: "0"), let t = EngineIOPacketType(rawValue: first &- UInt8(ascii: "0")) else {
            throw .unknownPacketType(first)
        }
        let data = UnsafeRawBufferPointer(rebasing: text[1...])
        switch t {
        case .open:
            let json: JSONValue
            do { json = try JSONValue.parse(data) } catch { throw .invalidOpenPayload }
            return .open(try EngineIOHandshake(json: json))
        case .ping: return .ping(Array(data))
        case .pong: return .pong(Array(data))
        case .message: return .message(Array(data))
        case .close, .upgrade, .noop:
            guard data.isEmpty else { throw .unexpectedData(t) }
            return t == .close ? .close : (t == .upgrade ? .upgrade : .noop)
        }
    }

    public static func decode(text: [UInt8]) throws(EngineIOError) -> EngineIOPacket {
        let r: Result<EngineIOPacket, EngineIOError> = text.withUnsafeBytes { raw in
            do throws(EngineIOError) { return .success(try decode(text: raw)) } catch { return .failure(error) }
        }
        return try r.get()
    }

    public static func decode(text: String) throws(EngineIOError) -> EngineIOPacket {
        try decode(text: Array(text.utf8))
    }

    /// A binary frame is always a message packet.
    public static func decode(binary: [UInt8]) -> EngineIOPacket { .binaryMessage(binary) }

    /// Zero-copy hot path: if `text` is a message packet, returns its data (the Socket.IO
    /// packet) as a slice of the same memory; nil otherwise.
    public static func messagePayload(ofText text: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        guard let first = text.first, first == EngineIOPacketType.message.wireByte else { return nil }
        return UnsafeRawBufferPointer(rebasing: text[1...])
    }
}

// MARK: - Session ids

public enum EngineIOSessionID {
    static let alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    /// The length of an Engine.IO session id.
    public static let length = 15
    /// The length of a Socket.IO socket id: 13, so that its room's key in the main namespace
    /// (`/#` and the id) is a small string too (one 64-byte heap block per client otherwise).
    public static let socketIDLength = 13

    /// An id of `length` characters of 6 random bits each, in base64url ("-_" for "+/"): 15 (90
    /// bits) for the Engine.IO session, 13 (78 bits) for a socket. Engine.IO's base64id makes 20
    /// characters (96 random bits and a counter); at 15 or fewer an id is a Swift small string,
    /// stored inline wherever it is kept: no heap block for it or its copies. No client reads an
    /// id's length; 78 bits keep ids unguessable and unique across a fleet (a collision among a
    /// billion live sockets has odds of about 1 in 600,000).
    public static func generate<R: RandomNumberGenerator>(length: Int = length, using rng: inout R) -> String {
        let high = rng.next()
        return encode(length: length, high, rng.next())
    }

    public static func generate() -> String {
        let (high, low) = systemRandomWords()
        return encode(length: length, high, low)
    }

    /// A socket id (`socketIDLength` characters).
    public static func generateSocketID() -> String {
        let (high, low) = systemRandomWords()
        return encode(length: socketIDLength, high, low)
    }

    /// Two words from the system's generator, called directly rather than through the generic
    /// `using:` (ThreadSanitizer's instrumentation of that `inout` argument, the generator being an
    /// empty struct, crashed the sanitizer on a loop thread: no race, but no TSan run either).
    static func systemRandomWords() -> (UInt64, UInt64) {
        var g = SystemRandomNumberGenerator()
        let high = g.next()
        return (high, g.next())
    }

    /// The first `length` (at most 20) 6-bit groups of `high` then `low`, in base64url.
    static func encode(length: Int, _ high: UInt64, _ low: UInt64) -> String {
        precondition(length > 0 && length <= 20)
        return String(unsafeUninitializedCapacity: length) { out in
            for i in 0..<length {
                let word = i < 10 ? high >> UInt64(6 * i) : low >> UInt64(6 * (i - 10))
                out[i] = alphabet[Int(word & 63)]
            }
            return length
        }
    }

    /// A 20-character secret of 120 random bits (what Engine.IO's base64id produces, e.g. the
    /// "oSO0OpakMV_3jnilAAAA" shape): connection state recovery's private session id, which
    /// restores a session to whoever presents it, keeps the reference's full length.
    public static func generateSecret<R: RandomNumberGenerator>(using rng: inout R) -> String {
        let high = rng.next()
        return secret(high, rng.next())
    }

    public static func generateSecret() -> String {
        let (high, low) = systemRandomWords()
        return secret(high, low)
    }

    /// The 15 bytes of `high` then `low` (its first 7), as 20 characters.
    static func secret(_ high: UInt64, _ low: UInt64) -> String {
        var raw = [UInt8](repeating: 0, count: 15)
        for j in 0..<8 { raw[j] = UInt8(truncatingIfNeeded: high >> UInt64(8 * j)) }
        for j in 8..<15 { raw[j] = UInt8(truncatingIfNeeded: low >> UInt64(8 * (j - 8))) }
        return encode15(raw)
    }

    /// Base64url (no padding) of exactly 15 bytes → 20 characters.
    static func encode15(_ raw: [UInt8]) -> String {
        precondition(raw.count == 15)
        return String(unsafeUninitializedCapacity: 20) { out in
            var o = 0
            for i in stride(from: 0, to: 15, by: 3) {
                let n = UInt32(raw[i]) << 16 | UInt32(raw[i + 1]) << 8 | UInt32(raw[i + 2])
                out[o] = alphabet[Int(n >> 18 & 63)]
                out[o + 1] = alphabet[Int(n >> 12 & 63)]
                out[o + 2] = alphabet[Int(n >> 6 & 63)]
                out[o + 3] = alphabet[Int(n & 63)]
                o += 4
            }
            return 20
        }
    }
}
