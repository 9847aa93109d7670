import ChorusServer
import ChorusSocketIO
import ChorusTestSupport
import Testing

/// Socket.IO's per-namespace packet state machine, transition by transition, as the reference
/// server (`socket.io/lib/client.ts`, `ondecoded`) runs it: CONNECT is the only packet for a
/// namespace without a socket, and never one for a namespace with a socket; anything else closes
/// the connection.
@Suite("Socket.IO packet state machine", .serialized, .timeLimit(.minutes(1)))
struct PacketStateMachineTests {
    final class Fixture {
        let io = SocketIOServer()
        let server: WebSocketServer

        init() throws {
            io.sockets.on("echo") { _, args, ack in ack?.send(args) }
            io.of("/admin").on("echo") { _, args, ack in ack?.send(args) }
            var config = ServerConfiguration()
            config.host = "127.0.0.1"
            config.port = 0
            config.threads = 1
            config.applicationTimeouts = io.configuration.timeouts
            server = WebSocketServer(configuration: config, application: io)
            try server.start()
        }

        deinit { server.shutdown() }

        func client() async throws -> BlockingWebSocketClient {
            let c = try BlockingWebSocketClient(port: server.port, path: "/socket.io/?EIO=4&transport=websocket")
            #expect(try await c.text().hasPrefix("0{\"sid\":"))
            return c
        }

        func connected(to namespaces: [String] = ["/"]) async throws -> BlockingWebSocketClient {
            let c = try await client()
            for ns in namespaces {
                try c.send(text: ns == "/" ? "40" : "40\(ns),")
                #expect(try await c.text().hasPrefix(ns == "/" ? "40{\"sid\":" : "40\(ns),{\"sid\":"))
            }
            return c
        }
    }

    /// Sends `packet` and expects the connection to be closed (1008, "invalid state").
    static func closes(_ c: BlockingWebSocketClient, after packet: String) async throws -> Bool {
        try c.send(text: packet)
        return try await c.closeCode() == 1008
    }

    @Test(
        "no socket: EVENT, ACK, DISCONNECT and a client's CONNECT_ERROR close the connection",
        arguments: [#"42["echo",1]"#, "430[]", "41", #"44{"message":"x"}"#, #"42/admin,["echo"]"#])
    func packetsWithoutASocket(_ packet: String) async throws {
        let f = try Fixture()
        let c = try await f.client()
        #expect(try await Self.closes(c, after: packet))
    }

    @Test("a socket: a second CONNECT closes the connection")
    func connectTwice() async throws {
        let f = try Fixture()
        let c = try await f.connected()
        #expect(try await Self.closes(c, after: "40"))
    }

    @Test("a socket in one namespace does not make packets for another valid")
    func otherNamespace() async throws {
        let f = try Fixture()
        let c = try await f.connected(to: ["/"])
        #expect(try await Self.closes(c, after: #"42/admin,0["echo","x"]"#))
    }

    @Test("after DISCONNECT the namespace has no socket again: an EVENT closes, a CONNECT works")
    func afterDisconnect() async throws {
        let f = try Fixture()
        let c = try await f.connected(to: ["/", "/admin"])
        try c.send(text: "41/admin,")
        try c.send(text: "40/admin,")
        #expect(try await c.text().hasPrefix(#"40/admin,{"sid":"#))
        try c.send(text: "41/admin,")
        #expect(try await Self.closes(c, after: #"42/admin,["echo"]"#))
    }

    @Test("CONNECT to an unknown namespace: CONNECT_ERROR, and the connection stays usable")
    func unknownNamespace() async throws {
        let f = try Fixture()
        let c = try await f.client()
        try c.send(text: "40/nope,")
        #expect(try await c.text() == #"44/nope,{"message":"Invalid namespace"}"#)
        try c.send(text: "40")
        #expect(try await c.text().hasPrefix(#"40{"sid":"#))
    }

    @Test("a socket: EVENT and ACK are delivered; an ACK nobody waits for is ignored")
    func connectedPackets() async throws {
        let f = try Fixture()
        let c = try await f.connected()
        try c.send(text: #"427["echo","hi"]"#)
        #expect(try await c.text() == #"437["hi"]"#)
        try c.send(text: #"4399["late"]"#)
        try c.send(text: #"428["echo","still open"]"#)
        #expect(try await c.text() == #"438["still open"]"#)
    }
}
