import ChorusJSON
import ChorusServer
import ChorusSocketIO
import ChorusTestSupport
import Glibc
import Synchronization
import Testing

/// Opened by the test; asynchronous middleware waits on it (polling: no loop thread is involved).
final class Gate: Sendable {
    private let isOpen = Atomic<Bool>(false)
    func open() { isOpen.store(true, ordering: .releasing) }
    func wait() async {
        while !isOpen.load(ordering: .acquiring) { try? await Task.sleep(for: .milliseconds(5)) }
    }
}

final class Counter: Sendable {
    private let value = Atomic<Int>(0)
    func increment() { value.add(1, ordering: .relaxed) }
    func load() -> Int { value.load(ordering: .relaxed) }
}

final class Tag: Sendable {
    let name: String
    init(_ name: String) { self.name = name }
}

/// `Namespace.use(async:)` in-process, driven by a raw WebSocket client speaking Engine.IO.
@Suite("Socket.IO asynchronous middleware", .serialized)
struct AsyncMiddlewareTests {
    final class Fixture {
        let io: SocketIOServer
        let server: WebSocketServer
        let gate = Gate()
        let connections = Counter()

        /// `middlewareTimeout`: far above the longest wait of these tests on a loaded machine (the
        /// gated middleware would otherwise time out before the test opens the gate).
        init(maxPendingPackets: Int = 16, middlewareTimeout: Double = 120, maxPayloadBeforeConnect: Int = 16 * 1024)
            throws
        {
            var sio = SocketIOConfiguration()
            sio.maxPendingPackets = maxPendingPackets
            sio.middlewareTimeout = middlewareTimeout
            sio.maxPayloadBeforeConnect = maxPayloadBeforeConnect
            io = SocketIOServer(configuration: sio)
            let gate = self.gate
            io.sockets.use(async: { handshake in
                await gate.wait()
                if handshake.auth["name"]?.stringValue == "bad" { return .reject(message: "unauthorized") }
                return .accept(data: Tag(handshake.auth["name"]?.stringValue ?? "anonymous"))
            })
            // A synchronous middleware after the asynchronous one sees what it attached.
            io.sockets.use { socket in
                (socket.data as? Tag) == nil ? .reject(message: "no tag") : .accept
            }
            let connections = self.connections
            io.sockets.onConnection { socket in
                connections.increment()
                socket.emit("hello", .string((socket.data as? Tag)?.name ?? "?"))
            }
            io.sockets.on("echo") { _, args, ack in ack?.send(args) }
            var config = ServerConfiguration()
            config.host = "127.0.0.1"
            config.port = 0
            config.threads = 1
            config.applicationTimeouts = sio.timeouts
            config.maxMessageSize = sio.webSocketMessageLimit
            server = WebSocketServer(configuration: config, application: io)
            try server.start()
        }

        deinit { server.shutdown() }

        func client() async throws -> BlockingWebSocketClient {
            let c = try BlockingWebSocketClient(port: server.port, path: "/socket.io/?EIO=4&transport=websocket")
            let open = try await c.text()
            #expect(open.hasPrefix("0{\"sid\":"))
            return c
        }
    }

    /// Polls `condition` for up to `seconds`, sleeping asynchronously: these tests must not
    /// block a thread of the cooperative pool, where the middleware tasks run (other suites'
    /// blocking tests may already hold the rest of it).
    static func eventually(_ seconds: Double = 20, _ condition: () -> Bool) async -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now + .milliseconds(Int(seconds * 1000))
        while !condition() {
            if clock.now >= deadline { return false }
            try? await Task.sleep(for: .milliseconds(2))
        }
        return true
    }

    @Test("accepted: CONNECT reply after the middleware, with the data it attached", .timeLimit(.minutes(1)))
    func accepted() async throws {
        let f = try Fixture()
        let c = try await f.client()
        try c.send(text: #"40{"name":"ann"}"#)
        #expect(await Self.eventually { f.io.asyncMiddlewaresInFlight == 1 })
        #expect(await c.quiet(milliseconds: 100), "nothing before the middleware completes")
        f.gate.open()
        #expect(try await c.text().hasPrefix(#"40{"sid":"#))
        #expect(try await c.text() == #"42["hello","ann"]"#)
        #expect(f.io.sockets.socketCount == 1)
        #expect(await Self.eventually { f.io.asyncMiddlewaresInFlight == 0 })
    }

    @Test(
        "a middleware that never finishes: CONNECT_ERROR at middlewareTimeout, its late result dropped",
        .timeLimit(.minutes(1)))
    func timedOut() async throws {
        // 1 s, not less: the re-CONNECT at the end runs the middleware again under the same limit, on a
        // global executor that the suites running in parallel keep busy.
        let f = try Fixture(middlewareTimeout: 1.0)
        let c = try await f.client()
        let clock = ContinuousClock()
        let start = clock.now
        try c.send(text: #"40{"name":"ann"}"#)
        #expect(try await c.text() == #"44{"message":"middleware timeout"}"#)
        let elapsed = clock.now - start
        // Generous: loaded CI machines.
        #expect(elapsed >= .milliseconds(950) && elapsed < .seconds(30), "after \(elapsed)")
        #expect(f.io.stats["middleware_timeout"] == 1 && f.io.stats["connect_error"] == 1)
        // The middleware finishing late changes nothing; the connection still serves a new CONNECT.
        f.gate.open()
        #expect(await Self.eventually { f.io.asyncMiddlewaresInFlight == 0 })
        #expect(await Self.eventually { f.io.stats["connect_abandoned"] == 1 })
        #expect(f.connections.load() == 0)
        try c.send(text: #"40{"name":"ann"}"#)
        #expect(try await c.text().hasPrefix(#"40{"sid":"#))
    }

    @Test(
        "before the first CONNECT succeeds, messages over maxPayloadBeforeConnect close with 1009; after, full size",
        .timeLimit(.minutes(1)))
    func limitBeforeConnect() async throws {
        let f = try Fixture(maxPayloadBeforeConnect: 1000)
        f.gate.open()
        // At the limit before CONNECT: accepted (an unknown packet type is a parse error, so send a
        // CONNECT padded with auth data to exactly 1000 bytes).
        let c = try await f.client()
        let prefix = #"40{"name":"ann","pad":""#
        let connect = prefix + String(repeating: "x", count: 1000 - prefix.utf8.count - 2) + #""}"#
        #expect(connect.utf8.count == 1000)
        try c.send(text: connect)
        #expect(try await c.text().hasPrefix(#"40{"sid":"#))
        #expect(try await c.text() == #"42["hello","ann"]"#)
        // Connected: a 5000-byte event is read whole.
        let big = String(repeating: "y", count: 5000)
        try c.send(text: #"421["echo",""# + big + #""]"#)
        #expect(try await c.text() == #"431[""# + big + #""]"#)
        // One byte over, before CONNECT: 1009, without the server assembling it.
        let d = try await f.client()
        try d.send(text: connect + " ")
        #expect(try await d.closeCode() == 1009)
    }

    @Test("rejected: CONNECT_ERROR {message} and nothing else", .timeLimit(.minutes(1)))
    func rejected() async throws {
        let f = try Fixture()
        f.gate.open()
        let c = try await f.client()
        try c.send(text: #"40{"name":"bad"}"#)
        #expect(try await c.text() == #"44{"message":"unauthorized"}"#)
        #expect(await c.quiet(milliseconds: 200))
        #expect(f.connections.load() == 0 && f.io.sockets.socketCount == 0)
        #expect(f.io.stats["connect_error"] == 1)
    }

    @Test("packets sent while the CONNECT is parked are replayed after the reply, in order", .timeLimit(.minutes(1)))
    func queued() async throws {
        let f = try Fixture()
        let c = try await f.client()
        try c.send(text: #"40{"name":"q"}"#)
        try c.send(text: #"421["echo","a"]"#)
        try c.send(text: #"422["echo","b"]"#)
        try c.send(text: "40")  // a duplicate CONNECT while parked is ignored
        // An Engine.IO ping answered: everything before it was handled while parked (a CONNECT
        // arriving after the admission would close the connection, as the reference does).
        try c.send(text: "2")
        #expect(try await c.text() == "3")
        #expect(await Self.eventually { f.io.asyncMiddlewaresInFlight == 1 })
        f.gate.open()
        #expect(try await c.text().hasPrefix(#"40{"sid":"#))
        #expect(try await c.text() == #"42["hello","q"]"#)
        #expect(try await c.text() == #"431["a"]"#)
        #expect(try await c.text() == #"432["b"]"#)
        #expect(await c.quiet(milliseconds: 200))
        #expect(f.connections.load() == 1)
    }

    @Test("more packets than maxPendingPackets while parked closes the connection (1008)", .timeLimit(.minutes(1)))
    func queueBound() async throws {
        let f = try Fixture(maxPendingPackets: 2)
        let c = try await f.client()
        try c.send(text: "40")
        for i in 0..<3 { try c.send(text: #"42["echo",\#(i)]"#) }
        #expect(try await c.closeCode() == 1008)
        c.closeNow()
        #expect(await Self.eventually { f.server.openConnections == 0 })
        f.gate.open()
        #expect(await Self.eventually { f.io.asyncMiddlewaresInFlight == 0 })
        #expect(f.connections.load() == 0 && f.io.sockets.socketCount == 0)
    }

    @Test("client gone during verification: no crash, nothing sent, nothing left", .timeLimit(.minutes(1)))
    func clientGone() async throws {
        let f = try Fixture()
        do {
            let c = try await f.client()
            try c.send(text: #"40{"name":"gone"}"#)
            try c.send(text: #"42["echo","lost"]"#)
            #expect(await Self.eventually { f.io.asyncMiddlewaresInFlight == 1 })
            c.closeNow()
        }
        #expect(await Self.eventually { f.server.openConnections == 0 })
        f.gate.open()  // the middleware completes after the connection is gone
        #expect(await Self.eventually { f.io.asyncMiddlewaresInFlight == 0 })
        try await Task.sleep(for: .milliseconds(100))  // let a (wrongly) delivered completion run on the loop
        #expect(f.io.sockets.socketCount == 0)
        #expect(f.connections.load() == 0)
        #expect(f.io.stats["connect"] == nil && f.io.stats["connect_error"] == nil)
        // The server still serves.
        let d = try await f.client()
        try d.send(text: #"40{"name":"next"}"#)
        #expect(try await d.text().hasPrefix(#"40{"sid":"#))
    }

    @Test(
        "namespace left (DISCONNECT) during verification: the result is dropped; a new CONNECT works",
        .timeLimit(.minutes(1)))
    func namespaceLeft() async throws {
        let f = try Fixture()
        let c = try await f.client()
        try c.send(text: #"40{"name":"first"}"#)
        #expect(await Self.eventually { f.io.asyncMiddlewaresInFlight == 1 })
        try c.send(text: "41")
        try await Task.sleep(for: .milliseconds(50))
        f.gate.open()
        #expect(await Self.eventually { f.io.asyncMiddlewaresInFlight == 0 })
        #expect(await c.quiet(milliseconds: 200), "no reply for an abandoned CONNECT")
        #expect(await Self.eventually { f.io.stats["connect_abandoned"] == 1 })
        #expect(f.io.sockets.socketCount == 0)
        try c.send(text: #"40{"name":"second"}"#)
        #expect(try await c.text().hasPrefix(#"40{"sid":"#))
        #expect(try await c.text() == #"42["hello","second"]"#)
    }
}
