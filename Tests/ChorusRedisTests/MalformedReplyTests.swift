import ChorusLoop
import ChorusRedis
import ChorusTestSupport
import Foundation
import Synchronization
import Testing

/// A scripted stand-in for Redis on a loopback port: it answers the login and the SUBSCRIBE, then
/// sends replies no real Redis sends. One blocking thread, every read bounded by SO_RCVTIMEO.
private final class ScriptedRedis: @unchecked Sendable {
    let port: UInt16
    private let listener: Int32
    private var thread: Thread?
    let failure = Mutex<String?>(nil)

    init(script: @escaping @Sendable (_ accept: () throws -> Peer) throws -> Void) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard rc == 0, listen(fd, 4) == 0 else { throw HarnessError("cannot listen: errno \(errno)") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        port = UInt16(bigEndian: address.sin_port)
        listener = fd
        let thread = Thread { [self] in
            do {
                try script {
                    var tv = timeval(tv_sec: 10, tv_usec: 0)
                    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
                    let peer = accept(fd, nil, nil)
                    guard peer >= 0 else { throw HarnessError("accept failed: errno \(errno)") }
                    return Peer(fd: peer)
                }
            } catch {
                self.failure.withLock { $0 = "\(error)" }
            }
        }
        self.thread = thread
        thread.start()
    }

    deinit { close(listener) }

    final class Peer {
        let fd: Int32
        private var received: [UInt8] = []

        init(fd: Int32) {
            self.fd = fd
            // Generous: the suite runs beside others on a loaded 2-core machine. A test that ends
            // stops its client, which closes the connection and ends any wait at once.
            var tv = timeval(tv_sec: 60, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        }

        deinit { close(fd) }

        /// Reads until the bytes received so far contain `needle` (then forgets them).
        func expect(_ needle: String) throws {
            let bytes = Array(needle.utf8)
            var chunk = [UInt8](repeating: 0, count: 4096)
            while !contains(bytes) {
                let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                guard n > 0 else {
                    throw HarnessError("peer: no \(needle.debugDescription) (read \(n), errno \(errno))")
                }
                received += chunk[..<n]
            }
            received = []
        }

        private func contains(_ needle: [UInt8]) -> Bool {
            guard received.count >= needle.count else { return false }
            for start in 0...(received.count - needle.count)
            where received[start..<(start + needle.count)].elementsEqual(needle) {
                return true
            }
            return false
        }

        func send(_ text: String) {
            let bytes = Array(text.utf8)
            _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        }

        /// The login (PING) and the resubscription of channel `c`.
        func handshake() throws {
            try expect("PING\r\n")
            send("+PONG\r\n")
            try expect("SUBSCRIBE\r\n$1\r\nc\r\n")
            send("*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n")
        }
    }
}

@Suite("Replies no Redis should send")
struct MalformedReplyTests {
    @Test func malformedPushesAreCountedAndSkippedAndAProtocolErrorReconnects() async throws {
        let server = try ScriptedRedis { accept in
            let first = try accept()
            try first.handshake()
            first.send("*4\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nx\r\n$1\r\ny\r\n")  // one element too many
            first.send("*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n:5\r\n")  // an integer payload
            first.send("*3\r\n$5\r\nhello\r\n$1\r\nc\r\n$1\r\nz\r\n")  // an unknown kind
            first.send("*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$3\r\nok!\r\n")  // a good one after them
            first.send("?this is not RESP\r\n")  // a protocol error
            let second = try accept()  // so it reconnects
            try second.handshake()
            second.send("*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$5\r\nagain\r\n")
            // Hold the connection until the test is done reading.
            try? second.expect("never sent")
        }
        let harness = try TestLoop()
        defer { harness.shutdown() }
        let inbox = Inbox()
        let configuration = RedisClientConfiguration(
            initialReconnectDelay: .milliseconds(20), maximumReconnectDelay: .milliseconds(50))
        let subscriber = RedisSubscriber(
            url: try RedisURL(parsing: "redis://127.0.0.1:\(server.port)"), loop: harness.loop,
            configuration: configuration, logger: TestLoop.logger,
            onMessage: inbox.receive, onStateChange: inbox.record)
        defer { subscriber.stop() }
        subscriber.subscribe([Array("c".utf8)])
        subscriber.start()
        #expect(await eventually { inbox.received.count == 2 })
        #expect(inbox.payloads == [Array("ok!".utf8), Array("again".utf8)])
        let counters = await subscriber.snapshot()
        #expect(counters.malformedReplies == 3)
        #expect(counters.reconnects == 1)
        guard inbox.disconnectedReasons.count == 1 else {
            Issue.record("expected one disconnect, got \(inbox.stateLog)")
            return
        }
        #expect(inbox.disconnectedReasons[0].lowercased().contains("protocol error"))
        #expect(server.failure.withLock { $0 } == nil)
    }

    @Test func aCommandReplyThatIsAnErrorIsAFailureAndTheConnectionCarriesOn() async throws {
        let server = try ScriptedRedis { accept in
            let peer = try accept()
            try peer.expect("PING\r\n")
            peer.send("+PONG\r\n")
            try peer.expect("GET\r\n")
            peer.send("-WRONGTYPE Operation against a key holding the wrong kind of value\r\n")
            try peer.expect("GET\r\n")
            peer.send("*2\r\n$1\r\na\r\n*1\r\n:7\r\n")  // a nested array is fine too
            try? peer.expect("never sent")
        }
        let harness = try TestLoop()
        defer { harness.shutdown() }
        let client = RedisClient(
            url: try RedisURL(parsing: "redis://127.0.0.1:\(server.port)"), loop: harness.loop, logger: TestLoop.logger)
        defer { client.stop() }
        client.start()
        #expect(
            await client.run(["GET", "k"])
                == .failure(.server("WRONGTYPE Operation against a key holding the wrong kind of value")))
        #expect(
            await client.run(["GET", "k"]) == .success(.array([.bulk([UInt8(ascii: "a")]), .array([.integer(7)])])))
        #expect(await client.snapshot().connects == 1)
        #expect(server.failure.withLock { $0 } == nil)
    }
}
