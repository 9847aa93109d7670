import ChorusTestSupport
import Foundation
import Testing

/// `chorus serve --app echo` driven by real clients: the Python `websockets` library for
/// breadth, raw bytes for the RFC's own examples.
@Suite("Echo end-to-end", .serialized, .timeLimit(.minutes(1)))
struct EchoEndToEndTests {
    @Test("every payload length encoding, text and binary, fragments, ping, close")
    func echoesEveryMessage() async throws {
        let server = try await ChorusProcess.start(app: "echo")
        let result = try await PythonClient.run("echo.py", args: ["--port", "\(server.port)"])
        let resultPassed = result.ok
        #expect(resultPassed, "\(result)\n\(server.diagnostics)")
    }

    @Test("echo with permessage-deflate negotiated (RFC 7692)", arguments: ["shared", "dedicated"])
    func echoesCompressed(mode: String) async throws {
        let server = try await ChorusProcess.start(app: "echo", ["--deflate", mode])
        let result = try await PythonClient.run(
            "echo.py", args: ["--port", "\(server.port)", "--compression", "deflate"])
        let resultPassed = result.ok
        #expect(resultPassed, "\(result)\n\(server.diagnostics)")
        let extensions = result.json?["extensions"] as? String ?? ""
        #expect(extensions.hasPrefix("permessage-deflate"), "negotiated: \(extensions.debugDescription)")
    }

    @Test("--deflate off declines permessage-deflate and still echoes")
    func deflateOffDeclines() async throws {
        let server = try await ChorusProcess.start(app: "echo", ["--deflate", "off"])
        let result = try await PythonClient.run(
            "echo.py", args: ["--port", "\(server.port)", "--compression", "deflate", "--max-size", "65536"])
        let resultPassed = result.ok
        #expect(resultPassed, "\(result)")
        #expect(result.json?["extensions"] is NSNull, "negotiated: \(String(describing: result.json?["extensions"]))")
    }

    @Test("--deflate-level reaches the compressor: 0 sends stored blocks (the text readable on the wire), 1 compresses")
    func deflateLevel() async throws {
        let message = String(repeating: "chorus ", count: 40)
        let length = message.utf8.count
        for level in [0, 1] {
            let server = try await ChorusProcess.start(
                app: "echo", ["--deflate", "shared", "--deflate-threshold", "0", "--deflate-level", "\(level)"])
            let client = try BlockingWebSocketClient(
                port: Int(server.port), extraHeaders: "Sec-WebSocket-Extensions: permessage-deflate\r\n")
            #expect(client.handshakeResponse.lowercased().contains("sec-websocket-extensions: permessage-deflate"))
            try client.send(text: message)
            let payload = try client.receive().payload
            if level == 0 {
                // RFC 1951 §3.2.4: a stored block is BTYPE 00, LEN, NLEN and the bytes as they are.
                #expect(payload[0] & 0x06 == 0, "not a stored block: \(payload.prefix(8))")
                #expect(Int(payload[1]) | Int(payload[2]) << 8 == length)
                let text = String(decoding: payload.dropFirst(5).prefix(length), as: UTF8.self)
                #expect(text == message)
            } else {
                #expect(payload.count < length / 4, "level 1 should compress a repeated word: \(payload.count) B")
            }
        }
    }

    @Test("GET /healthz answers 200")
    func healthz() async throws {
        let server = try await ChorusProcess.start(app: "echo")
        let (response, _) = try RawTCPConnection.httpGet(port: server.port, path: "/healthz")
        #expect(response.status == 200, "\(response.statusLine)")
    }

    @Test("RFC 6455 §1.3: the example key gets the example Sec-WebSocket-Accept")
    func handshakeAcceptKey() async throws {
        let server = try await ChorusProcess.start(app: "echo")
        let connection = try RawTCPConnection(port: server.port)
        let response = try #require(try connection.upgrade(key: "dGhlIHNhbXBsZSBub25jZQ=="))
        #expect(response.status == 101, "\(response.statusLine)")
        #expect(response.header("sec-websocket-accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        #expect(response.header("upgrade")?.lowercased() == "websocket")
        #expect(response.header("connection")?.lowercased().contains("upgrade") == true)
    }

    @Test("RFC 6455 §5.7: masked \"Hello\" comes back as the unmasked example frame")
    func rfcHelloExample() async throws {
        let server = try await ChorusProcess.start(app: "echo")
        let connection = try RawTCPConnection(port: server.port)
        #expect(try connection.upgrade()?.status == 101)
        try connection.send([0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58])
        #expect(try connection.read(exactly: 7) == [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f])
    }

    @Test("RFC 6455 §5.5.3: a ping is answered by a pong with the same application data")
    func pingPong() async throws {
        let server = try await ChorusProcess.start(app: "echo")
        let connection = try RawTCPConnection(port: server.port)
        #expect(try connection.upgrade()?.status == 101)
        try connection.send(RawTCPConnection.clientFrame(opcode: 0x9, payload: Array("Hello".utf8)))
        #expect(try connection.read(exactly: 7) == [0x8a, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f])
    }

    @Test("RFC 6455 §5.5.1: a close frame is answered with a close frame, then the TCP close")
    func closingHandshake() async throws {
        let server = try await ChorusProcess.start(app: "echo")
        let connection = try RawTCPConnection(port: server.port)
        #expect(try connection.upgrade()?.status == 101)
        try connection.send(RawTCPConnection.clientFrame(opcode: 0x8, payload: [0x03, 0xe8]))
        let frame = try #require(try connection.readFrame())
        #expect(frame.opcode == 0x8 && frame.fin)
        #expect(frame.closeCode == 1000)
        #expect(connection.waitForClose(), "the server must close the TCP connection after the closing handshake")
    }
}
