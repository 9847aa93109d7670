import ChorusWebSocket
import Glibc

/// A minimal blocking WebSocket client for in-process and end-to-end server tests: raw socket,
/// masked frames, receive timeouts. Independent of the server's code paths except the shared
/// frame encoder. The `async` readers (`text(within:)`, `closeCode(within:)`, `quiet`) wait
/// without blocking a thread of the cooperative pool, for servers that complete work there.
public final class BlockingWebSocketClient {
    public struct Frame: Equatable, Sendable {
        public var opcode: UInt8
        public var payload: [UInt8]
        public var text: String { String(decoding: payload, as: UTF8.self) }
        public var closeCode: UInt16? {
            opcode == 8 && payload.count >= 2 ? UInt16(payload[0]) << 8 | UInt16(payload[1]) : nil
        }

        public init(opcode: UInt8, payload: [UInt8]) {
            self.opcode = opcode
            self.payload = payload
        }
    }

    public enum Failure: Error { case connect(Int32), handshake(String), timeout, closed }

    public let fd: Int32
    private var buffer: [UInt8] = []
    public private(set) var handshakeResponse = ""

    /// Connects and upgrades. `receiveBuffer` shrinks SO_RCVBUF to make a slow reader.
    public init(
        port: Int, path: String = "/", host: String = "127.0.0.1", bindAddress: String? = nil,
        receiveBuffer: Int32? = nil, extraHeaders: String = "", timeoutSeconds: Int = 5
    ) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        if var size = receiveBuffer {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        if let bindAddress {
            var local = sockaddr_in()
            local.sin_family = sa_family_t(AF_INET)
            inet_pton(AF_INET, bindAddress, &local.sin_addr)
            _ = withUnsafePointer(to: &local) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, host, &addr.sin_addr)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard rc == 0 else {
            let err = errno
            close(fd)
            throw Failure.connect(err)
        }
        let request =
            "GET \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\(extraHeaders)\r\n"
        try sendRaw(Array(request.utf8))
        handshakeResponse = try readHead()
        guard handshakeResponse.hasPrefix("HTTP/1.1 101") else {
            close(fd)
            throw Failure.handshake(handshakeResponse)
        }
    }

    deinit { close(fd) }

    // MARK: Sending

    public func sendRaw(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { throw Failure.closed }
            sent += n
        }
    }

    public func send(text: String) throws {
        try send(opcode: .text, Array(text.utf8))
    }

    /// One masked frame with FIN set.
    public func send(opcode: WebSocketOpcode, _ payload: [UInt8]) throws {
        let frame = payload.withUnsafeBytes {
            WebSocketFrameEncoder.maskedFrame(opcode: opcode, payload: $0, maskKey: UInt32.random(in: 0...UInt32.max))
        }
        try sendRaw(frame)
    }

    /// Sends a close frame (1000) and shuts the socket down without waiting for the answer.
    public func closeNow() {
        try? send(opcode: .close, [0x03, 0xE8])
        shutdown(fd, Int32(SHUT_RDWR))
    }

    // MARK: Receiving (blocking, bounded by SO_RCVTIMEO)

    private func fill() throws {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n < 0 { throw errno == EAGAIN || errno == EWOULDBLOCK ? Failure.timeout : Failure.closed }
        if n == 0 { throw Failure.closed }
        buffer += chunk[..<n]
    }

    private func readHead() throws -> String {
        while true {
            if let end = findHeadEnd() {
                let head = String(decoding: buffer[..<end], as: UTF8.self)
                buffer.removeFirst(end + 4)
                return head
            }
            try fill()
        }
    }

    private func findHeadEnd() -> Int? {
        guard buffer.count >= 4 else { return nil }
        for i in 0...(buffer.count - 4)
        where buffer[i] == 13 && buffer[i + 1] == 10 && buffer[i + 2] == 13 && buffer[i + 3] == 10 {
            return i
        }
        return nil
    }

    /// Reads one server frame (unmasked).
    public func receive() throws -> Frame {
        while true {
            if buffer.count >= 2 {
                let opcode = buffer[0] & 0x0F
                var length = Int(buffer[1] & 0x7F)
                var offset = 2
                if length == 126 {
                    if buffer.count < 4 { try fill(); continue }
                    length = Int(buffer[2]) << 8 | Int(buffer[3])
                    offset = 4
                } else if length == 127 {
                    if buffer.count < 10 { try fill(); continue }
                    length = buffer[2..<10].reduce(0) { $0 << 8 | Int($1) }
                    offset = 10
                }
                if buffer.count >= offset + length {
                    let payload = Array(buffer[offset..<(offset + length)])
                    buffer.removeFirst(offset + length)
                    return Frame(opcode: opcode, payload: payload)
                }
            }
            try fill()
        }
    }

    /// Reads data frames until one is text, skipping pings.
    public func receiveText() throws -> String {
        while true {
            let frame = try receive()
            if frame.opcode == 1 { return frame.text }
            if frame.opcode == 8 { throw Failure.closed }
        }
    }

    /// Waits for the server's close frame and returns its code.
    public func receiveClose() throws -> UInt16? {
        while true {
            let frame = try receive()
            if frame.opcode == 8 { return frame.closeCode }
        }
    }

    /// True if nothing arrives within `milliseconds` (blocking in poll).
    public func isQuiet(milliseconds: Int) -> Bool {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return buffer.isEmpty && poll(&pfd, 1, Int32(milliseconds)) == 0
    }

    // MARK: Receiving (asynchronous waits)

    /// Something to read now (buffered or on the socket), without blocking.
    public var isReadable: Bool {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return !buffer.isEmpty || poll(&pfd, 1, 0) > 0
    }

    /// Waits without blocking a thread of the cooperative pool (in-process servers complete
    /// their asynchronous work there), then reads the next text message.
    public func text(within seconds: Double = 20) async throws -> String {
        try await waitReadable(seconds)
        return try receiveText()
    }

    public func closeCode(within seconds: Double = 20) async throws -> UInt16? {
        try await waitReadable(seconds)
        return try receiveClose()
    }

    /// True if nothing arrives within `milliseconds` (sleeping asynchronously).
    public func quiet(milliseconds: Int) async -> Bool {
        try? await Task.sleep(for: .milliseconds(milliseconds))
        return !isReadable
    }

    private func waitReadable(_ seconds: Double) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now + .milliseconds(Int(seconds * 1000))
        while !isReadable {
            if clock.now >= deadline { throw Failure.timeout }
            try await Task.sleep(for: .milliseconds(2))
        }
    }
}
