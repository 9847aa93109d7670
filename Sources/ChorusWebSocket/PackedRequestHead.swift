/// A request head kept for later as one block of bytes instead of a String per header and an
/// array of pairs: what a Socket.IO session keeps of its handshake for as long as the client stays
/// (about 570 of its bytes were the parsed head; BENCHMARKS.md, memory per idle connection).
/// Reading it decodes it again: it is read when a client connects to a namespace and by
/// `fetchSockets`, never per message.
///
/// The block is a small binary coding, lossless: the method and version as one byte each, then
/// each length-prefixed string; the header names and values every WebSocket upgrade repeats
/// (`Upgrade: websocket`, `Sec-WebSocket-Version: 13`, …, in the spellings clients send them) as
/// one byte each, and a `Sec-WebSocket-Key` as its 16 bytes. A command-line client's upgrade packs
/// into about half of its text (BENCHMARKS.md), a browser's long values (`User-Agent`, cookies) as
/// they came.
///
/// Unchecked Sendable: its storage (a `ManagedBuffer`, which is never Sendable) is written once,
/// when it is made, and only read after.
public struct PackedRequestHead: @unchecked Sendable {
    private let storage: Storage

    public init(_ head: HTTPRequestHead) {
        var out: [UInt8] = []
        out.reserveCapacity(Self.capacityBound(head))
        if let code = Self.code(of: head.method, in: Self.methods) {
            out.append(UInt8(code))
        } else {
            out.append(Self.literal)
            Self.appendString(head.method, to: &out)
        }
        out.append(UInt8(truncatingIfNeeded: head.versionMinor))
        Self.appendTarget(head.target, to: &out)
        for header in head.headers {
            if let code = Self.code(of: header.name, in: Self.names) {
                out.append(UInt8(code))
            } else {
                out.append(Self.literal)
                Self.appendString(header.name, to: &out)
            }
            if let code = Self.code(of: header.value, in: Self.values) {
                out.append(UInt8(code))
            } else if let key = Self.webSocketKey(header.value) {
                out.append(Self.sixteenBytes)
                out += key
            } else {
                out.append(Self.literal)
                Self.appendString(header.value, to: &out)
            }
        }
        self.storage = Storage.holding(out)
    }

    /// The head as it was given (the tests check it reads back the same).
    public var head: HTTPRequestHead {
        var reader = Reader(bytes: storage.bytes)
        let method = reader.coded(Self.methods)
        let versionMinor = Int(reader.byte())
        let target = reader.target()
        var headers: [(name: String, value: String)] = []
        while !reader.atEnd {
            let name = reader.coded(Self.names)
            let value = reader.coded(Self.values)
            headers.append((name, value))
        }
        return HTTPRequestHead(method: method, target: target, versionMinor: versionMinor, headers: headers)
    }

    /// Bytes held.
    public var byteCount: Int { storage.header }

    /// One heap block of exactly the coded bytes, behind a 24-byte header (an array's is 32 and
    /// rounds its capacity up): an upgrade's head is kept for the connection's whole life.
    private final class Storage: ManagedBuffer<Int, UInt8> {
        static func holding(_ bytes: [UInt8]) -> Storage {
            let storage = Storage.create(minimumCapacity: bytes.count) { _ in bytes.count }
            storage.withUnsafeMutablePointerToElements { elements in
                bytes.withUnsafeBufferPointer { source in
                    guard let base = source.baseAddress else { return }
                    elements.initialize(from: base, count: source.count)
                }
            }
            return unsafeDowncast(storage, to: Storage.self)
        }

        var bytes: [UInt8] {
            withUnsafeMutablePointerToElements { Array(UnsafeBufferPointer(start: $0, count: header)) }
        }
    }

    // MARK: The coding

    /// A byte below `sixteenBytes` is an index into the table at hand; `literal` announces a
    /// length (LEB128) and the bytes; `sixteenBytes` a `Sec-WebSocket-Key`'s bytes (base64 on reading).
    static let literal: UInt8 = 0xFF
    static let sixteenBytes: UInt8 = 0xFE

    static let methods = ["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH"]

    /// Names as clients spell them: browsers and most libraries in title case, some in lower case.
    static let names: [String] = {
        let titled = [
            "Host", "Upgrade", "Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version",
            "Sec-WebSocket-Extensions", "Sec-WebSocket-Protocol", "User-Agent", "Origin", "Accept",
            "Accept-Encoding", "Accept-Language", "Cache-Control", "Pragma", "Cookie", "Authorization",
            "Referer", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Real-IP",
            "Content-Length", "Content-Type", "Sec-WebSocket-Accept", "Forwarded", "Via",
        ]
        return titled + titled.map { $0.lowercased() } + ["Sec-Websocket-Key", "Sec-Websocket-Version"]
    }()

    static let values = [
        "websocket", "Upgrade", "upgrade", "13", "keep-alive, Upgrade", "Keep-Alive, Upgrade", "no-cache",
        "gzip, deflate, br", "gzip, deflate, br, zstd", "gzip, deflate", "*/*", "",
        "permessage-deflate; client_max_window_bits", "permessage-deflate", "http", "https", "WebSocket",
    ]

    /// The index of `s` in `table`, compared byte for byte: String's `==` holds canonically
    /// equivalent text equal ("\u{212A}" and "K"), which would not read back as it came.
    private static func code(of s: String, in table: [String]) -> Int? {
        table.firstIndex { $0.utf8.elementsEqual(s.utf8) }
    }

    private static func appendString(_ s: String, to out: inout [UInt8]) {
        appendLength(s.utf8.count, to: &out)
        out += s.utf8
    }

    private static func appendLength(_ count: Int, to out: inout [UInt8]) {
        var n = UInt(count)
        while n >= 0x80 {
            out.append(UInt8(truncatingIfNeeded: n) | 0x80)
            n >>= 7
        }
        out.append(UInt8(n))
    }

    /// What every Engine.IO upgrade's target holds, each written as one byte (1, 2, …): bytes a
    /// target never holds. A target that holds some anyway is kept as it is (tag 0).
    static let targetParts: [[UInt8]] = ["/socket.io/", "EIO=4", "transport=websocket", "transport=polling"].map {
        Array($0.utf8)
    }

    private static func appendTarget(_ target: String, to out: inout [UInt8]) {
        let bytes = Array(target.utf8)
        guard !bytes.contains(where: { $0 <= UInt8(targetParts.count) }) else {
            out.append(0)
            appendString(target, to: &out)
            return
        }
        var coded: [UInt8] = []
        coded.reserveCapacity(bytes.count)
        var i = 0
        scan: while i < bytes.count {
            for (n, part) in targetParts.enumerated() where bytes[i...].starts(with: part) {
                coded.append(UInt8(n + 1))
                i += part.count
                continue scan
            }
            coded.append(bytes[i])
            i += 1
        }
        out.append(1)
        appendLength(coded.count, to: &out)
        out += coded
    }

    private static func capacityBound(_ head: HTTPRequestHead) -> Int {
        var n = head.method.utf8.count + head.target.utf8.count + 16
        for header in head.headers { n += header.name.utf8.count + header.value.utf8.count + 8 }
        return n
    }

    private static let base64: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// The 16 bytes of a canonical `Sec-WebSocket-Key` (24 characters of base64, "==" at the
    /// end, that encode back to themselves), or nil for any other value.
    static func webSocketKey(_ value: String) -> [UInt8]? {
        let chars = Array(value.utf8)
        guard chars.count == 24, chars[22] == UInt8(ascii: "="), chars[23] == UInt8(ascii: "=") else { return nil }
        var sextets = [UInt8](repeating: 0, count: 22)
        for i in 0..<22 {
            guard let v = base64.firstIndex(of: chars[i]) else { return nil }
            sextets[i] = UInt8(v)
        }
        // The last character carries 2 bits: the 4 below them must be 0 to encode back the same.
        guard sextets[21] & 0x0F == 0 else { return nil }
        var key: [UInt8] = []
        key.reserveCapacity(16)
        var i = 0
        while key.count < 15 {
            key.append(sextets[i] << 2 | sextets[i + 1] >> 4)
            key.append(sextets[i + 1] << 4 | sextets[i + 2] >> 2)
            key.append(sextets[i + 2] << 6 | sextets[i + 3])
            i += 4
        }
        key.append(sextets[20] << 2 | sextets[21] >> 4)
        return key
    }

    static func webSocketKeyText(_ key: ArraySlice<UInt8>) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(24)
        var i = key.startIndex
        while i + 3 <= key.endIndex {
            let (a, b, c) = (key[i], key[i + 1], key[i + 2])
            out += [
                base64[Int(a >> 2)], base64[Int((a & 3) << 4 | b >> 4)], base64[Int((b & 15) << 2 | c >> 6)],
                base64[Int(c & 63)],
            ]
            i += 3
        }
        let a = key[i]
        out += [base64[Int(a >> 2)], base64[Int((a & 3) << 4)], UInt8(ascii: "="), UInt8(ascii: "=")]
        return String(decoding: out, as: UTF8.self)
    }

    private struct Reader {
        let bytes: [UInt8]
        var position = 0

        var atEnd: Bool { position >= bytes.count }

        mutating func byte() -> UInt8 {
            defer { position += 1 }
            return bytes[position]
        }

        mutating func length() -> Int {
            var n = 0
            var shift = 0
            while true {
                let b = byte()
                n |= Int(b & 0x7F) << shift
                if b < 0x80 { break }
                shift += 7
            }
            return n
        }

        mutating func string() -> String {
            let n = length()
            defer { position += n }
            return String(decoding: bytes[position..<position + n], as: UTF8.self)
        }

        mutating func target() -> String {
            guard byte() == 1 else { return string() }
            let n = length()
            defer { position += n }
            var expanded: [UInt8] = []
            expanded.reserveCapacity(n + 48)
            for b in bytes[position..<position + n] {
                if b >= 1 && Int(b) <= PackedRequestHead.targetParts.count {
                    expanded += PackedRequestHead.targetParts[Int(b) - 1]
                } else {
                    expanded.append(b)
                }
            }
            return String(decoding: expanded, as: UTF8.self)
        }

        mutating func coded(_ table: [String]) -> String {
            let tag = byte()
            switch tag {
            case PackedRequestHead.literal:
                return string()
            case PackedRequestHead.sixteenBytes:
                defer { position += 16 }
                return PackedRequestHead.webSocketKeyText(bytes[position..<position + 16])
            default:
                return table[Int(tag)]
            }
        }
    }
}
