import Testing

@testable import ChorusWebSocket

func parse(_ s: String, max: Int = 8192) -> HTTPParseResult {
    var p = HTTPRequestParser(maxHeaderSize: max)
    return withBytes(Array(s.utf8)) { p.parse($0) }
}

func parseStatus(_ s: String, max: Int = 8192) -> Int? {
    if case .failed(let e) = parse(s, max: max) { return e.status }
    return nil
}

let sampleRequest =
    "GET /chat?room=a%20b&name=x+y&flag HTTP/1.1\r\n"
    + "Host: server.example.com\r\n"
    + "Upgrade: websocket\r\n"
    + "Connection: Upgrade\r\n"
    + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    + "Sec-WebSocket-Protocol: chat, superchat\r\n"
    + "Sec-WebSocket-Version: 13\r\n"
    + "X-Multi: a\r\n"
    + "x-multi:   b  \r\n"
    + "\r\n"

@Suite struct HTTPRequestParserTests {
    @Test func parsesRequestLineHeadersPathAndQuery() throws {
        guard case .complete(let head, let length) = parse(sampleRequest + "\u{81}\u{05}extra") else {
            Issue.record("not complete"); return
        }
        #expect(length == sampleRequest.utf8.count)
        #expect(head.method == "GET")
        #expect(head.target == "/chat?room=a%20b&name=x+y&flag")
        #expect(head.versionMinor == 1)
        #expect(head.path == "/chat")
        #expect(head.query.map(\.name) == ["room", "name", "flag"])
        #expect(head.query.map(\.value) == ["a b", "x y", ""])
        #expect(head.headers.count == 8)
        #expect(head.value(of: "HOST") == "server.example.com")
        #expect(head.value(of: "sec-websocket-key") == "dGhlIHNhbXBsZSBub25jZQ==")
    }

    @Test func repeatedHeadersAreJoinedWithCommaAndValuesTrimmed() throws {
        guard case .complete(let head, _) = parse(sampleRequest) else { Issue.record("not complete"); return }
        #expect(head.value(of: "X-Multi") == "a, b")
        #expect(head.value(of: "Missing") == nil)
    }

    @Test func parseResumesAcrossMultiplePartialCalls() {
        let bytes = Array(sampleRequest.utf8)
        for step in [1, 2, 5, 17, 100] {
            var p = HTTPRequestParser(maxHeaderSize: 8192)
            var got: Int? = nil
            var end = 0
            while end < bytes.count {
                end = min(end + step, bytes.count)
                switch withBytes(Array(bytes[..<end]), { p.parse($0) }) {
                case .needMoreData: continue
                case .complete(_, let length): got = length
                case .failed(let e): Issue.record("failed \(e)")
                }
                if got != nil { break }
            }
            #expect(got == bytes.count, "step \(step)")
            #expect(end == bytes.count)
        }
    }

    @Test func incompleteHeadNeedsMoreData() {
        guard case .needMoreData = parse("GET / HTTP/1.1\r\nHost: a\r\n") else {
            Issue.record("expected needMoreData"); return
        }
    }

    @Test func headerTooLargeIs431() {
        let big = "GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: 9000)
        #expect(parseStatus(big) == 431)  // before the end is even seen
        #expect(parseStatus(big + "\r\n\r\n") == 431)
        #expect(parseStatus("GET / HTTP/1.1\r\nHost: a\r\n\r\n", max: 20) == 431)
    }

    @Test func malformedRequestLineIs400BeforeTheHeadIsComplete() {
        #expect(parseStatus("\u{16}\u{03}\u{01} junk\r\n") == 400)
        guard case .needMoreData = parse("GET /ok HTTP/1.1\r\n") else { Issue.record("expected needMoreData"); return }
    }

    @Test func bareLFLineEndingsAreAccepted() {
        guard case .complete(let head, _) = parse("GET / HTTP/1.1\nHost: a\n\n") else {
            Issue.record("not complete"); return
        }
        #expect(head.value(of: "host") == "a")
    }

    @Test func headerLineWithoutColonIs400() {
        #expect(parseStatus("GET / HTTP/1.1\r\nHost a\r\n\r\n") == 400)
    }

    @Test func whitespaceBeforeColonIs400() {
        #expect(parseStatus("GET / HTTP/1.1\r\nHost : a\r\n\r\n") == 400)
    }

    @Test func badVersionIs400() {
        #expect(parseStatus("GET / HTTP/2.0\r\nHost: a\r\n\r\n") == 400)
        #expect(parseStatus("GET / HTTQ/1.1\r\nHost: a\r\n\r\n") == 400)
        #expect(parseStatus("GET /\r\nHost: a\r\n\r\n") == 400)
    }

    @Test func nonTokenMethodIs400() {
        #expect(parseStatus("G(T / HTTP/1.1\r\nHost: a\r\n\r\n") == 400)
        #expect(parseStatus(" GET / HTTP/1.1\r\nHost: a\r\n\r\n") == 400)
    }

    @Test func controlCharactersAre400() {
        #expect(parseStatus("GET / HTTP/1.1\r\nHost: a\u{01}b\r\n\r\n") == 400)
        #expect(parseStatus("GET /a\u{7F} HTTP/1.1\r\nHost: a\r\n\r\n") == 400)
    }

    @Test func obsoleteLineFoldingIs400() {
        #expect(parseStatus("GET / HTTP/1.1\r\nHost: a\r\n b\r\n\r\n") == 400)
    }

    @Test func http10IsParsedWithVersionMinor0() {
        guard case .complete(let head, _) = parse("GET / HTTP/1.0\r\n\r\n") else {
            Issue.record("not complete"); return
        }
        #expect(head.versionMinor == 0)
    }
}

@Suite struct HTTPResponseTests {
    @Test func serializeWritesStatusLineHeadersLengthAndConnectionClose() {
        let r = HTTPResponse.text(404, "nope", headers: [("X-A", "1")])
        let s = String(decoding: r.serialize(), as: UTF8.self)
        #expect(
            s
                == "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nX-A: 1\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnope"
        )
        let k = String(decoding: HTTPResponse(status: 200).serialize(closeConnection: false), as: UTF8.self)
        #expect(k == "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    }

    /// The one table of statuses for unreadable requests (HTTPParseError): 400 for any rule broken,
    /// 431 for a head or trailer over its limit (RFC 6585 §5), 413 for a body over its limit, 501
    /// for a transfer coding not implemented (RFC 9112 §6.1).
    @Test(arguments: [
        (HTTPParseError.malformed("Malformed request line"), 400),
        (.headerTooLarge, 431),
        (.trailerTooLarge, 431),
        (.bodyTooLarge(limit: 1000), 413),
        (.unsupportedTransferCoding, 501),
    ])
    func eachParseErrorHasItsStatus(error: HTTPParseError, status: Int) {
        #expect(error.status == status)
        #expect(error.response.status == status)
        #expect(!error.message.isEmpty)
    }

    @Test func aMalformedRequestSaysWhichRuleItBroke() {
        guard case .failed(let e) = parse("GET / HTTP/2.0\r\n\r\n") else { Issue.record("not failed"); return }
        #expect(e == .malformed("Unsupported HTTP version"))
        #expect(HTTPParseError.bodyTooLarge(limit: 1000).message == "Request body larger than 1000 bytes")
    }
}
