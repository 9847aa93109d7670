import ChorusJSON
import ChorusServer
import ChorusSocketIO
import Testing

/// The generic Socket.IO server (no app) in-process, driven by python-socketio.
@Suite("Socket.IO server end to end", .serialized)
struct SocketIOServerE2ETests {
    static func makeServer() throws -> WebSocketServer {
        var sio = SocketIOConfiguration()
        sio.pingInterval = 5
        sio.pingTimeout = 5
        let io = SocketIOServer(configuration: sio)
        io.sockets.use { socket in
            if socket.handshake.auth["name"]?.stringValue == "bad" {
                return .reject(message: "go away", data: ["why": "bad name"])
            }
            return .accept
        }
        io.sockets.onConnection { socket in
            if socket.handshake.auth["name"]?.stringValue == "raw" {
                socket.emit("never-answered", [1], timeout: 0.3) { result in
                    switch result {
                    case .success: socket.emit("timeout-result", ["ok": true])
                    case .failure(let e): socket.emit("timeout-result", ["ok": false, "error": .string("\(e)")])
                    }
                }
                return
            }
            socket.emit("ask", [21], timeout: 5) { result in
                switch result {
                case .success(let args): socket.emit("ask-result", ["ok": true, "value": args.first ?? .null])
                case .failure(let e): socket.emit("ask-result", ["ok": false, "error": .string("\(e)")])
                }
            }
        }
        io.sockets.on("echo") { _, args, ack in ack?.send(args) }
        io.sockets.on("binary-in") { socket, args, _ in socket.emit("binary-out", args) }
        io.sockets.on("join") { socket, args, ack in
            if let room = args.first?.stringValue { socket.join(room) }
            ack?(true)
        }
        io.sockets.on("shout") { socket, args, ack in
            if let room = args.first?.stringValue { socket.namespace.to(room).emit("shouted", .string(room)) }
            ack?(true)
        }
        let admin = io.of("/admin")
        admin.on("whoami") { socket, _, ack in
            ack?(["namespace": .string(socket.namespace.name), "name": socket.handshake.auth["name"] ?? .null])
        }
        admin.on("shout") { socket, args, ack in
            if let room = args.first?.stringValue { socket.namespace.to(room).emit("shouted", .string(room)) }
            ack?(true)
        }
        admin.on("kick-me") { socket, _, _ in socket.disconnect() }

        var config = ServerConfiguration()
        config.host = "127.0.0.1"
        config.port = 0
        config.threads = 2
        config.applicationTimeouts = sio.timeouts + [0.3]
        let server = WebSocketServer(configuration: config, application: io)
        try server.start()
        return server
    }

    @Test("namespaces, middleware, binary, acks both ways with timeout, namespace disconnect", .timeLimit(.minutes(1)))
    func generic() async throws {
        let server = try Self.makeServer()
        defer { server.shutdown() }
        try await E2E.run("generic", url: "http://127.0.0.1:\(server.port)")
    }
}
