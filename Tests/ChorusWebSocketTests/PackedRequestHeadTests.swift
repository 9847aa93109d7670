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

    /// A head built in code (not parsed) packs and reads back too.
    @Test func aBuiltHeadReadsBackTheSame() {
        let head = HTTPRequestHead(
            method: "GET", target: "/socket.io/?EIO=4",
            headers: [("Host", "h"), ("Authorization", "Bearer abc.def.ghi")])
        expectSame(PackedRequestHead(head).head, head)
    }
}
