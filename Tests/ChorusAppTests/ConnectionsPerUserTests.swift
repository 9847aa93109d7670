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

    @Test(
        "up to the limit a user connects; one more gets CONNECT_ERROR; a disconnect frees a place; other users are unaffected"
    )
    func limit() async throws {
        var rc = RealtimeConfiguration()
        rc.auth = .none
        rc.authorization = .open
        rc.maxConnectionsPerUser = 2
        var config = ServerConfiguration()
        config.host = "127.0.0.1"
        config.port = 0
        config.threads = 2
        config.maxMessageSize = rc.socketIO.webSocketMessageLimit
        config.applicationTimeouts = rc.socketIO.timeouts
        let app = RealtimeApplication(configuration: rc)
        let server = WebSocketServer(configuration: config, application: app.serverApplication)
        try server.start()
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
}
