import ChorusApp
import ChorusServer
import ChorusSocketIO
import ChorusTestSupport
import Testing

/// `--max-connections-per-user`: the realtime app in-process, with `--auth none` users.
@Suite("Connections per user", .serialized, .timeLimit(.minutes(1)))
struct ConnectionsPerUserTests {
    static func client(_ server: WebSocketServer, user: String) async throws -> BlockingWebSocketClient {
        let c = try BlockingWebSocketClient(
            port: server.port, path: "/socket.io/?EIO=4&transport=websocket&userId=\(user)")
        #expect(try await c.text().hasPrefix("0{\"sid\":"))
        try c.send(text: "40")
        return c
    }

    /// The realtime app (`--auth none`, open authorization) with `limit` connections per user, started.
    static func started(limit: Int, recovery: RecoveryConfiguration? = nil) throws -> (
        RealtimeApplication, WebSocketServer
    ) {
        var rc = RealtimeConfiguration()
        rc.auth = .none
        rc.authorization = .open
        rc.maxConnectionsPerUser = limit
        rc.socketIO.recovery = recovery
        var config = ServerConfiguration()
        config.host = "127.0.0.1"
        config.port = 0
        config.threads = 2
        config.maxMessageSize = rc.socketIO.webSocketMessageLimit
        config.applicationTimeouts = rc.socketIO.timeouts
        let app = RealtimeApplication(configuration: rc)
        let server = WebSocketServer(configuration: config, application: app.serverApplication)
        try server.start()
        return (app, server)
    }

    @Test(
        "up to the limit a user connects; one more gets CONNECT_ERROR; a disconnect frees a place; other users are unaffected"
    )
    func limit() async throws {
        let (app, server) = try Self.started(limit: 2)
        defer { server.shutdown() }

        let first = try await Self.client(server, user: "u1")
        #expect(try await first.text().hasPrefix(#"40{"sid":"#))
        let second = try await Self.client(server, user: "u1")
        #expect(try await second.text().hasPrefix(#"40{"sid":"#))
        let third = try await Self.client(server, user: "u1")
        #expect(try await third.text() == #"44{"message":"too many connections"}"#)
        #expect(app.connections(ofUser: "u1") == 2)
        let other = try await Self.client(server, user: "u2")
        #expect(try await other.text().hasPrefix(#"40{"sid":"#))
        // The first leaves the namespace: the third may connect now.
        try first.send(text: "41")
        #expect(await AsyncMiddlewareTests.eventually { app.connections(ofUser: "u1") == 1 })
        try third.send(text: "40")
        #expect(try await third.text().hasPrefix(#"40{"sid":"#))
        // A closed connection frees its place too.
        second.closeNow()
        #expect(await AsyncMiddlewareTests.eventually { app.connections(ofUser: "u1") == 1 })
    }

    /// A session restored by connection state recovery comes back in its user's room: it is
    /// admitted only if the room, with it, is within the limit (else CONNECT, then DISCONNECT).
    @Test("a recovered session over the user's limit is disconnected; within it, it stays")
    func recoveredSessionsCount() async throws {
        let (app, server) = try Self.started(limit: 1, recovery: RecoveryConfiguration())
        defer { server.shutdown() }

        /// Connects as u1, gets an offset, drops the transport; returns the CONNECT's auth to restore it.
        func sessionLeftBehind() async throws -> String {
            let a = try await Self.client(server, user: "u1")
            let reply = try await a.text()
            let pid = try #require(reply.firstMatch(of: /"pid":"([^"]+)"/)?.1)
            _ = app.io.sockets.to("user:u1").emit("x")
            let event = try await a.text()
            let offset = try #require(event.firstMatch(of: /"([^"]+)"\]$/)?.1)
            a.closeNow()
            #expect(await AsyncMiddlewareTests.eventually { app.connections(ofUser: "u1") == 0 })
            return #"{"pid":"\#(pid)","offset":"\#(offset)"}"#
        }

        // Over the limit: another connection of u1 took the place meanwhile.
        let auth = try await sessionLeftBehind()
        let other = try await Self.client(server, user: "u1")
        #expect(try await other.text().hasPrefix(#"40{"sid":"#))
        let back = try BlockingWebSocketClient(
            port: server.port, path: "/socket.io/?EIO=4&transport=websocket&userId=u1")
        #expect(try await back.text().hasPrefix("0{\"sid\":"))
        try back.send(text: "40" + auth)
        #expect(try await back.text().hasPrefix(#"40{"sid":"#))
        #expect(try await back.text() == "41")
        #expect(await AsyncMiddlewareTests.eventually { app.connections(ofUser: "u1") == 1 })
        back.closeNow()
        other.closeNow()
        #expect(await AsyncMiddlewareTests.eventually { app.connections(ofUser: "u1") == 0 })

        // Within the limit: restored and kept, in its user's room again.
        let auth2 = try await sessionLeftBehind()
        let again = try BlockingWebSocketClient(
            port: server.port, path: "/socket.io/?EIO=4&transport=websocket&userId=u1")
        defer { again.closeNow() }
        #expect(try await again.text().hasPrefix("0{\"sid\":"))
        try again.send(text: "40" + auth2)
        #expect(try await again.text().hasPrefix(#"40{"sid":"#))
        #expect(await AsyncMiddlewareTests.eventually { app.connections(ofUser: "u1") == 1 })
        _ = app.io.sockets.to("user:u1").emit("y")
        #expect(try await again.text().hasPrefix(#"42["y","#))
    }
}
