import ChorusLoop
import Testing

@testable import ChorusBenchCore

#if canImport(Glibc)
import Glibc
#endif

/// A tiny broadcast WebSocket server on ChorusLoop: every data message goes to every connection.
/// Test-only: it does not validate the key or compute Sec-WebSocket-Accept (the generator does not check it).
final class TinyBroadcastServer: EventLoopDelegate, @unchecked Sendable {
    final class Peer {
        let fd: Int32
        var upgraded = false
        var head: [UInt8] = []
        var reader = MessageReader(expectMasked: true)
        var out = OutboundQueue()
        var dirty = false
        var writable = false
        init(fd: Int32) { self.fd = fd }
    }

    let loop: EventLoop
    let listener: Int32
    let port: Int
    var peers: [Int32: Peer] = [:]
    var dirty: [Peer] = []
    let iov = UnsafeMutablePointer<iovec>.allocate(capacity: 64)
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536, alignment: 16)
    var thread: LoopThread?
    static let listenToken = UInt64(1) << 40

    init() throws {
        loop = try EventLoop(index: 0, tickNanoseconds: 100_000_000)
        listener = try Socket.listen(
            address: SocketAddress(host: "127.0.0.1", port: 0), backlog: 1024, reusePort: false)
        port = try Socket.localAddress(listener).port
        try loop.epoll.add(listener, events: .readable, token: Self.listenToken)
    }

    func start() {
        thread = LoopThread(name: "tiny-server") { [self] in try? self.loop.run(delegate: self) }
    }

    func stop() {
        loop.stop()
        thread?.join()
        for p in peers.values { Socket.close(p.fd) }
        Socket.close(listener)
    }

    func eventLoop(_ loop: EventLoop, ready token: UInt64, events: Epoll.Events) {
        if token == Self.listenToken {
            while case .processed(let (fd, _))? = try? Socket.accept(listener) {
                peers[fd] = Peer(fd: fd)
                try? loop.epoll.add(fd, events: .readable, token: UInt64(fd))
            }
            return
        }
        guard let p = peers[Int32(token)] else { return }
        if events.contains(.writable) { markDirty(p) }
        guard !events.isDisjoint(with: [.readable, .hangup, .error]) else { return }
        guard case .processed(let n)? = try? Socket.read(p.fd, into: buffer.baseAddress!, count: buffer.count) else {
            return
        }
        if n == 0 { drop(p); return }
        let bytes = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(buffer)[0..<n])
        var rest = bytes
        if !p.upgraded {
            p.head.append(contentsOf: bytes)
            guard let end = p.head.withUnsafeBytes({ Handshake.headEnd($0) }) else { return }
            p.upgraded = true
            p.out.append(
                SharedBytes.copying(
                    Array(
                        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: test\r\n\r\n"
                            .utf8)))
            markDirty(p)
            rest = UnsafeRawBufferPointer(rebasing: bytes[(n - (p.head.count - end))...])
            p.head = []
        }
        do {
            try p.reader.feed(rest) { event in
                guard case .message(let m) = event else { return }
                var frame: [UInt8] = []
                FrameEncoder.append(opcode: m.opcode, payload: m.payload, maskKey: nil, to: &frame)
                let shared = SharedBytes.copying(frame)
                for q in self.peers.values where q.upgraded {
                    q.out.append(shared)
                    self.markDirty(q)
                }
            }
        } catch {
            drop(p)
        }
    }

    func markDirty(_ p: Peer) {
        if !p.dirty { p.dirty = true; dirty.append(p) }
    }

    func drop(_ p: Peer) {
        loop.epoll.remove(p.fd)
        Socket.close(p.fd)
        peers[p.fd] = nil
    }

    func eventLoopTick(_ loop: EventLoop, now: UInt64) {}

    func eventLoopDidFinishIteration(_ loop: EventLoop) {
        let list = dirty
        dirty.removeAll()
        for p in list {
            p.dirty = false
            guard peers[p.fd] != nil else { continue }
            guard let done = try? p.out.flush(fd: p.fd, iov: iov, iovCapacity: 64) else { drop(p); continue }
            if done == p.writable {
                p.writable = !done
                try? loop.epoll.modify(p.fd, events: done ? .readable : [.readable, .writable], token: UInt64(p.fd))
            }
        }
    }
}

@Suite(.serialized) struct LoopbackTests {
    @Test(arguments: [1, 2])
    func twentyReceiversGetEveryMessage(threads: Int) throws {
        let server = try TinyBroadcastServer()
        server.start()
        defer { server.stop() }
        let plan = LoadPlan(
            url: WebSocketURL(host: "127.0.0.1", port: server.port, path: "/"), receivers: 20, publishers: 1, size: 64,
            window: 8, duration: 1.5, warmup: 0, drain: 2, threads: threads, messages: 200)
        let result = try FanoutRunner.run(plan, serverPID: getpid(), quiet: true)
        #expect(result.ledger.sentInWindow == 200)
        #expect(result.stats.receivedInWindow == 4_000)
        #expect(result.ledger.missed == 0)
        #expect(result.errors == 0)
        #expect(result.stats.latency.count == 4_000)
        #expect(result.stats.payloadBytes == 4_000 * 64)
        #expect(result.stats.wireBytes == 4_000 * 66)
        #expect(result.serverCPUSeconds != nil)
    }

    @Test func openLoopAtAFixedRate() throws {
        let server = try TinyBroadcastServer()
        server.start()
        defer { server.stop() }
        let plan = LoadPlan(
            url: WebSocketURL(host: "127.0.0.1", port: server.port, path: "/"), receivers: 10, publishers: 2, size: 200,
            rate: 400, duration: 1, warmup: 0.2, drain: 2, sourceAddresses: ["127.0.0.2", "127.0.0.3"])
        let result = try FanoutRunner.run(plan, serverPID: nil, quiet: true)
        #expect(result.ledger.sentInWindow >= 360 && result.ledger.sentInWindow <= 440)
        #expect(result.ledger.missed == 0 && result.errors == 0)
        #expect(result.stats.receivedInWindow == result.ledger.sentInWindow * 10)
    }

    /// `--also-url`: connection i goes to server i mod 2, and latency is also kept per server. Two
    /// unconnected broadcast servers: the publisher (connection 0) is on the first, so the first's
    /// ten receivers get every message and the second's ten (odd ids) none.
    @Test func alsoURLSpreadsConnectionsAndSplitsLatencyPerServer() throws {
        let first = try TinyBroadcastServer()
        let second = try TinyBroadcastServer()
        first.start()
        second.start()
        defer { first.stop(); second.stop() }
        var plan = LoadPlan(
            url: WebSocketURL(host: "127.0.0.1", port: first.port, path: "/"), receivers: 20, publishers: 1, size: 64,
            rate: 200, duration: 0.5, warmup: 0, drain: 0.5)
        plan.alsoURLs = [WebSocketURL(host: "127.0.0.1", port: second.port, path: "/")]
        let result = try FanoutRunner.run(plan, serverPID: nil, quiet: true)
        let sent = result.ledger.sentInWindow
        #expect(sent > 0)
        #expect(result.stats.latencyByServer.count == 2)
        #expect(result.stats.latencyByServer.first?.count == sent * 10)
        #expect(result.stats.latencyByServer.last?.count == 0)
        #expect(result.ledger.missed == sent * 10)
        #expect(result.table().contains("server 2 µs"))
    }

    @Test func connectHoldsConnections() throws {
        let server = try TinyBroadcastServer()
        server.start()
        defer { server.stop() }
        let result = try ConnectRunner.run(
            url: WebSocketURL(host: "127.0.0.1", port: server.port, path: "/"), connections: 300, rate: 3000, hold: 0.2,
            threads: 1, sourceAddresses: [], deflate: false, timeout: 10, serverPID: getpid(), quiet: true)
        #expect(result.opened == 300 && result.failures == 0 && result.closedDuringHold == 0)
        #expect(result.rssBefore != nil && result.rssAfter != nil)
    }
}
