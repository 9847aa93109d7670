import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A blocking TCP client over Glibc sockets, for byte-exact end-to-end checks (RFC 6455's
/// own examples, HTTP error responses). Every read is bounded by SO_RCVTIMEO, so a silent
/// server fails the test instead of hanging it. Not thread-safe: one test, one connection.
public final class RawTCPConnection {
    private var fd: Int32
    private var buffer: [UInt8] = []

    public struct SocketError: Error, CustomStringConvertible {
        public let description: String
        public init(_ call: String, _ code: Int32 = errno) {
            description = "\(call): \(String(cString: strerror(code))) (errno \(code))"
        }
    }

    public init(port: UInt16, host: String = "127.0.0.1", timeout: Duration = .seconds(5)) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError("socket") }
        let seconds = timeout.components.seconds
        let micros = timeout.components.attoseconds / 1_000_000_000_000
        var tv = timeval(tv_sec: Int(seconds), tv_usec: Int(micros))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
            Glibc.close(fd)
            throw SocketError("inet_pton(\(host))", EINVAL)
        }
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard rc == 0 else {
            let code = errno
            Glibc.close(fd)
            throw SocketError("connect(\(host):\(port))", code)
        }
    }

    deinit { close() }

    public func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            // MSG_NOSIGNAL: a peer that already closed must fail the call, not kill the test runner.
            let n = bytes[offset...].withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw SocketError("send")
            }
            offset += n
        }
    }

    public func send(_ text: String) throws { try send(Array(text.utf8)) }

    /// Reads more bytes into the buffer; false at EOF (or reset). Throws on time-out.
    private func fill() throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 {
                buffer.append(contentsOf: chunk[0..<n])
                return true
            }
            if n == 0 { return false }
            switch errno {
            case EINTR: continue
            case ECONNRESET: return false
            case EAGAIN, EWOULDBLOCK: throw SocketError("recv (timed out)", EAGAIN)
            default: throw SocketError("recv")
            }
        }
    }

    /// Exactly `count` bytes; nil if the peer closed first.
    public func read(exactly count: Int) throws -> [UInt8]? {
        while buffer.count < count {
            guard try fill() else { return nil }
        }
        defer { buffer.removeFirst(count) }
        return Array(buffer[0..<count])
    }

    /// Everything until the peer closes. Throws if it does not close within the read time-out.
    public func readToEOF() throws -> [UInt8] {
        while try fill() {}
        defer { buffer.removeAll() }
        return buffer
    }

    /// True if the peer closes the connection (EOF or reset) before the read time-out,
    /// discarding whatever arrives first.
    public func waitForClose() -> Bool {
        (try? readToEOF()) != nil
    }

    public func close() {
        if fd >= 0 {
            Glibc.close(fd)
            fd = -1
        }
    }

    /// Closes with RST instead of FIN (SO_LINGER with a zero timeout).
    public func reset() {
        guard fd >= 0 else { return }
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        close()
    }

    // MARK: HTTP

    public struct HTTPResponse: Sendable {
        public let statusLine: String
        public let status: Int
        /// Header names lower-cased; repeated headers keep every value.
        public let headers: [String: [String]]

        public func header(_ name: String) -> String? { headers[name.lowercased()]?.first }
    }

    /// Reads a response head (status line and headers, up to the blank line).
    public func readResponseHead() throws -> HTTPResponse? {
        let terminator: [UInt8] = [13, 10, 13, 10]
        var end: Int?
        while end == nil {
            if buffer.count >= 4 {
                end = (0...(buffer.count - 4)).first { Array(buffer[$0..<$0 + 4]) == terminator }
            }
            if end == nil { guard try fill() else { return nil } }
        }
        let head = String(decoding: buffer[0..<end!], as: UTF8.self)
        buffer.removeFirst(end! + 4)
        let lines = head.components(separatedBy: "\r\n")
        let parts = lines[0].split(separator: " ", maxSplits: 2)
        var headers: [String: [String]] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            headers[name, default: []].append(value)
        }
        return HTTPResponse(
            statusLine: lines[0], status: parts.count > 1 ? Int(parts[1]) ?? -1 : -1, headers: headers)
    }

    /// Reads a body of `Content-Length` bytes (nil without the header).
    public func readBody(of response: HTTPResponse) throws -> [UInt8]? {
        guard let length = response.header("content-length").flatMap({ Int($0) }) else { return nil }
        return try read(exactly: length)
    }

    /// `GET path` on a new connection: the response head and the body (by Content-Length,
    /// else up to EOF).
    public static func httpGet(port: UInt16, path: String) throws -> (HTTPResponse, [UInt8]) {
        let connection = try RawTCPConnection(port: port)
        try connection.send("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n\r\n")
        guard let head = try connection.readResponseHead() else {
            throw SocketError("GET \(path): connection closed before a response", ECONNRESET)
        }
        let body = try connection.readBody(of: head) ?? connection.readToEOF()
        return (head, body)
    }

    // MARK: WebSocket

    /// Sends an upgrade request and reads the response head (101 on success).
    public func upgrade(
        path: String = "/", key: String = "dGhlIHNhbXBsZSBub25jZQ==",
        extraHeaders: String = ""
    ) throws -> HTTPResponse? {
        try send(
            "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Key: \(key)\r\nSec-WebSocket-Version: 13\r\n\(extraHeaders)\r\n")
        return try readResponseHead()
    }

    public struct Frame: Equatable, Sendable {
        public var fin: Bool
        public var opcode: UInt8
        public var payload: [UInt8]
        public init(fin: Bool, opcode: UInt8, payload: [UInt8]) {
            self.fin = fin
            self.opcode = opcode
            self.payload = payload
        }
        public var closeCode: UInt16? {
            opcode == 0x8 && payload.count >= 2 ? UInt16(payload[0]) << 8 | UInt16(payload[1]) : nil
        }
    }

    /// The next frame from the server (which must not mask, RFC 6455 §5.1); nil at EOF.
    public func readFrame() throws -> Frame? {
        guard let head = try read(exactly: 2) else { return nil }
        var length = UInt64(head[1] & 0x7F)
        if length == 126 {
            guard let ext = try read(exactly: 2) else { return nil }
            length = UInt64(ext[0]) << 8 | UInt64(ext[1])
        } else if length == 127 {
            guard let ext = try read(exactly: 8) else { return nil }
            length = ext.reduce(0) { $0 << 8 | UInt64($1) }
        }
        var key: [UInt8]? = nil
        if head[1] & 0x80 != 0 {
            guard let k = try read(exactly: 4) else { return nil }
            key = k
        }
        guard var payload = try read(exactly: Int(length)) else { return nil }
        if let key {
            for i in payload.indices { payload[i] ^= key[i % 4] }
        }
        return Frame(fin: head[0] & 0x80 != 0, opcode: head[0] & 0x0F, payload: payload)
    }

    /// A client frame: masked with `maskKey` (RFC 6455 §5.3), FIN set unless `fin` is false.
    public static func clientFrame(
        opcode: UInt8, payload: [UInt8], fin: Bool = true,
        maskKey: [UInt8] = [0x37, 0xfa, 0x21, 0x3d]
    ) -> [UInt8] {
        var frame: [UInt8] = [(fin ? 0x80 : 0) | opcode]
        let n = payload.count
        if n < 126 {
            frame.append(0x80 | UInt8(n))
        } else if n < 65536 {
            frame += [0x80 | 126, UInt8(n >> 8), UInt8(n & 0xFF)]
        } else {
            frame.append(0x80 | 127)
            frame += (0..<8).reversed().map { UInt8((UInt64(n) >> (8 * UInt64($0))) & 0xFF) }
        }
        frame += maskKey
        frame += payload.enumerated().map { $0.element ^ maskKey[$0.offset % 4] }
        return frame
    }
}
