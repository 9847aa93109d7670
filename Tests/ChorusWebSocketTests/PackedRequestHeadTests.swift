import Testing

@testable import ChorusWebSocket

@Suite("Packed request heads")
struct PackedRequestHeadTests {
    private func parse(_ text: String) throws -> HTTPRequestHead {
        var parser = HTTPRequestParser(maxHeaderSize: 1 << 16)
        let bytes = Array(text.utf8)
        guard case .complete(let head, _) = bytes.withUnsafeBytes({ parser.parse($0) }) else {
            throw PackError.unparsed
        }
        return head
    }

    private enum PackError: Error { case unparsed }

    private func expectSame(_ a: HTTPRequestHead, _ b: HTTPRequestHead) {
        #expect(a.method == b.method)
        #expect(a.target == b.target)
        #expect(a.versionMinor == b.versionMinor)
        #expect(a.headers.map(\.name) == b.headers.map(\.name))
        #expect(a.headers.map(\.value) == b.headers.map(\.value))
    }

    /// What a browser's Socket.IO upgrade sends, with repeated, empty and odd-cased headers, a
    /// percent-encoded query, bare-LF line ends and HTTP/1.0: the packed copy reads back the same.
    @Test(arguments: [
        "GET /socket.io/?EIO=4&transport=websocket&userId=u%2042&t=a+b HTTP/1.1\r\nHost: chat.example:443\r\n"
            + "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
            + "Cookie: a=1\r\ncookie: b=2\r\nX-Empty:\r\nuser-agent: Mozilla/5.0 (X11; Linux x86_64)\r\n\r\n",
        "GET / HTTP/1.0\nHost: x\n\n",
        "POST /api/emit HTTP/1.1\r\nContent-Length: 0\r\nX-Spaces:   padded value   \r\n\r\n",
    ])
    func aPackedHeadReadsBackTheSame(_ text: String) throws {
        let head = try parse(text)
        let packed = PackedRequestHead(head)
        expectSame(packed.head, head)
        #expect(packed.head.value(of: "cookie") == head.value(of: "cookie"))
        #expect(packed.head.queryValue("userId") == head.queryValue("userId"))
        #expect(packed.byteCount <= text.utf8.count + 16)
    }

    /// What the benchmark's (and python-socketio's) upgrade sends packs into about half its text:
    /// the upgrade's usual names and values a byte each, the key its 16 bytes.
    @Test func anUpgradePacksSmall() throws {
        let text =
            "GET /socket.io/?EIO=4&transport=websocket&userId=u12345 HTTP/1.1\r\nHost: 127.0.0.1:3001\r\n"
            + "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            + "Sec-WebSocket-Version: 13\r\n\r\n"
        let head = try parse(text)
        let packed = PackedRequestHead(head)
        expectSame(packed.head, head)
        #expect(packed.byteCount <= 70, "\(packed.byteCount) of \(text.utf8.count)")
    }

    /// Every coding path at its edges: unknown methods and names, names in other cases, values
    /// of 127 and 128 bytes (one and two length bytes) and 20,000, keys that are not canonical
    /// base64 of 16 bytes (kept as text), bytes beyond ASCII, HTTP/1.0.
    @Test func everyCodingReadsBackTheSame() {
        let long127 = String(repeating: "a", count: 127)
        let long128 = String(repeating: "b", count: 128)
        let huge = String(repeating: "c", count: 20_000)
        let head = HTTPRequestHead(
            method: "PROPFIND", target: "/socket.io/?EIO=4&transport=polling&" + long128 + "/socket.io/",
            versionMinor: 0,
            headers: [
                ("HOST", "h"), ("host", "h2"), ("Host", ""), ("X-" + long127, long127), ("x", long128),
                ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZR=="),
                ("sec-websocket-key", "AAAAAAAAAAAAAAAAAAAAAA=="), ("X-Key", "////////////////////ww=="),
                ("X-Not-Key", "dGhlIHNhbXBsZSBub25jZQ="), ("X-Not-Key", "dGhlIHNhbXBsZSBub25j*Q=="),
                ("Cookie", huge), ("X-Utf8", "héllo ✓"), ("Upgrade", "WebSocket"), ("Upgrade", "websocket "),
            ])
        expectSame(PackedRequestHead(head).head, head)
        // Text that String's `==` holds equal to a table entry (canonical equivalence) keeps its bytes.
        let lookalikes = HTTPRequestHead(
            method: "GET", target: "/",
            headers: [
                ("\u{212A}eep-Alive", "\u{212A}eep-Alive, Upgrade"),
                ("X", "permessage-deflate\u{37E} client_max_window_bits"),
            ])
        let back = PackedRequestHead(lookalikes).head
        #expect(back.headers.map { Array($0.name.utf8) } == lookalikes.headers.map { Array($0.name.utf8) })
        #expect(back.headers.map { Array($0.value.utf8) } == lookalikes.headers.map { Array($0.value.utf8) })
        // A target holding the bytes that stand for its parts is kept as it is.
        for target in ["/socket.io/?EIO=4\u{01}\u{02}", "\u{00}/a", "/\u{04}transport=websocket", "", "EIO=4EIO=4"] {
            let h = HTTPRequestHead(method: "GET", target: target, headers: [("Host", "h")])
            expectSame(PackedRequestHead(h).head, h)
        }
        for method in PackedRequestHead.methods {
            expectSame(
                PackedRequestHead(HTTPRequestHead(method: method, target: "")).head,
                HTTPRequestHead(method: method, target: ""))
        }
    }

    /// Random keys of 16 bytes go to their bytes and back.
    @Test func webSocketKeysRoundTrip() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let raw = (0..<16).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let text = PackedRequestHead.webSocketKeyText(raw[...])
            #expect(text.utf8.count == 24)
            #expect(PackedRequestHead.webSocketKey(text) == raw)
        }
    }

    /// A head built in code (not parsed) packs and reads back too.
    @Test func aBuiltHeadReadsBackTheSame() {
        let head = HTTPRequestHead(
            method: "GET", target: "/socket.io/?EIO=4",
            headers: [("Host", "h"), ("Authorization", "Bearer abc.def.ghi")])
        expectSame(PackedRequestHead(head).head, head)
    }
}
