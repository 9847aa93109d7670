// The client side of Engine.IO v4 / Socket.IO v5 (WebSocket transport, main namespace) that the
// `socketio` mode needs: the open packet, ping → pong, CONNECT, a join with an ack, and the
// hot path, finding the `content` of a `message:new` event in the frame bytes without parsing JSON.
#if canImport(Glibc)
import Glibc
#endif

/// What `socketio` mode adds to a plan: where Engine.IO listens and which conversation (room) to use.
public struct SocketIOPlan: Sendable, Equatable {
    /// The Engine.IO endpoint, e.g. `/socket.io/`.
    public var path: String
    /// The conversation every connection joins; the messages go to its room.
    public var conversation: String

    public init(path: String = "/socket.io/", conversation: String = "bench") {
        self.path = path
        self.conversation = conversation
    }

    /// The upgrade request's path for one connection (`--auth none` reads the user from `userId`).
    public func requestPath(user: Int) -> String {
        var p = path.isEmpty || path == "/" ? "/socket.io/" : path
        if !p.hasPrefix("/") { p = "/" + p }
        return p + "?EIO=4&transport=websocket&userId=u\(user)"
    }

    /// Ids are written into JSON unescaped: keep them to characters that need no escaping.
    public static func isPlainID(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.count <= 64
            && s.utf8.allSatisfy { b in
                (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
                    || b == UInt8(ascii: "-") || b == UInt8(ascii: "_") || b == UInt8(ascii: ":")
                    || b == UInt8(ascii: ".")
            }
    }
}

/// The benchmark payload as a chat message's `content`: `t=<send ns>;s=<seq>;p=<publisher>;<prose>`,
/// exactly `size` bytes of ASCII that JSON carries unescaped (no quote, no backslash, no control).
public enum ContentPayload {
    static let timeKey: [UInt8] = Array("t=".utf8)
    static let seqKey: [UInt8] = Array(";s=".utf8)
    static let pubKey: [UInt8] = Array(";p=".utf8)
    static let padKey: [UInt8] = Array(";".utf8)

    static let layout = StampLayout(timeKey: timeKey, seqKey: seqKey, pubKey: pubKey, padKey: padKey, suffix: [])

    /// The smallest --size accepted: 17-digit timestamps, 10-digit sequences, 5-digit ids.
    public static let minimumSupportedSize = layout.minimumSupportedSize

    public static func minimumSize(time: UInt64, seq: UInt64, publisher: Int) -> Int {
        layout.minimumSize(time: time, seq: seq, publisher: publisher)
    }

    public static func encode(
        time: UInt64, seq: UInt64, publisher: Int, size: Int, into out: UnsafeMutableRawBufferPointer
    ) {
        layout.encode(time: time, seq: seq, publisher: publisher, size: size, into: out)
    }

    public static func encode(time: UInt64, seq: UInt64, publisher: Int, size: Int) -> [UInt8] {
        var a = [UInt8](repeating: 0, count: size)
        a.withUnsafeMutableBytes { encode(time: time, seq: seq, publisher: publisher, size: size, into: $0) }
        return a
    }

    /// Reads the three numbers back; nil if the bytes are not a benchmark content.
    @inline(__always)
    public static func decode(_ b: UnsafeRawBufferPointer) -> Payload.Fields? {
        guard b.count >= 12, b[0] == UInt8(ascii: "t"), b[1] == UInt8(ascii: "=") else { return nil }
        var pos = 2
        @inline(__always) func number() -> UInt64? {
            var v: UInt64 = 0
            let start = pos
            while pos < b.count, b[pos] >= 48, b[pos] <= 57 { v = v &* 10 &+ UInt64(b[pos] - 48); pos += 1 }
            return pos > start ? v : nil
        }
        @inline(__always) func key(_ k: UInt8) -> Bool {
            guard pos + 3 <= b.count, b[pos] == UInt8(ascii: ";"), b[pos + 1] == k, b[pos + 2] == UInt8(ascii: "=")
            else { return false }
            pos += 3
            return true
        }
        guard let t = number(), key(UInt8(ascii: "s")), let s = number(), key(UInt8(ascii: "p")), let p = number()
        else { return nil }
        return Payload.Fields(time: t, seq: s, publisher: Int(p))
    }
}

/// Engine.IO / Socket.IO client packets (text frames), main namespace only.
public enum SocketIOClient {
    /// The Engine.IO open packet's fields the client uses.
    public struct Open: Equatable, Sendable {
        public var sid: String
        public var pingInterval: Int
        public var pingTimeout: Int
    }

    public enum Packet: Equatable, Sendable {
        /// `0{...}`
        case open
        /// `1`
        case close
        /// `2[data]`: answer `3[data]`.
        case ping
        /// `3[data]`
        case pong
        /// `6`
        case noop
        /// `40{"sid":...}`
        case connected
        /// `41`
        case disconnect
        /// `42...`
        case event
        /// `43<id>[...]`: `ok` when the first argument has `"ok":true`.
        case ack(id: Int, ok: Bool)
        /// `44{"message":...}`
        case connectError
        case other
    }

    static let zero = UInt8(ascii: "0")

    /// What a text frame is (cheap: looks at the first bytes only, plus the ack's `ok`).
    public static func classify(_ b: UnsafeRawBufferPointer) -> Packet {
        guard let first = b.first else { return .other }
        switch first {
        case zero: return .open
        case zero + 1: return .close
        case zero + 2: return .ping
        case zero + 3: return .pong
        case zero + 6: return .noop
        case zero + 4:
            guard b.count >= 2 else { return .other }
            // Only the main namespace: a namespace would follow as "/name,".
            switch b[1] {
            case zero: return .connected
            case zero + 1: return .disconnect
            case zero + 2: return .event
            case zero + 4: return .connectError
            case zero + 3:
                var pos = 2
                var id = 0
                while pos < b.count, b[pos] >= 48, b[pos] <= 57, id < 1 << 40 {
                    id = id * 10 + Int(b[pos] - 48); pos += 1
                }
                guard pos > 2 else { return .other }
                let rest = UnsafeRawBufferPointer(rebasing: b[pos...])
                return .ack(id: id, ok: find(okTrue, in: rest) != nil)
            default: return .other
            }
        default: return .other
        }
    }

    static let okTrue: [UInt8] = Array(#""ok":true"#.utf8)

    /// Parses `0{"sid":"...","upgrades":[],"pingInterval":25000,"pingTimeout":20000,...}`.
    public static func parseOpen(_ b: UnsafeRawBufferPointer) -> Open? {
        guard b.count > 2, b[0] == zero, b[1] == UInt8(ascii: "{") else { return nil }
        guard let sid = stringField("sid", in: b), let interval = intField("pingInterval", in: b),
            let timeout = intField("pingTimeout", in: b)
        else { return nil }
        return Open(sid: sid, pingInterval: interval, pingTimeout: timeout)
    }

    /// The pong for a ping frame: `3` and the ping's data.
    public static func pong(forPing b: UnsafeRawBufferPointer) -> [UInt8] {
        var out: [UInt8] = [zero + 3]
        if b.count > 1 { out.append(contentsOf: UnsafeRawBufferPointer(rebasing: b[1...])) }
        return out
    }

    /// CONNECT to the main namespace.
    public static let connectRequest: [UInt8] = Array("40".utf8)

    /// `42<ackId>["join:conversation",{"conversationId":"<id>"}]`.
    public static func joinRequest(conversation: String, ackId: Int?) -> [UInt8] {
        Array("42\(ackId.map(String.init) ?? "")[\"join:conversation\",{\"conversationId\":\"\(conversation)\"}]".utf8)
    }

    /// The bytes before and after the content in a `message:send` event:
    /// `42["message:send",{"conversationId":"<id>","message":{"content":"` … `","type":"text"}}]`.
    public static func sendFraming(conversation: String) -> (prefix: [UInt8], suffix: [UInt8]) {
        (
            Array("42[\"message:send\",{\"conversationId\":\"\(conversation)\",\"message\":{\"content\":\"".utf8),
            Array("\",\"type\":\"text\"}}]".utf8)
        )
    }

    static let messageNewPrefix: [UInt8] = Array(#"42["message:new","#.utf8)
    static let contentKey: [UInt8] = Array(#""content":""#.utf8)
    static let errorPrefix: [UInt8] = Array(#"42["error","#.utf8)

    /// The content string's bytes of a `42["message:new",{...,"content":"<here>",...}]` frame, as a
    /// slice of `b` (no copy); nil for other events. The content must be escape-free (ours is).
    @inline(__always)
    public static func messageNewContent(_ b: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        let n = messageNewPrefix.count
        guard b.count > n + contentKey.count else { return nil }
        let isMessageNew = messageNewPrefix.withUnsafeBytes { memcmp(b.baseAddress!, $0.baseAddress!, n) == 0 }
        guard isMessageNew else { return nil }
        let tail = UnsafeRawBufferPointer(rebasing: b[n...])
        guard let key = find(contentKey, in: tail) else { return nil }
        let start = n + key + contentKey.count
        guard start < b.count, let q = memchr(b.baseAddress! + start, Int32(UInt8(ascii: "\"")), b.count - start) else {
            return nil
        }
        let end = b.baseAddress!.distance(to: UnsafeRawPointer(q))
        return UnsafeRawBufferPointer(rebasing: b[start..<end])
    }

    /// `42["error",{...}]`: what the server emits for a refused event sent without an ack.
    public static func isErrorEvent(_ b: UnsafeRawBufferPointer) -> Bool {
        b.count >= errorPrefix.count
            && errorPrefix.withUnsafeBytes { memcmp(b.baseAddress!, $0.baseAddress!, $0.count) == 0 }
    }

    /// Offset of `needle` in `hay`.
    @inline(__always)
    static func find(_ needle: [UInt8], in hay: UnsafeRawBufferPointer) -> Int? {
        guard hay.count >= needle.count, let base = hay.baseAddress else { return nil }
        // memchr for the first byte, memcmp for the rest (Glibc's memmem needs _GNU_SOURCE).
        return needle.withUnsafeBytes { nb -> Int? in
            let first = Int32(nb[0])
            let last = hay.count - nb.count
            var i = 0
            while i <= last {
                guard let p = memchr(base + i, first, last - i + 1) else { return nil }
                let at = base.distance(to: UnsafeRawPointer(p))
                if memcmp(p, nb.baseAddress!, nb.count) == 0 { return at }
                i = at + 1
            }
            return nil
        }
    }

    static func intField(_ name: String, in b: UnsafeRawBufferPointer) -> Int? {
        guard let at = find(Array("\"\(name)\":".utf8), in: b) else { return nil }
        var pos = at + name.utf8.count + 3
        var v = 0
        let start = pos
        while pos < b.count, b[pos] >= 48, b[pos] <= 57, v < 1 << 40 { v = v * 10 + Int(b[pos] - 48); pos += 1 }
        return pos > start ? v : nil
    }

    static func stringField(_ name: String, in b: UnsafeRawBufferPointer) -> String? {
        guard let at = find(Array("\"\(name)\":\"".utf8), in: b) else { return nil }
        let start = at + name.utf8.count + 4
        var pos = start
        while pos < b.count, b[pos] != UInt8(ascii: "\"") { pos += 1 }
        guard pos < b.count else { return nil }
        return String(decoding: UnsafeRawBufferPointer(rebasing: b[start..<pos]), as: UTF8.self)
    }
}
