import Testing

@testable import ChorusWebSocket

/// RFC 9112 §6 (message body length) and §7.1 (chunked transfer coding), rule by rule.
@Suite struct HTTPRequestBodyTests {
    static func head(_ headers: [(String, String)], minor: Int = 1) -> HTTPRequestHead {
        HTTPRequestHead(method: "POST", target: "/api/v1/emit", versionMinor: minor, headers: headers)
    }

    static func framing(_ headers: [(String, String)], minor: Int = 1, max: Int = 1000) -> Result<
        HTTPBodyFraming, HTTPParseError
    > {
        HTTPBodyFraming.of(head(headers, minor: minor), maxBodySize: max)
    }

    static func status(_ headers: [(String, String)], minor: Int = 1, max: Int = 1000) -> Int? {
        if case .failure(let e) = framing(headers, minor: minor, max: max) { return e.status }
        return nil
    }

    @Test("§6.3 rule 7: a request without Content-Length or Transfer-Encoding has no body")
    func noFramingMeansNoBody() throws {
        #expect(try Self.framing([("Host", "x")]).get() == .none)
        #expect(try Self.framing([("Content-Length", "0")]).get() == .none)
    }

    @Test("Content-Length = 1*DIGIT, read as a decimal number")
    func contentLengthDigits() throws {
        #expect(try Self.framing([("content-length", "17")]).get() == .length(17))
        #expect(try Self.framing([("Content-Length", "0017")]).get() == .length(17))
        #expect(try Self.framing([("Content-Length", "1000")]).get() == .length(1000))
    }

    @Test(
        "§6.3 rule 5: an invalid Content-Length is 400, never read as 0 or a number",
        arguments: ["abc", "+17", "-1", "", "17 ", "1 7", "0x11", "1e3", "17,", "99999999999999999999999"])
    func invalidContentLength(_ value: String) {
        // (The head parser trims OWS around field values, so "17 " reaches here only if crafted.)
        #expect(Self.status([("Content-Length", value)]) == 400)
    }

    @Test("Content-Length repeated, with the same or different values, or as a list: 400")
    func repeatedContentLength() {
        #expect(Self.status([("Content-Length", "5"), ("Content-Length", "5")]) == 400)
        #expect(Self.status([("Content-Length", "5"), ("content-length", "6")]) == 400)
        #expect(Self.status([("Content-Length", "5, 5")]) == 400)
    }

    @Test("a declared length over the limit is 413 before any body byte; at the limit it is read")
    func declaredLengthAtTheLimit() throws {
        #expect(Self.status([("Content-Length", "1001")], max: 1000) == 413)
        #expect(try Self.framing([("Content-Length", "1000")], max: 1000).get() == .length(1000))
    }

    @Test("§6.3 rule 3: Transfer-Encoding together with Content-Length is 400 (request smuggling)")
    func transferEncodingWithContentLength() {
        #expect(Self.status([("Transfer-Encoding", "chunked"), ("Content-Length", "5")]) == 400)
        #expect(Self.status([("Content-Length", "5"), ("Transfer-Encoding", "chunked")]) == 400)
    }

    @Test("§6.1: Transfer-Encoding in HTTP/1.0 is faulty framing: 400")
    func transferEncodingInHTTP10() {
        #expect(Self.status([("Transfer-Encoding", "chunked")], minor: 0) == 400)
    }

    @Test("§6.3 rule 4: the final coding must be chunked (400); other codings are not implemented (501)")
    func transferCodings() throws {
        #expect(try Self.framing([("Transfer-Encoding", "chunked")]).get() == .chunked)
        #expect(try Self.framing([("Transfer-Encoding", " Chunked ")]).get() == .chunked)
        #expect(Self.status([("Transfer-Encoding", "gzip")]) == 400)
        #expect(Self.status([("Transfer-Encoding", "chunked, gzip")]) == 400)
        #expect(Self.status([("Transfer-Encoding", "gzip, chunked")]) == 501)
        #expect(Self.status([("Transfer-Encoding", "gzip"), ("Transfer-Encoding", "chunked")]) == 501)
        #expect(Self.status([("Transfer-Encoding", "chunked, chunked")]) == 400)
        #expect(Self.status([("Transfer-Encoding", "chunked,")]) == 400)
    }

    // MARK: Reading

    /// Feeds `wire` to a reader in pieces of `piece` bytes; the result and the body.
    static func read(_ framing: HTTPBodyFraming, _ wire: [UInt8], piece: Int = .max, max: Int = 1000)
        -> (HTTPBodyReadResult, [UInt8])
    {
        var reader = HTTPBodyReader(framing: framing, maxBodySize: max, maxLineSize: 64)
        var offset = 0
        while offset < wire.count {
            let end = min(wire.count, offset + min(piece, wire.count - offset))
            let result = wire[offset..<end].withUnsafeBytes { reader.read($0) }
            switch result {
            case .needMoreData: offset = end
            case .complete(let consumed): return (.complete(consumed: offset + consumed), reader.body)
            case .failed: return (result, reader.body)
            }
        }
        return (.needMoreData, reader.body)
    }

    static func chunked(_ s: String, piece: Int = .max, max: Int = 1000) -> (HTTPBodyReadResult, [UInt8]) {
        read(.chunked, Array(s.utf8), piece: piece, max: max)
    }

    static func failure(_ r: (HTTPBodyReadResult, [UInt8])) -> Int? {
        if case .failed(let e) = r.0 { return e.status }
        return nil
    }

    @Test("a Content-Length body ends after its length; what follows is the next request")
    func lengthBody() {
        let wire = Array("hello worldGET / HTTP/1.1\r\n".utf8)
        for piece in [1, 3, 100] {
            let (result, body) = Self.read(.length(11), wire, piece: piece)
            #expect(result == .complete(consumed: 11))
            #expect(body == Array("hello world".utf8))
        }
    }

    @Test("§7.1: chunks, an extension, a trailer; whole and byte by byte, the same body and end")
    func chunkedBody() {
        let wire = "5\r\nhello\r\n6;name=\"v\"\r\n world\r\nA\r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT"
        let length = wire.utf8.count - 4
        for piece in [1, 2, 7, .max] {
            let (result, body) = Self.chunked(wire, piece: piece)
            #expect(result == .complete(consumed: length), "piece \(piece)")
            #expect(body == Array("hello world0123456789".utf8))
        }
        #expect(Self.chunked("0\r\n\r\n").0 == .complete(consumed: 5))
        #expect(Self.chunked("3 ;ext\r\nabc\r\n0\r\n\r\n").1 == Array("abc".utf8))
    }

    @Test(
        "§7.1: chunk-size is 1*HEXDIG and nothing else",
        arguments: [
            "\r\n", " 5\r\nhello\r\n0\r\n\r\n", "+5\r\nhello\r\n", "-5\r\n", "0x5\r\nhello\r\n", "g\r\n",
            "5 5\r\nhello\r\n", "5\nhello\r\n0\r\n\r\n", "5\r\nhelloXX", "5\r\nhello\n0\r\n\r\n",
            "0\r\nX: y\n\r\n", "5;a\u{1}b\r\n",
        ])
    func malformedChunks(_ wire: String) {
        #expect(Self.failure(Self.chunked(wire)) == 400, "\(Array(wire.utf8))")
    }

    @Test("a chunked body over the limit is 413 as soon as a chunk size declares it, even huge ones")
    func chunkedLimit() {
        #expect(Self.chunked("3E8\r\n", max: 1000).0 == .needMoreData)  // exactly 1000
        #expect(Self.failure(Self.chunked("3E9\r\n", max: 1000)) == 413)
        #expect(
            Self.failure(Self.chunked("1F4\r\n" + String(repeating: "a", count: 500) + "\r\n1F5\r\n", max: 1000)) == 413
        )
        #expect(Self.failure(Self.chunked("FFFFFFFFFFFFFFFFFFFFFFFF\r\n", max: 1000)) == 413)
        #expect(Self.failure(Self.chunked("000000000000000000000000000000000000001\r\n", max: 1000)) == nil)
    }

    @Test("chunk-size lines and trailers are bounded")
    func chunkLinesBounded() {
        #expect(Self.failure(Self.chunked("5;" + String(repeating: "x", count: 100) + "\r\n")) == 400)
        #expect(Self.failure(Self.chunked("0\r\nX: " + String(repeating: "x", count: 100) + "\r\n\r\n")) == 431)
    }
}

@Suite struct HTTPKeepAliveTests {
    static func head(minor: Int, _ headers: [(String, String)] = []) -> HTTPRequestHead {
        HTTPRequestHead(method: "GET", target: "/", versionMinor: minor, headers: headers)
    }

    @Test("RFC 9112 §9.3: HTTP/1.1 persists unless Connection: close; HTTP/1.0 closes")
    func persistence() {
        #expect(Self.head(minor: 1).keepsConnectionAlive)
        #expect(!Self.head(minor: 1, [("Connection", "close")]).keepsConnectionAlive)
        #expect(!Self.head(minor: 1, [("connection", "TE, Close")]).keepsConnectionAlive)
        #expect(Self.head(minor: 1, [("Connection", "closed")]).keepsConnectionAlive)
        #expect(!Self.head(minor: 0).keepsConnectionAlive)
        #expect(!Self.head(minor: 0, [("Connection", "keep-alive")]).keepsConnectionAlive)
    }

    @Test("Expect: 100-continue is recognised on HTTP/1.1 only")
    func expectContinue() {
        #expect(Self.head(minor: 1, [("Expect", "100-Continue")]).expectsContinue)
        #expect(!Self.head(minor: 0, [("Expect", "100-continue")]).expectsContinue)
        #expect(!Self.head(minor: 1).expectsContinue)
    }

    @Test("every status line the server writes has its reason phrase; unknown codes an empty one")
    func reasonPhrases() {
        for (status, phrase) in [
            (202, "Accepted"), (411, "Length Required"), (408, "Request Timeout"),
            (413, "Content Too Large"), (501, "Not Implemented"), (204, "No Content"),
        ] {
            #expect(HTTPResponse.reasonPhrase(status) == phrase)
            #expect(
                Array(HTTPResponse(status: status).serialize().prefix(13 + phrase.utf8.count + 2))
                    == Array("HTTP/1.1 \(status) \(phrase)\r\n".utf8))
        }
        #expect(HTTPResponse.reasonPhrase(299) == "")
        #expect(!HTTPResponse(status: 202).serialize(closeConnection: false).containsSequence(Array("Connection".utf8)))
    }
}

extension Array where Element == UInt8 {
    func containsSequence(_ needle: [UInt8]) -> Bool {
        guard needle.count <= count else { return false }
        return (0...(count - needle.count)).contains { Array(self[$0..<$0 + needle.count]) == needle }
    }
}

@Suite struct HTTPParserSegmentationTests {
    /// Found by scripts/fuzz.sh HTTPParser: a malformed request line in a head over the size
    /// limit was 431 when the head arrived whole and 400 when it arrived in pieces.
    @Test("the verdict on a head does not depend on how it was segmented")
    func sameVerdictWholeAndSplit() {
        let head = Array(("GET /a b c HTTP/1.1\r\nX: " + String(repeating: "y", count: 300) + "\r\n\r\n").utf8)
        var whole = HTTPRequestParser(maxHeaderSize: 256)
        guard case .failed(let a) = head.withUnsafeBytes({ whole.parse($0) }) else {
            Issue.record("whole accepted"); return
        }
        var split = HTTPRequestParser(maxHeaderSize: 256)
        var verdict: HTTPParseError?
        for n in stride(from: 10, through: head.count, by: 10) where verdict == nil {
            if case .failed(let e) = head[..<n].withUnsafeBytes({ split.parse($0) }) { verdict = e }
        }
        #expect(a.status == 400 && verdict?.status == 400)
        // A request line longer than the limit is 431 either way.
        let long = Array(("GET /" + String(repeating: "a", count: 300) + " HTTP/1.1\r\n\r\n").utf8)
        var w = HTTPRequestParser(maxHeaderSize: 256)
        var s = HTTPRequestParser(maxHeaderSize: 256)
        guard case .failed(let lw) = long.withUnsafeBytes({ w.parse($0) }) else { Issue.record("accepted"); return }
        var ls: HTTPParseError?
        for n in stride(from: 7, through: long.count, by: 7) where ls == nil {
            if case .failed(let e) = long[..<n].withUnsafeBytes({ s.parse($0) }) { ls = e }
        }
        #expect(lw.status == 431 && ls?.status == 431)
    }
}
