// The whole server path in steady state: an in-process `WebSocketServer` running the echo app on
// one loop, driven by a blocking loopback client. One op = one 64 B message sent, read by the loop
// (shared read buffer, in-place unmask, UTF-8 check), echoed (frame from the loop's buffer pool),
// written with one sendmsg, and read back by the client. The malloc interposer counts every thread,
// the loop's included, so mallocs per op is the server's per-frame allocation count (expected: 0).
import Benchmark
import ChorusServer
import ChorusWebSocket

#if canImport(Glibc)
import Glibc
#endif

/// A blocking client socket that has completed the upgrade.
func connectClient(port: Int) -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var one: Int32 = 1
    setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(port).bigEndian)
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr)
    let rc = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    precondition(rc == 0, "connect failed")
    let request =
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    _ = Array(request.utf8).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    // Read the 101 response head byte by byte up to the blank line (no frames follow before we send).
    var tail: UInt32 = 0
    var byte: UInt8 = 0
    while tail != 0x0D0A_0D0A {
        precondition(recv(fd, &byte, 1, 0) == 1, "handshake failed")
        tail = tail << 8 | UInt32(byte)
    }
    return fd
}

@inline(__always)
func readExactly(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) {
    var got = 0
    while got < count {
        let n = recv(fd, buffer + got, count - got, 0)
        precondition(n > 0, "connection lost")
        got += n
    }
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.throughput, .wallClock, .mallocCountTotal],
        scalingFactor: .kilo,
        maxDuration: .seconds(2))

    Benchmark("Server echo round trip 64 B (in-process, loopback)") { benchmark in
        var config = ServerConfiguration()
        config.host = "127.0.0.1"
        config.port = 0
        config.threads = 1
        config.deflate = PerMessageDeflateConfig(mode: .off)
        let server = WebSocketServer(configuration: config, application: EchoApplication())
        try server.start()
        defer { server.shutdown() }
        let fd = connectClient(port: server.port)
        defer { close(fd) }
        let payload = [UInt8](repeating: UInt8(ascii: "x"), count: 64)
        let frame = payload.withUnsafeBytes {
            WebSocketFrameEncoder.maskedFrame(opcode: .text, payload: $0, maskKey: 0x1234_5678)
        }
        let reply = UnsafeMutableRawPointer.allocate(byteCount: 66, alignment: 8)
        defer { reply.deallocate() }
        func roundTrip() {
            _ = frame.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            readExactly(fd, reply, 66)
        }
        for _ in 0..<2_000 { roundTrip() }  // warm the pool, the queues and the loop's buffers
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { roundTrip() }
        benchmark.stopMeasurement()
    }
}
