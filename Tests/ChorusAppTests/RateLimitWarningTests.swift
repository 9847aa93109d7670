import ChorusServer
import ChorusSocketIO
import ChorusTestSupport
import Testing

/// `--rate-limit-policy drop` on the realtime side: the dropped events are counted and the client
/// is told, once and then at most once a second, with an `error` event.
@Suite("Socket.IO: a rate-limited client is warned", .serialized, .timeLimit(.minutes(1)))
struct RateLimitWarningTests {
    @Test("events over the limit are dropped; one error event says so, the next second another with the count since")
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
        // Three messages at once, then one every 2 s (slow enough that a loaded machine's pauses
        // refill nothing in between); the Socket.IO CONNECT is one of them.
        config.messageRate = RateLimit(perSecond: 0.5, burst: 3)
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
        #expect(server.stats.rateLimited >= 4)
        // A token later (2 s), one more is answered and the next drop reports every drop since.
        try await Task.sleep(for: .milliseconds(2100))
        for i in 10..<14 { try c.send(text: #"42\#(i)["ping"]"#) }
        var frames: [String] = []
        for _ in 0..<2 { frames.append(try await c.text()) }
        #expect(frames.contains(#"4310["pong"]"#), "\(frames)")
        #expect(frames.contains { $0.hasPrefix(#"42["error",{"error":"rate limit exceeded","dropped":"#) && !$0.hasSuffix(#""dropped":1}]"#) },
                "\(frames)")
    }
}
