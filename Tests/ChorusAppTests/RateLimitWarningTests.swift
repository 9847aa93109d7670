import ChorusJSON
import ChorusServer
import ChorusSocketIO
import ChorusTestSupport
import Testing

/// `--rate-limit-policy drop` on the realtime side: the dropped events are counted and the client
/// is told, once and then at most once a second, with an `error` event.
@Suite("Socket.IO: a rate-limited client is warned", .serialized, .timeLimit(.minutes(1)))
struct RateLimitWarningTests {
    @Test(
        "events over the limit are dropped; one error event says so at once, a second later another with the count since"
    )
    func warned() async throws {
        var sio = SocketIOConfiguration()
        sio.recovery = nil
        let io = SocketIOServer(configuration: sio)
        io.sockets.on("ping") { _, _, ack in ack?("pong") }
        var config = ServerConfiguration()
        config.host = "127.0.0.1"
        config.port = 0
        config.threads = 1
        config.applicationTimeouts = sio.timeouts
        config.maxMessageSize = sio.webSocketMessageLimit
        // Three messages at once, then (practically) none: a token per 1,000 s, so that however slow a
        // loaded machine is, nothing refills during the test. The Socket.IO CONNECT is one of them.
        config.messageRate = RateLimit(perSecond: 0.001, burst: 3)
        config.rateLimitPolicy = .drop
        let server = WebSocketServer(configuration: config, application: io)
        try server.start()
        defer { server.shutdown() }
        let c = try BlockingWebSocketClient(port: server.port, path: "/socket.io/?EIO=4&transport=websocket")
        defer { c.closeNow() }
        #expect(try await c.text().hasPrefix("0{"))
        try c.send(text: "40")
        #expect(try await c.text().hasPrefix("40{"))
        for i in 0..<6 { try c.send(text: #"42\#(i)["ping"]"#) }
        // Two answered (the burst left after the CONNECT), the first drop reported at once.
        #expect(try await c.text() == #"430["pong"]"#)
        #expect(try await c.text() == #"431["pong"]"#)
        #expect(try await c.text() == #"42["error",{"error":"rate limit exceeded","dropped":1}]"#)
        #expect(await c.quiet(milliseconds: 300), "the other drops wait for the next second")
        var limited = 0
        for _ in 0..<500 where limited < 4 {
            limited = server.stats.rateLimited
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(limited == 4)
        // A second later the next drop reports every drop since: the three held back and itself.
        try await Task.sleep(for: .milliseconds(1100))
        try c.send(text: #"4210["ping"]"#)
        #expect(try await c.text() == #"42["error",{"error":"rate limit exceeded","dropped":4}]"#)
    }
}
