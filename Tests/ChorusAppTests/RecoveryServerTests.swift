import ChorusJSON
import ChorusServer
import ChorusSocketIO
import ChorusTestSupport
import Foundation
import Synchronization
import Testing

/// Connection state recovery in process, frame by frame: what is on the wire with recovery on
/// and off, and a restore driven by a raw Engine.IO client (the JS client's side is in
/// RecoveryE2ETests).
@Suite("connection state recovery: the wire", .serialized)
struct RecoveryServerTests {
    final class Fixture {
        let io: SocketIOServer
        let server: WebSocketServer
        /// `socket.recovered` of every socket the connection handler saw, in order.
        let recovered = Recorded()

        init(recovery: RecoveryConfiguration?, threads: Int = 2, maxBackpressure: Int? = nil) throws {
            var sio = SocketIOConfiguration()
            sio.recovery = recovery
            io = SocketIOServer(configuration: sio)
            let recovered = self.recovered
            io.sockets.onConnection { socket in recovered.append(socket.recovered) }
            io.sockets.on("join") { socket, args, ack in
                for room in args.compactMap(\.stringValue) { socket.join(room) }
                ack?(true)
            }
            io.sockets.on("direct") { socket, args, _ in socket.emit("direct", args) }
            io.sockets.on("ask") { socket, _, _ in socket.emit("q", [1], timeout: 5) { _ in } }
            var config = ServerConfiguration()
            config.host = "127.0.0.1"
            config.port = 0
            config.threads = threads
            config.applicationTimeouts = sio.timeouts
            config.maxMessageSize = sio.webSocketMessageLimit
            if let maxBackpressure { config.maxBackpressure = maxBackpressure }
            server = WebSocketServer(configuration: config, application: io)
            try server.start()
        }

        deinit { server.shutdown() }

        /// Connects to "/" with `auth`; returns the client and the CONNECT reply's object.
        func connect(auth: String = "") async throws -> (BlockingWebSocketClient, [String: Any]) {
            let c = try BlockingWebSocketClient(port: server.port, path: "/socket.io/?EIO=4&transport=websocket")
            #expect(try await c.text().hasPrefix("0{\"sid\":"))
            try c.send(text: "40" + auth)
            var frame = try await c.text()
            while !frame.hasPrefix("40") { frame = try await c.text() }
            return (c, try Self.object(frame.dropFirst(2)))
        }

        static func object(_ s: Substring) throws -> [String: Any] {
            try JSONSerialization.jsonObject(with: Data(s.utf8)) as? [String: Any] ?? [:]
        }

        var counters: RecoveryCounters { io.sockets.recoveryCounters ?? RecoveryCounters() }
    }

    final class Recorded: Sendable {
        private let list = Mutex<[Bool]>([])
        func append(_ value: Bool) { list.withLock { $0.append(value) } }
        var values: [Bool] { list.withLock { $0 } }
    }

    @Test(
        "recovery on: pid in the CONNECT reply; an offset after every replayable event, none on an ack request",
        .timeLimit(.minutes(1)))
    func offsetsOnTheWire() async throws {
        let f = try Fixture(recovery: RecoveryConfiguration())
        let (c, reply) = try await f.connect()
        defer { c.closeNow() }
        #expect(
            (reply["sid"] as? String)?.count == EngineIOSessionID.socketIDLength
                && (reply["pid"] as? String)?.count == 20)
        #expect(reply["sid"] as? String != reply["pid"] as? String)
        try c.send(text: #"420["join","r"]"#)
        #expect(try await c.text() == "430[true]")
        f.io.to("r").emit("news", ["n": 1])
        #expect(try await c.text() == #"42["news",{"n":1},"1"]"#)
        try c.send(text: #"42["direct","x"]"#)
        #expect(try await c.text() == #"42["direct","x","2"]"#)
        f.io.sockets.emit("all")
        #expect(try await c.text() == #"42["all","3"]"#)
        // A binary event: the offset is the last element of the text part; the attachment follows.
        f.io.to("r").emit("bin", .binary([7, 8]))
        #expect(try await c.text() == #"451-["bin",{"_placeholder":true,"num":0},"4"]"#)
        #expect(try c.receive().payload == [7, 8])
        // Emits that ask for an ack are not replayable (their callback cannot be restored).
        try c.send(text: #"42["ask"]"#)
        #expect(try await c.text() == #"420["q",1]"#)
        // A room the client is not in: nothing.
        f.io.to("elsewhere").emit("no")
        #expect(await c.quiet(milliseconds: 100))
    }

    @Test("recovery off: no pid, no offsets", .timeLimit(.minutes(1)))
    func noRecoveryNoOffsets() async throws {
        let f = try Fixture(recovery: nil)
        let (c, reply) = try await f.connect()
        defer { c.closeNow() }
        #expect(reply["pid"] == nil && reply["sid"] != nil)
        f.io.sockets.emit("all", 1)
        #expect(try await c.text() == #"42["all",1]"#)
        try c.send(text: #"42["direct","x"]"#)
        #expect(try await c.text() == #"42["direct","x"]"#)
        #expect(f.io.sockets.recoveryCounters == nil)
    }

    @Test(
        "restore: the missed events of its rooms, in order, before the CONNECT reply with the same sid and pid",
        .timeLimit(.minutes(1)))
    func restore() async throws {
        let f = try Fixture(recovery: RecoveryConfiguration())
        let (a, reply) = try await f.connect()
        let sid = try #require(reply["sid"] as? String)
        let pid = try #require(reply["pid"] as? String)
        try a.send(text: #"420["join","r","s"]"#)
        #expect(try await a.text() == "430[true]")
        f.io.to("r").emit("seen", 0)
        #expect(try await a.text() == #"42["seen",0,"1"]"#)
        a.closeNow()  // the transport drops
        #expect(await AsyncMiddlewareTests.eventually { f.counters.persisted == 1 })
        f.io.to("r").emit("m", 1)
        f.io.to("other").emit("not-for-it", 2)
        f.io.sockets.emit("m", 3)
        f.io.to("s", "r").emit("m", 4)  // in two of its rooms: once
        f.io.sockets.except(["s"]).emit("not-for-it", 5)
        f.io.to(sid).emit("m", 6)  // to its id, while away
        // A stranger's pid, and a bad offset, are not recovered.
        let (stranger, strangerReply) = try await f.connect(auth: #"{"pid":"nope","offset":"1"}"#)
        stranger.closeNow()
        #expect(strangerReply["sid"] as? String != sid)
        let b = try BlockingWebSocketClient(port: f.server.port, path: "/socket.io/?EIO=4&transport=websocket")
        defer { b.closeNow() }
        #expect(try await b.text().hasPrefix("0{"))
        try b.send(text: #"40{"pid":"\#(pid)","offset":"1","token":"ignored"}"#)
        #expect(try await b.text() == #"42["m",1,"2"]"#)
        #expect(try await b.text() == #"42["m",3,"4"]"#)
        #expect(try await b.text() == #"42["m",4,"5"]"#)
        #expect(try await b.text() == #"42["m",6,"7"]"#)
        let again = try Fixture.object(try await b.text().dropFirst(2))
        #expect(again["sid"] as? String == sid && again["pid"] as? String == pid)
        #expect(await AsyncMiddlewareTests.eventually { f.recovered.values == [false, false, true] })
        // Back in its rooms: live events arrive, with the next offsets.
        f.io.to("s").emit("live", 7)
        #expect(try await b.text() == #"42["live",7,"8"]"#)
        let counters = f.counters
        #expect(counters.recovered == 1 && counters.replayed == 4 && counters.unknownSession == 1)
        // The session was used: the same pid again (another client) gets a fresh socket.
        let (c, cReply) = try await f.connect(auth: #"{"pid":"\#(pid)","offset":"1"}"#)
        c.closeNow()
        #expect(cReply["sid"] as? String != sid)
    }

    @Test(
        "bounds: the byte budget drops the oldest events, and a client behind it gets a fresh session; the session cap",
        .timeLimit(.minutes(1)))
    func bounds() async throws {
        let f = try Fixture(recovery: RecoveryConfiguration(maxBufferedBytes: 2_000, maxSessions: 2))
        let (a, reply) = try await f.connect()
        let pid = try #require(reply["pid"] as? String)
        f.io.sockets.emit("seen")
        #expect(try await a.text() == #"42["seen","1"]"#)
        a.closeNow()
        #expect(await AsyncMiddlewareTests.eventually { f.counters.persisted == 1 })
        for i in 0..<40 { f.io.sockets.emit("filler", .string(String(repeating: "x", count: 100)), JSONValue(i)) }
        #expect(
            await AsyncMiddlewareTests.eventually {
                f.counters.entries > 0 && f.counters.bytes <= 2_000 && f.counters.entriesEvicted > 0
            })
        let (b, bReply) = try await f.connect(auth: #"{"pid":"\#(pid)","offset":"1"}"#)
        b.closeNow()
        #expect(bReply["sid"] as? String != reply["sid"] as? String)
        #expect(f.counters.offsetGone == 1)
        // Three more dropped sessions; the cap of two keeps the newest.
        for _ in 0..<3 {
            let (c, _) = try await f.connect()
            c.closeNow()
        }
        #expect(await AsyncMiddlewareTests.eventually { f.counters.persisted == 5 })
        #expect(f.counters.sessions == 2 && f.counters.sessionsEvicted >= 2)
    }

    @Test("a replay larger than the backpressure limit arrives whole", .timeLimit(.minutes(1)))
    func replayPastTheLimit() async throws {
        // 16 KiB: above the 8 KiB chunk small frames share (a queue entry is charged the whole chunk).
        let f = try Fixture(recovery: RecoveryConfiguration(), maxBackpressure: 16 * 1024)
        let (a, reply) = try await f.connect()
        let pid = try #require(reply["pid"] as? String)
        f.io.sockets.emit("seen")
        #expect(try await a.text() == #"42["seen","1"]"#)
        a.closeNow()
        #expect(await AsyncMiddlewareTests.eventually { f.counters.persisted == 1 })
        let pad = JSONValue.string(String(repeating: "x", count: 1000))
        for i in 0..<100 { f.io.sockets.emit("m", JSONValue(i), pad) }  // ~100 KB: six times the limit
        let b = try BlockingWebSocketClient(port: f.server.port, path: "/socket.io/?EIO=4&transport=websocket")
        defer { b.closeNow() }
        #expect(try await b.text().hasPrefix("0{"))
        try b.send(text: #"40{"pid":"\#(pid)","offset":"1"}"#)
        for i in 0..<100 {
            #expect(try await b.text().hasPrefix(#"42["m",\#(i),"#))
        }
        #expect(try await b.text().hasPrefix(#"40{"sid":"\#(reply["sid"] as? String ?? "")""#))
    }
}
