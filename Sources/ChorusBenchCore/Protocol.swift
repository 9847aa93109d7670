// The client side of RFC 6455 that the load generator needs, written here so the generator does not
// depend on the server's own protocol module: the upgrade request and its 101 check, masked client
// frames, an incremental parser for the server's frames, and permessage-deflate inflation.
import CZlib

#if canImport(Glibc)
import Glibc
#endif

/// `ws://host:port/path`.
public struct WebSocketURL: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var path: String

    public init(host: String, port: Int, path: String) {
        self.host = host
        self.port = port
        self.path = path
    }

    public init?(_ string: String) {
        guard string.hasPrefix("ws://") else { return nil }
        var rest = Substring(string.dropFirst(5))
        var path = "/"
        if let slash = rest.firstIndex(of: "/") {
            path = String(rest[slash...])
            rest = rest[..<slash]
        }
        var host = String(rest)
        var port = 80
        if rest.hasPrefix("[") {  // [::1]:port
            guard let close = rest.firstIndex(of: "]") else { return nil }
            host = String(rest[rest.index(after: rest.startIndex)..<close])
            let after = rest[rest.index(after: close)...]
            if after.hasPrefix(":") { guard let p = Int(after.dropFirst()) else { return nil }; port = p }
        } else if let colon = rest.lastIndex(of: ":") {
            host = String(rest[..<colon])
            guard let p = Int(rest[rest.index(after: colon)...]) else { return nil }
            port = p
        }
        guard !host.isEmpty, (1...65535).contains(port) else { return nil }
        self.init(host: host, port: port, path: path)
    }
}

/// A small, fast, non-cryptographic PRNG (xorshift64*) for mask keys and handshake nonces.
public struct FastRandom: RandomNumberGenerator, Sendable {
    var state: UInt64
    public init(seed: UInt64) { state = seed == 0 ? 0x9E37_79B9_7F4A_7C15 : seed }
    public init() {
        var seed: UInt64 = 0
        let fd = open("/dev/urandom", O_RDONLY)
        if fd >= 0 {
            _ = withUnsafeMutableBytes(of: &seed) { read(fd, $0.baseAddress, 8) }
            close(fd)
        }
        self.init(seed: seed ^ monotonicSeed())
    }
    @inline(__always)
    public mutating func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 0x2545_F491_4F6C_DD1D
    }
}

private func monotonicSeed() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_nsec) &* 6_364_136_223_846_793_005
}

public enum Base64 {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    public static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i < bytes.count {
            let b0 = UInt32(bytes[i])
            let b1 = i + 1 < bytes.count ? UInt32(bytes[i + 1]) : 0
            let b2 = i + 2 < bytes.count ? UInt32(bytes[i + 2]) : 0
            let v = b0 << 16 | b1 << 8 | b2
            out.append(alphabet[Int(v >> 18 & 63)])
            out.append(alphabet[Int(v >> 12 & 63)])
            out.append(i + 1 < bytes.count ? alphabet[Int(v >> 6 & 63)] : UInt8(ascii: "="))
            out.append(i + 2 < bytes.count ? alphabet[Int(v & 63)] : UInt8(ascii: "="))
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// The HTTP/1.1 upgrade: builds the request and checks the server's response.
public enum Handshake {
    public static let deflateOffer = "permessage-deflate; client_no_context_takeover; server_no_context_takeover"

    public static func request(url: WebSocketURL, key: String, offerDeflate: Bool) -> [UInt8] {
        var s =
            "GET \(url.path) HTTP/1.1\r\nHost: \(url.host):\(url.port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        s += "Sec-WebSocket-Key: \(key)\r\nSec-WebSocket-Version: 13\r\n"
        if offerDeflate { s += "Sec-WebSocket-Extensions: \(deflateOffer)\r\n" }
        s += "\r\n"
        return Array(s.utf8)
    }

    public static func randomKey<R: RandomNumberGenerator>(using rng: inout R) -> String {
        Base64.encode((0..<16).map { _ in UInt8.random(in: 0...255, using: &rng) })
    }

    public struct Response: Equatable, Sendable {
        /// Bytes of the response head including the final CRLFCRLF; what follows is frame data.
        public var headLength: Int
        public var status: Int
        public var deflate: Bool
        /// The server resets its compressor per message (so the client may reset its inflater).
        public var serverNoContextTakeover: Bool
    }

    public enum Failure: Error, Equatable { case badStatus(String), malformed, tooLong }

    /// Returns nil while the head is incomplete.
    public static func parseResponse(_ bytes: UnsafeRawBufferPointer) throws(Failure) -> Response? {
        guard let end = headEnd(bytes) else {
            if bytes.count > 16384 { throw .tooLong }
            return nil
        }
        let head = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[0..<end]), as: UTF8.self)
        let lines = head.split(separator: "\r\n", omittingEmptySubsequences: false)
        guard let statusLine = lines.first else { throw .malformed }
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1.1"), let status = Int(parts[1]) else { throw .malformed }
        guard status == 101 else { throw .badStatus(String(statusLine)) }
        var deflate = false
        var serverNoTakeover = false
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].lowercased()
            if name == "sec-websocket-extensions" {
                let value = line[line.index(after: colon)...].lowercased()
                if value.contains("permessage-deflate") {
                    deflate = true
                    if value.contains("server_no_context_takeover") { serverNoTakeover = true }
                }
            }
        }
        return Response(headLength: end, status: status, deflate: deflate, serverNoContextTakeover: serverNoTakeover)
    }

    static func headEnd(_ b: UnsafeRawBufferPointer) -> Int? {
        guard b.count >= 4 else { return nil }
        var i = 3
        while i < b.count {
            if b[i] == 10 && b[i - 1] == 13 && b[i - 2] == 10 && b[i - 3] == 13 { return i + 1 }
            i += 1
        }
        return nil
    }
}

public enum Opcode: UInt8, Sendable {
    case continuation = 0, text = 1, binary = 2, close = 8, ping = 9, pong = 10
}

/// Client-to-server frames: always masked (RFC 6455 §5.3).
public enum FrameEncoder {
    @inline(__always)
    public static func headerLength(payload: Int, masked: Bool = true) -> Int {
        (payload < 126 ? 2 : payload <= 0xFFFF ? 4 : 10) + (masked ? 4 : 0)
    }

    /// Appends one final frame; masks with `maskKey` when given (client frames), else unmasked.
    public static func append(
        opcode: Opcode, payload: UnsafeRawBufferPointer, maskKey: UInt32?, rsv1: Bool = false, to out: inout [UInt8]
    ) {
        let n = payload.count
        out.append(0x80 | (rsv1 ? 0x40 : 0) | opcode.rawValue)
        let maskBit: UInt8 = maskKey == nil ? 0 : 0x80
        if n < 126 {
            out.append(maskBit | UInt8(n))
        } else if n <= 0xFFFF {
            out.append(maskBit | 126)
            out.append(UInt8(n >> 8)); out.append(UInt8(n & 0xFF))
        } else {
            out.append(maskBit | 127)
            for shift in stride(from: 56, through: 0, by: -8) {
                out.append(UInt8(truncatingIfNeeded: UInt64(n) >> UInt64(shift)))
            }
        }
        guard let key = maskKey else {
            out.append(contentsOf: payload)
            return
        }
        let k: [UInt8] = [UInt8(key >> 24), UInt8(key >> 16 & 0xFF), UInt8(key >> 8 & 0xFF), UInt8(key & 0xFF)]
        out.append(contentsOf: k)
        let start = out.count
        out.append(contentsOf: payload)
        out.withUnsafeMutableBufferPointer { buf in
            for i in 0..<n { buf[start + i] ^= k[i & 3] }
        }
    }

    public static func append(opcode: Opcode, payload: [UInt8], maskKey: UInt32?, to out: inout [UInt8]) {
        payload.withUnsafeBytes { append(opcode: opcode, payload: $0, maskKey: maskKey, to: &out) }
    }
}

/// One frame as parsed. `payload` is valid only during the callback.
public struct ParsedFrame {
    public var fin: Bool
    public var rsv1: Bool
    public var opcode: UInt8
    public var payload: UnsafeRawBufferPointer
    /// Header plus payload bytes on the wire.
    public var wireLength: Int
}

public enum FrameError: Error, Equatable, Sendable {
    case maskedServerFrame, unmaskedClientFrame, reservedBits, badOpcode(UInt8), controlTooLong, fragmentedControl,
        badContinuation, tooLarge
}

/// An incremental frame parser that accepts input split anywhere (down to one byte at a time).
/// Server frames must be unmasked; with `expectMasked` it parses client frames (for test servers)
/// and unmasks them.
public struct FrameParser {
    public var expectMasked: Bool
    public var maxFrame: Int
    /// Bytes of an incomplete frame carried to the next `feed`.
    var carry: [UInt8] = []
    var scratch: [UInt8] = []

    public init(expectMasked: Bool = false, maxFrame: Int = 1 << 26) {
        self.expectMasked = expectMasked
        self.maxFrame = maxFrame
    }

    public var bufferedBytes: Int { carry.count }

    /// Parses every complete frame in (carry + input), calling `onFrame` for each.
    public mutating func feed(_ input: UnsafeRawBufferPointer, _ onFrame: (ParsedFrame) throws -> Void) throws {
        if carry.isEmpty {
            let used = try parse(input, onFrame)
            if used < input.count { carry.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[used...])) }
        } else {
            carry.append(contentsOf: input)
            var local = carry
            carry = []
            let used = try local.withUnsafeBytes { try parse($0, onFrame) }
            if used < local.count {
                local.removeFirst(used)
                carry = local
            }
        }
    }

    /// Returns how many bytes were consumed (complete frames only).
    mutating func parse(_ b: UnsafeRawBufferPointer, _ onFrame: (ParsedFrame) throws -> Void) throws -> Int {
        var pos = 0
        while b.count - pos >= 2 {
            let b0 = b[pos]
            let b1 = b[pos + 1]
            let masked = b1 & 0x80 != 0
            if masked != expectMasked {
                throw expectMasked ? FrameError.unmaskedClientFrame : FrameError.maskedServerFrame
            }
            if b0 & rsvMask != 0 { throw FrameError.reservedBits }
            let opcode = b0 & 0x0F
            switch opcode {
            case 0, 1, 2: break
            case 8, 9, 10:
                if b1 & 0x7F > 125 { throw FrameError.controlTooLong }
                if b0 & 0x80 == 0 { throw FrameError.fragmentedControl }
            default: throw FrameError.badOpcode(opcode)
            }
            var len = Int(b1 & 0x7F)
            var header = 2
            if len == 126 {
                guard b.count - pos >= 4 else { break }
                len = Int(b[pos + 2]) << 8 | Int(b[pos + 3])
                header = 4
            } else if len == 127 {
                guard b.count - pos >= 10 else { break }
                var v: UInt64 = 0
                for i in 0..<8 { v = v << 8 | UInt64(b[pos + 2 + i]) }
                guard v <= UInt64(maxFrame) else { throw FrameError.tooLarge }
                len = Int(v)
                header = 10
            }
            if len > maxFrame { throw FrameError.tooLarge }
            if masked { header += 4 }
            guard b.count - pos >= header + len else { break }
            let start = pos + header
            if masked {
                let k0 = b[start - 4]
                let k1 = b[start - 3]
                let k2 = b[start - 2]
                let k3 = b[start - 1]
                let k = [k0, k1, k2, k3]
                if scratch.count < len { scratch = [UInt8](repeating: 0, count: len) }
                try scratch.withUnsafeMutableBytes { s in
                    for i in 0..<len { s[i] = b[start + i] ^ k[i & 3] }
                    try onFrame(
                        ParsedFrame(
                            fin: b0 & 0x80 != 0, rsv1: b0 & 0x40 != 0, opcode: opcode,
                            payload: UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(s)[0..<len]),
                            wireLength: header + len))
                }
            } else {
                try onFrame(
                    ParsedFrame(
                        fin: b0 & 0x80 != 0, rsv1: b0 & 0x40 != 0, opcode: opcode,
                        payload: UnsafeRawBufferPointer(rebasing: b[start..<(start + len)]), wireLength: header + len))
            }
            pos = start + len
        }
        return pos
    }

    /// Lets RSV1 through (permessage-deflate negotiated).
    public var allowRSV1: Bool {
        get { rsvMask == 0x30 }
        set { rsvMask = newValue ? 0x30 : 0x70 }
    }
    var rsvMask: UInt8 = 0x70
}
