import ChorusApp
import ChorusServer
import ChorusSocketIO
import ChorusWebSocket
import Testing

@testable import ChorusBenchCore

#if canImport(Glibc)
import Glibc
#endif

private func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

@Suite struct SocketIOClientTests {
    @Test func parsesTheOpenPacket() throws {
        let open = bytes(
            #"0{"sid":"aBc-123_x","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#)
        let o = try #require(open.withUnsafeBytes { SocketIOClient.parseOpen($0) })
        #expect(o == SocketIOClient.Open(sid: "aBc-123_x", pingInterval: 25000, pingTimeout: 20000))
        #expect(open.withUnsafeBytes { SocketIOClient.classify($0) } == .open)
        #expect(bytes("0{}").withUnsafeBytes { SocketIOClient.parseOpen($0) } == nil)
        #expect(bytes(#"40{"sid":"x"}"#).withUnsafeBytes { SocketIOClient.parseOpen($0) } == nil)
    }

    @Test func answersPingsWithPongs() {
        #expect(bytes("2").withUnsafeBytes { SocketIOClient.pong(forPing: $0) } == bytes("3"))
        #expect(bytes("2probe").withUnsafeBytes { SocketIOClient.pong(forPing: $0) } == bytes("3probe"))
        #expect(bytes("2").withUnsafeBytes { SocketIOClient.classify($0) } == .ping)
        #expect(bytes("3").withUnsafeBytes { SocketIOClient.classify($0) } == .pong)
    }

    @Test func classifiesSocketIOPackets() {
        func kind(_ s: String) -> SocketIOClient.Packet { bytes(s).withUnsafeBytes { SocketIOClient.classify($0) } }
        #expect(kind(#"40{"sid":"q"}"#) == .connected)
        #expect(kind(#"44{"message":"unauthorized"}"#) == .connectError)
        #expect(kind("41") == .disconnect)
        #expect(kind("1") == .close)
        #expect(kind("6") == .noop)
        #expect(kind(#"42["message:new",{}]"#) == .event)
        #expect(kind(#"431[{"ok":true,"conversationId":"bench"}]"#) == .ack(id: 1, ok: true))
        #expect(kind(#"4317[{"ok":false,"error":"forbidden"}]"#) == .ack(id: 17, ok: false))
        #expect(kind("43[]") == .other)
        #expect(kind("") == .other)
    }

    @Test func buildsTheClientPackets() {
        #expect(SocketIOClient.connectRequest == bytes("40"))
        #expect(
            SocketIOClient.joinRequest(conversation: "bench", ackId: 1)
                == bytes(#"421["join:conversation",{"conversationId":"bench"}]"#))
        #expect(
            SocketIOClient.joinRequest(conversation: "c", ackId: nil)
                == bytes(#"42["join:conversation",{"conversationId":"c"}]"#))
        let (prefix, suffix) = SocketIOClient.sendFraming(conversation: "bench")
        #expect(
            String(decoding: prefix + bytes("hi") + suffix, as: UTF8.self)
                == #"42["message:send",{"conversationId":"bench","message":{"content":"hi","type":"text"}}]"#)
        #expect(SocketIOPlan().requestPath(user: 42) == "/socket.io/?EIO=4&transport=websocket&userId=u42")
        #expect(
            SocketIOPlan.isPlainID("bench-1:a.b_c") && !SocketIOPlan.isPlainID("a\"b") && !SocketIOPlan.isPlainID(""))
    }

    @Test func extractsTheContentOfMessageNew() throws {
        let content = ContentPayload.encode(time: 123_456_789_012, seq: 77, publisher: 3, size: 64)
        let frame =
            bytes(
                #"42["message:new",{"id":"0d3c2f5e-8b1a-4c44-9d7e-0123456789ab","conversationId":"bench","senderId":"u0","content":""#
            )
            + content + bytes(#"","type":"text","createdAt":"2025-01-01T00:00:00.000Z"}]"#)
        let got = try #require(frame.withUnsafeBytes { b in SocketIOClient.messageNewContent(b).map { Array($0) } })
        #expect(got == content)
        let f = try #require(content.withUnsafeBytes { ContentPayload.decode($0) })
        #expect(f == Payload.Fields(time: 123_456_789_012, seq: 77, publisher: 3))
        // Other events, and a message:new without content, are not deliveries.
        #expect(
            bytes(#"42["error",{"event":"message:send","error":"x"}]"#).withUnsafeBytes {
                SocketIOClient.messageNewContent($0)
            } == nil)
        #expect(bytes(#"42["error",{"event":"message:send"}]"#).withUnsafeBytes { SocketIOClient.isErrorEvent($0) })
        #expect(
            bytes(#"42["message:new",{"id":"1","type":"text"}]"#).withUnsafeBytes {
                SocketIOClient.messageNewContent($0)
            } == nil)
        #expect(
            bytes(#"42["message:new",{"content":"unterminated"#).withUnsafeBytes {
                SocketIOClient.messageNewContent($0)
            } == nil)
    }

    @Test(arguments: [ContentPayload.minimumSupportedSize, 64, 1024, 10_000])
    func contentPayloadIsExactlySizedAndEscapeFree(size: Int) throws {
        let t: UInt64 = 12_345_678_901_234_567
        let c = ContentPayload.encode(time: t, seq: 4_000_000_000, publisher: 99_999, size: size)
        #expect(c.count == size)
        #expect(c.allSatisfy { $0 >= 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") })
        let f = try #require(c.withUnsafeBytes { ContentPayload.decode($0) })
        #expect(f == Payload.Fields(time: t, seq: 4_000_000_000, publisher: 99_999))
        #expect(bytes("t=1;s=2;q=3;padding").withUnsafeBytes { ContentPayload.decode($0) } == nil)
    }
}

@Suite(.serialized) struct SocketIOLoopbackTests {
    /// `chorus serve --app realtime --auth none` in-process, with Engine.IO pings every 500 ms (so the
    /// generator must answer several of them in a run, or be disconnected after 1 s; 400 ms was too
    /// short for a generator sharing 2 loaded cores).
    static func startServer(threads: Int, deflate: Bool) throws -> WebSocketServer {
        var rc = RealtimeConfiguration()
        rc.auth = .none
        rc.authorization = .open
        rc.socketIO.pingInterval = 0.5
        rc.socketIO.pingTimeout = 1.0
        var config = ServerConfiguration()
        config.host = "127.0.0.1"
        config.port = 0
        config.threads = threads
        config.maxMessageSize = rc.socketIO.webSocketMessageLimit
        config.applicationTimeouts = rc.socketIO.timeouts
        if deflate { config.deflate = PerMessageDeflateConfig(mode: .shared) }
        let app = RealtimeApplication(configuration: rc)
        let server = WebSocketServer(configuration: config, application: app.serverApplication)
        try server.start()
        return server
    }

    @Test(arguments: [(1, false), (2, true)])
    func twentyReceiversGetEveryMessageThroughARoom(threads: Int, deflate: Bool) throws {
        let server = try Self.startServer(threads: threads, deflate: deflate)
        defer { server.shutdown() }
        let plan = LoadPlan(
            url: WebSocketURL(host: "127.0.0.1", port: server.port, path: "/"), receivers: 20, publishers: 1, size: 64,
            // 200 messages at most; 4 s to send them (a loaded machine sent 176 in 1.5 s).
            window: 8, duration: 4, warmup: 0, drain: 2, threads: threads, deflate: deflate, messages: 200,
            socketIO: SocketIOPlan())
        let result = try FanoutRunner.run(plan, serverPID: getpid(), quiet: true)
        #expect(result.openReceivers == 20 && result.openPublishers == 1)
        #expect(result.ledger.sentInWindow == 200)
        #expect(result.stats.receivedInWindow == 4_000)
        #expect(result.ledger.missed == 0 && result.ledger.surplus == 0)
        #expect(result.errors == 0, "\(result.stats.firstError ?? "")")
        #expect(result.stats.latency.count == 4_000)
        #expect(result.stats.payloadBytes == 4_000 * 64)
        #expect(result.stats.handshakeLatency.count == 21)
        #expect(result.stats.deflateAccepted == (deflate ? 21 : 0))
        #expect(result.table().hasPrefix("socketio  20 receivers"))
        #expect(result.json().contains(#""mode":"socketio""#))
    }

    @Test func pingsAreAnsweredWhileIdle() throws {
        // 1.2 s of connections with pings every 200 ms and a 400 ms timeout: unanswered pings would close them.
        let server = try Self.startServer(threads: 1, deflate: false)
        defer { server.shutdown() }
        let plan = LoadPlan(
            url: WebSocketURL(host: "127.0.0.1", port: server.port, path: "/socket.io/"), receivers: 5, publishers: 1,
            size: 64, rate: 5, duration: 1.2, warmup: 0, drain: 1, socketIO: SocketIOPlan())
        let result = try FanoutRunner.run(plan, serverPID: nil, quiet: true)
        #expect(result.closedDuringRun == 0)
        #expect(result.errors == 0, "\(result.stats.firstError ?? "")")
        #expect(result.ledger.missed == 0 && result.stats.receivedInWindow == result.ledger.sentInWindow * 5)
    }
}
