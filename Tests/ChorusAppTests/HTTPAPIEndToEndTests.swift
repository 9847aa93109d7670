import ChorusTestSupport
import Foundation
import Testing

/// The emit API as other services' HTTP clients use it: keep-alive, chunked bodies, 100-continue,
/// and refusals decided on the head before any body is read (byte-exact, over raw TCP).
@Suite("HTTP API end-to-end", .serialized, .timeLimit(.minutes(1)))
struct HTTPAPIEndToEndTests {
    static let token = "api-token-for-tests"

    static func server(_ extra: [String] = []) async throws -> ChorusProcess {
        try await ChorusProcess.start(
            app: "realtime",
            ["--log-level", "warning", "--auth", "none", "--api-token", token, "--threads", "1"] + extra)
    }

    static func post(
        _ path: String = "/api/v1/projects/p1/updates", headers: String = "", body: String = "{\"a\":1}",
        length: Int? = nil, auth: Bool = true, version: String = "1.1"
    ) -> String {
        "POST \(path) HTTP/\(version)\r\nHost: 127.0.0.1\r\n"
            + (auth ? "Authorization: Bearer \(token)\r\n" : "")
            + "Content-Length: \(length ?? body.utf8.count)\r\n\(headers)\r\n\(body)"
    }

    static func chunkedPost(_ chunks: [String], headers: String = "") -> String {
        "POST /api/v1/projects/p1/updates HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\n"
            + "Transfer-Encoding: chunked\r\n\(headers)\r\n"
            + chunks.map { String($0.utf8.count, radix: 16) + "\r\n" + $0 + "\r\n" }.joined() + "0\r\n\r\n"
    }

    /// Reads one response (head and Content-Length body).
    static func response(_ c: RawTCPConnection) throws -> (RawTCPConnection.HTTPResponse, String) {
        let head = try #require(try c.readResponseHead(), "connection closed without a response")
        let body = try c.readBody(of: head) ?? []
        return (head, String(decoding: body, as: UTF8.self))
    }

    @Test("keep-alive: several requests on one connection, Connection: close honoured")
    func keepAlive() async throws {
        let server = try await Self.server()
        let c = try RawTCPConnection(port: server.port)
        for _ in 0..<3 {
            try c.send(Self.post())
            let (head, body) = try Self.response(c)
            #expect(head.statusLine == "HTTP/1.1 202 Accepted")
            #expect(head.header("connection") == nil)
            #expect(body == "{\"recipients\":0}")
        }
        try c.send(Self.post(headers: "Connection: close\r\n"))
        let (last, _) = try Self.response(c)
        #expect(last.status == 202)
        #expect(last.header("connection") == "close")
        #expect(c.waitForClose())
    }

    @Test("pipelined requests in one segment are answered in order")
    func pipelined() async throws {
        let server = try await Self.server()
        let c = try RawTCPConnection(port: server.port)
        try c.send(
            Self.post() + "GET /api/v1/stats HTTP/1.1\r\nAuthorization: Bearer \(Self.token)\r\n\r\n" + Self.post())
        #expect(try Self.response(c).0.status == 202)
        #expect(try Self.response(c).0.status == 200)
        #expect(try Self.response(c).0.status == 202)
    }

    @Test("HTTP/1.0 closes after its response")
    func http10Closes() async throws {
        let server = try await Self.server()
        let c = try RawTCPConnection(port: server.port)
        try c.send(Self.post(version: "1.0"))
        let (head, _) = try Self.response(c)
        #expect(head.status == 202)
        #expect(c.waitForClose())
    }

    @Test("chunked bodies (RFC 9112 §7.1) are decoded, in any split, and the connection stays open")
    func chunked() async throws {
        let server = try await Self.server()
        let c = try RawTCPConnection(port: server.port)
        try c.send(Self.chunkedPost(["{\"proj", "ect\":", "\"x\"}"]))
        #expect(try Self.response(c).0.statusLine == "HTTP/1.1 202 Accepted")
        // Byte by byte: the same answer.
        for byte in Array(Self.chunkedPost(["{\"k\":", "2}"]).utf8) { try c.send([byte]) }
        #expect(try Self.response(c).0.status == 202)
        // A body that is not JSON, chunked: the body was really read (400 from the route, not from framing).
        try c.send(Self.chunkedPost(["{not json"]))
        let (bad, body) = try Self.response(c)
        #expect(bad.status == 400)
        #expect(body.contains("not valid JSON"))
    }

    @Test(
        "a malformed chunk size (RFC 9112 §7.1: 1*HEXDIG) is 400 and closes",
        arguments: ["0x2", "+2", " 2", "2 2", "zz", ""])
    func malformedChunkSize(_ size: String) async throws {
        let server = try await Self.server()
        let c = try RawTCPConnection(port: server.port)
        try c.send(
            Self.chunkedPost([]).replacingOccurrences(
                of: "\r\n\r\n0\r\n\r\n", with: "\r\n\r\n\(size)\r\n{}\r\n0\r\n\r\n"))
        let (head, _) = try Self.response(c)
        #expect(head.statusLine == "HTTP/1.1 400 Bad Request")
        #expect(c.waitForClose())
    }

    @Test("--max-body-size: a body at the limit is read, one byte more is 413 (Content-Length and chunked)")
    func bodyLimit() async throws {
        let server = try await Self.server(["--max-body-size", "100"])
        let atLimit = "{\"k\":\"" + String(repeating: "a", count: 100 - 8) + "\"}"
        #expect(atLimit.utf8.count == 100)
        let c = try RawTCPConnection(port: server.port)
        try c.send(Self.post(body: atLimit))
        #expect(try Self.response(c).0.status == 202)
        try c.send(Self.chunkedPost([String(atLimit.prefix(50)), String(atLimit.dropFirst(50))]))
        #expect(try Self.response(c).0.status == 202)
        let over = try RawTCPConnection(port: server.port)
        try over.send(Self.post(body: "", length: 101))
        #expect(try Self.response(over).0.statusLine == "HTTP/1.1 413 Content Too Large")
        let overChunked = try RawTCPConnection(port: server.port)
        try overChunked.send(Self.chunkedPost([String(atLimit.prefix(50)), String(atLimit.dropFirst(50)) + "x"]))
        #expect(try Self.response(overChunked).0.status == 413)
    }

    @Test("refusals come on the head: 401, 404, 405 without waiting for a body that never comes")
    func refusedOnTheHead() async throws {
        let server = try await Self.server()
        for (request, status) in [
            (Self.post(body: "", length: 1_000_000, auth: false), 401),
            (Self.post("/api/v1/nope", body: "", length: 1_000_000), 404),
            (Self.post("/nothing-here", body: "", length: 1_000_000, auth: false), 404),
            (
                "PUT /api/v1/emit HTTP/1.1\r\nAuthorization: Bearer \(Self.token)\r\nContent-Length: 1000000\r\n\r\n",
                405
            ),
        ] {
            let c = try RawTCPConnection(port: server.port, timeout: .seconds(3))
            try c.send(request)
            let (head, _) = try Self.response(c)
            #expect(head.status == status, "\(request.prefix(40))")
            // The unread body makes this connection useless: the server closes it.
            #expect(head.header("connection") == "close")
        }
    }

    @Test("Expect: 100-continue gets 100 before the body, a refusal instead of 100 when refused")
    func expectContinue() async throws {
        let server = try await Self.server()
        let c = try RawTCPConnection(port: server.port)
        try c.send(Self.post(headers: "Expect: 100-continue\r\n", body: "", length: 7))
        #expect(try c.readResponseHead()?.statusLine == "HTTP/1.1 100 Continue")
        try c.send("{\"a\":1}")
        #expect(try Self.response(c).0.status == 202)
        let refused = try RawTCPConnection(port: server.port)
        try refused.send(Self.post(headers: "Expect: 100-continue\r\n", body: "", length: 7, auth: false))
        #expect(try Self.response(refused).0.status == 401)
    }

    @Test("a body that stops arriving gets 408 at the handshake deadline, like a stalled head")
    func stalledBody() async throws {
        let server = try await Self.server(["--handshake-timeout", "1"])
        let c = try RawTCPConnection(port: server.port, timeout: .seconds(5))
        try c.send(Self.post(body: "{\"a\"", length: 100))
        let (head, _) = try Self.response(c)
        #expect(head.statusLine == "HTTP/1.1 408 Request Timeout")
        #expect(c.waitForClose())
        // An idle keep-alive connection is closed quietly at the same deadline.
        let idle = try RawTCPConnection(port: server.port, timeout: .seconds(5))
        try idle.send(Self.post())
        #expect(try Self.response(idle).0.status == 202)
        #expect(try idle.readResponseHead() == nil)
    }
}
