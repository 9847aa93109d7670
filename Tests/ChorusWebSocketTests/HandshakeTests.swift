import Testing

@testable import ChorusWebSocket

func head(method: String = "GET", minor: Int = 1, _ headers: [(String, String)]) -> HTTPRequestHead {
    HTTPRequestHead(
        method: method, target: "/chat", versionMinor: minor, headers: headers.map { (name: $0.0, value: $0.1) })
}

let goodHeaders: [(String, String)] = [
    ("Host", "server.example.com"), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13"),
]

func replacing(_ name: String, with value: String?) -> [(String, String)] {
    var h = goodHeaders.filter { $0.0 != name }
    if let value { h.append((name, value)) }
    return h
}

func rejection(_ h: HTTPRequestHead) -> HandshakeRejection? {
    if case .failure(let r) = WebSocketHandshake.validate(h, subprotocols: []) { return r }
    return nil
}

@Suite struct HandshakeTests {
    @Test func rfc1_3_acceptValueForTheSampleKey() {
        #expect(WebSocketHandshake.acceptValue(forKey: "dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    }

    @Test func validRequestIsAccepted() throws {
        let r = try WebSocketHandshake.validate(head(goodHeaders), subprotocols: []).get()
        #expect(r.key == "dGhlIHNhbXBsZSBub25jZQ==")
        #expect(r.acceptValue == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        #expect(r.subprotocol == nil && r.extensionOffers == nil)
    }

    @Test func tokensAreCaseInsensitiveAndConnectionIsAList() throws {
        var h = replacing("Connection", with: "keep-alive, UPGRADE")
        h = h.filter { $0.0 != "Upgrade" } + [("upgrade", "WebSocket")]
        _ = try WebSocketHandshake.validate(head(h), subprotocols: []).get()
    }

    @Test func firstClientOfferedSubprotocolInTheServerListIsChosen() throws {
        let h = goodHeaders + [("Sec-WebSocket-Protocol", "soap, chat"), ("Sec-WebSocket-Protocol", "superchat")]
        let r = try WebSocketHandshake.validate(head(h), subprotocols: ["superchat", "chat"]).get()
        #expect(r.subprotocol == "chat")
        let none = try WebSocketHandshake.validate(head(h), subprotocols: ["mqtt"]).get()
        #expect(none.subprotocol == nil)
    }

    @Test func extensionOffersArePassedThroughJoined() throws {
        let h =
            goodHeaders + [
                ("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits"),
                ("Sec-WebSocket-Extensions", "x-foo"),
            ]
        let r = try WebSocketHandshake.validate(head(h), subprotocols: []).get()
        #expect(r.extensionOffers == "permessage-deflate; client_max_window_bits, x-foo")
    }

    @Test func switchingProtocolsResponseHasTheRequiredHeaders() {
        let req = WebSocketUpgradeRequest(key: "k", acceptValue: "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", subprotocol: "chat")
        let s = String(
            decoding: WebSocketHandshake.switchingProtocolsResponse(req, extensions: "permessage-deflate"),
            as: UTF8.self)
        #expect(
            s == "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n"
                + "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n")
        let plain = WebSocketUpgradeRequest(key: "k", acceptValue: "a")
        #expect(
            String(decoding: WebSocketHandshake.switchingProtocolsResponse(plain, extensions: nil), as: UTF8.self)
                == "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: a\r\n\r\n"
        )
    }

    @Test func nonGetMethodIs405() {
        let r = rejection(head(method: "POST", goodHeaders))
        #expect(r?.status == 405)
        #expect(r?.headers.contains { $0.0 == "Allow" && $0.1 == "GET" } == true)
    }

    @Test func http10Is400() {
        #expect(rejection(head(minor: 0, goodHeaders))?.status == 400)
    }

    @Test func missingHostIs400() {
        #expect(rejection(head(replacing("Host", with: nil)))?.status == 400)
    }

    @Test func missingOrWrongUpgradeIs400() {
        #expect(rejection(head(replacing("Upgrade", with: nil)))?.status == 400)
        #expect(rejection(head(replacing("Upgrade", with: "h2c")))?.status == 400)
        #expect(!WebSocketHandshake.isUpgradeRequest(head(replacing("Upgrade", with: "h2c"))))
        #expect(WebSocketHandshake.isUpgradeRequest(head(goodHeaders)))
    }

    @Test func connectionWithoutUpgradeTokenIs400() {
        #expect(rejection(head(replacing("Connection", with: nil)))?.status == 400)
        #expect(rejection(head(replacing("Connection", with: "keep-alive")))?.status == 400)
        #expect(rejection(head(replacing("Connection", with: "upgrader")))?.status == 400)
    }

    @Test func unsupportedVersionIs426WithTheVersionHeader() {
        for v: String? in ["8", "14", nil] {
            let r = rejection(head(replacing("Sec-WebSocket-Version", with: v)))
            #expect(r?.status == 426)
            #expect(r?.headers.contains { $0.0 == "Sec-WebSocket-Version" && $0.1 == "13" } == true)
            let s = String(decoding: r!.response.serialize(), as: UTF8.self)
            #expect(s.hasPrefix("HTTP/1.1 426 Upgrade Required\r\n"))
            #expect(s.contains("\r\nSec-WebSocket-Version: 13\r\n"))
        }
    }

    @Test func missingKeyIs400() {
        #expect(rejection(head(replacing("Sec-WebSocket-Key", with: nil)))?.status == 400)
    }

    @Test func keyNotDecodingToSixteenBytesIs400() {
        // No padding, then 15 and 19 bytes.
        #expect(rejection(head(replacing("Sec-WebSocket-Key", with: "dGhlIHNhbXBsZSBub25jZQ")))?.status == 400)
        #expect(rejection(head(replacing("Sec-WebSocket-Key", with: "dGhlIHNhbXBsZSBub25j")))?.status == 400)
        #expect(rejection(head(replacing("Sec-WebSocket-Key", with: "AAAAAAAAAAAAAAAAAAAAAAAAAA==")))?.status == 400)
        #expect(rejection(head(replacing("Sec-WebSocket-Key", with: "!!!!!!!!!!!!!!!!!!!!!!==")))?.status == 400)
    }

    @Test func rejectionsAreEqualByStatusAndMessage() {
        #expect(
            HandshakeRejection(status: 400, message: "x", headers: [("A", "b")])
                == HandshakeRejection(status: 400, message: "x"))
    }

    @Test func parsedSampleRequestValidates() throws {
        var p = HTTPRequestParser(maxHeaderSize: 4096)
        guard case .complete(let h, _) = withBytes(Array(sampleRequest.utf8), { p.parse($0) }) else {
            Issue.record("not complete"); return
        }
        let r = try WebSocketHandshake.validate(h, subprotocols: ["superchat"]).get()
        #expect(r.subprotocol == "superchat")
    }
}

@Suite struct Base64Tests {
    @Test func rfc4648TestVectors() {
        let vectors = [
            ("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy"),
        ]
        for (plain, encoded) in vectors {
            #expect(Base64.encode(Array(plain.utf8)) == encoded)
            #expect(Base64.decode(encoded) == Array(plain.utf8))
        }
    }

    @Test func decodeRejectsMalformedInput() {
        for s in ["Zg", "Zg=", "Z===", "Zg==Zg==", "Zm9v!", "Zm 9v", "Zg=a"] {
            #expect(Base64.decode(s) == nil, "\(s)")
        }
    }

    @Test func allByteValuesRoundTrip() {
        let bytes = (0..<256).map { UInt8($0) }
        #expect(Base64.decode(Base64.encode(bytes)) == bytes)
    }
}
