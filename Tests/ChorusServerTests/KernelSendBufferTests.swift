import ChorusServer
import ChorusTestSupport
import Foundation
import Glibc
import Testing

/// The kernel's side of a slow consumer: `--socket-send-buffer` bounds the send queue the kernel
/// keeps for a client that stops reading, and what it holds counts toward `--max-backpressure`.
@Suite("Kernel send buffers", .serialized, .timeLimit(.minutes(1)))
struct KernelSendBufferTests {
    static let sendBuffer = 32 * 1024
    static let maxBackpressure = 128 * 1024
    static let messageSize = 8 * 1024
    static let messages = 300

    /// The server-side send queue (tx_queue, the bytes SIOCOUTQ reports) of the loopback
    /// connection between the server's `serverPort` and the client's `clientPort`, from
    /// /proc/net/tcp: observed from outside, as an operator would.
    static func serverSendQueue(serverPort: Int, clientPort: Int) -> Int? {
        // Read to the end by hand: /proc files report size 0, and the table is generated as read.
        guard let file = fopen("/proc/net/tcp", "r") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&chunk, 1, chunk.count, file)
            if n <= 0 { break }
            bytes += chunk[0..<n]
        }
        let table = String(decoding: bytes, as: UTF8.self)
        let local = String(format: ":%04X", serverPort)
        let remote = String(format: ":%04X", clientPort)
        for line in table.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: " ")
            guard fields.count > 4, fields[1].hasSuffix(local), fields[2].hasSuffix(remote) else { continue }
            let queues = fields[4].split(separator: ":")
            return Int(queues[0], radix: 16)
        }
        return nil
    }

    static func localPort(_ fd: Int32) -> Int {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    static func receiveBufferSize(_ fd: Int32) -> Int {
        var size: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, &length)
        return Int(size)
    }

    /// A broadcast server, a client that never reads, and a reader that publishes `messages`
    /// messages one at a time (each awaited back, so the reader itself is never slow).
    /// Returns the slow client's largest server-side send queue seen, and the server.
    static func run(policy: BackpressurePolicy, slow: BlockingWebSocketClient? = nil)
        throws -> (server: WebSocketServer, slow: BlockingWebSocketClient, largestKernelQueue: Int, readerGotAll: Bool)
    {
        let server = try startServer(BroadcastApplication(), threads: 1) {
            $0.socketSendBuffer = sendBuffer
            $0.maxBackpressure = maxBackpressure
            $0.backpressurePolicy = policy
        }
        let slow = try BlockingWebSocketClient(port: server.port, receiveBuffer: 4096)
        let reader = try BlockingWebSocketClient(port: server.port)
        let slowPort = localPort(slow.fd)
        var largest = 0
        var gotAll = true
        let payload = String(repeating: "m", count: messageSize - 8)
        for i in 0..<messages {
            let text = String(format: "%07d ", i) + payload
            try reader.send(text: text)
            if try reader.receiveText() != text { gotAll = false }
            if i % 10 == 0 || i == messages - 1 {
                largest = max(largest, serverSendQueue(serverPort: server.port, clientPort: slowPort) ?? 0)
            }
        }
        return (server, slow, largest, gotAll)
    }

    @Test("a non-reading client's kernel queue stays under --socket-send-buffer; the reader gets everything (drop)")
    func dropPolicy() throws {
        let (server, slow, largest, gotAll) = try Self.run(policy: .drop)
        defer { server.shutdown() }
        #expect(gotAll)
        // The kernel doubles SO_SNDBUF for its bookkeeping; the payload it queues stays within that.
        #expect(largest > 0 && largest <= 2 * Self.sendBuffer, "largest server-side send queue \(largest)")
        #expect(server.stats.dropped > 0)
        // Everything pending for the slow client (its own receive buffer, the server's kernel queue
        // and the server's queue) is within maxBackpressure plus that receive buffer and a message:
        // the kernel's bytes were counted toward the limit, not added on top of it.
        let clientBuffer = Self.receiveBufferSize(slow.fd)
        var received = 0
        while !slow.isQuiet(milliseconds: 300) {
            received += try slow.receive().payload.count
        }
        #expect(received > 0)
        #expect(
            received <= Self.maxBackpressure + clientBuffer + Self.messageSize,
            "slow client received \(received) bytes after waking (receive buffer \(clientBuffer))")
    }

    @Test("with --backpressure-policy close the non-reading client is closed; the reader gets everything")
    func closePolicy() throws {
        let (server, _, largest, gotAll) = try Self.run(policy: .close)
        defer { server.shutdown() }
        #expect(gotAll)
        #expect(largest <= 2 * Self.sendBuffer, "largest server-side send queue \(largest)")
        #expect(server.stats.backpressureClosed == 1)
    }
}
