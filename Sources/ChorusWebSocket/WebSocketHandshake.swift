import Crypto

/// What a valid opening handshake asked for (RFC 6455 §4.2.1).
public struct WebSocketUpgradeRequest: Sendable {
    public var key: String
    public var acceptValue: String
    /// The subprotocol chosen from the client's offers, if any.
    public var subprotocol: String?
    /// Raw Sec-WebSocket-Extensions, repeated headers joined.
    public var extensionOffers: String?

    public init(key: String, acceptValue: String, subprotocol: String? = nil, extensionOffers: String? = nil) {
        self.key = key
        self.acceptValue = acceptValue
        self.subprotocol = subprotocol
        self.extensionOffers = extensionOffers
    }
}

/// Why an opening handshake was refused, and the HTTP reply that says so (§4.2.2).
public struct HandshakeRejection: Error, Sendable, Equatable {
    public var status: Int
    public var message: String
    public var headers: [(String, String)]

    public init(status: Int, message: String, headers: [(String, String)] = []) {
        self.status = status
        self.message = message
        self.headers = headers
    }

    public var response: HTTPResponse { .text(status, message, headers: headers) }

    public static func == (a: HandshakeRejection, b: HandshakeRejection) -> Bool {
        a.status == b.status && a.message == b.message
    }
}

public enum WebSocketHandshake {
    /// §1.3 / §4.2.2: the GUID appended to the key before hashing.
    public static let guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    /// base64(SHA1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")).
    public static func acceptValue(forKey key: String) -> String {
        var hasher = Insecure.SHA1()
        var bytes = Array(key.utf8)
        bytes.append(contentsOf: guid.utf8)
        bytes.withUnsafeBytes { hasher.update(bufferPointer: $0) }
        let digest = hasher.finalize()
        return digest.withUnsafeBytes { Base64.encode($0) }
    }

    /// Has an Upgrade header with the token "websocket".
    public static func isUpgradeRequest(_ head: HTTPRequestHead) -> Bool {
        guard let upgrade = head.value(of: "Upgrade") else { return false }
        return containsToken(upgrade, "websocket")
    }

    /// True if the comma-separated list `list` (RFC 7230 §7) contains `token`, case-insensitively.
    public static func containsToken(_ list: String, _ token: String) -> Bool {
        splitList(list).contains { asciiCaseInsensitiveEquals($0, token) }
    }

    /// Elements of a comma-separated header list, trimmed of OWS, empty ones dropped.
    public static func splitList(_ list: String) -> [String] {
        list.utf8.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: true).compactMap { part in
            var s = part.startIndex
            var e = part.endIndex
            while s < e, part[s] == 0x20 || part[s] == 0x09 { s = part.index(after: s) }
            while e > s, part[part.index(before: e)] == 0x20 || part[part.index(before: e)] == 0x09 {
                e = part.index(before: e)
            }
            return s == e ? nil : String(part[s..<e])
        }
    }

    /// Validates per RFC 6455 §4.2.1 and picks the first client-offered subprotocol that
    /// is in `subprotocols` (§4.2.2 step 5.4: the client lists them in order of preference).
    public static func validate(
        _ head: HTTPRequestHead, subprotocols: [String]
    ) -> Result<WebSocketUpgradeRequest, HandshakeRejection> {
        // §4.2.1 item 1: "An HTTP/1.1 or higher GET request".
        guard head.method == "GET" else {
            return .failure(
                HandshakeRejection(status: 405, message: "WebSocket upgrade requires GET", headers: [("Allow", "GET")]))
        }
        guard head.versionMinor >= 1 else {
            return .failure(HandshakeRejection(status: 400, message: "WebSocket upgrade requires HTTP/1.1"))
        }
        // Item 2.
        guard let host = head.value(of: "Host"), !host.isEmpty else {
            return .failure(HandshakeRejection(status: 400, message: "Missing Host header"))
        }
        // Item 3.
        guard isUpgradeRequest(head) else {
            return .failure(HandshakeRejection(status: 400, message: "Upgrade header must include websocket"))
        }
        // Item 4.
        guard let connection = head.value(of: "Connection"), containsToken(connection, "upgrade") else {
            return .failure(HandshakeRejection(status: 400, message: "Connection header must include upgrade"))
        }
        // Item 6 and §4.4: an unsupported version gets 426 and the versions we speak.
        guard let version = head.value(of: "Sec-WebSocket-Version"), trimmed(version) == "13" else {
            return .failure(
                HandshakeRejection(
                    status: 426, message: "Unsupported WebSocket version", headers: [("Sec-WebSocket-Version", "13")]))
        }
        // Item 5: a base64 nonce of 16 bytes.
        guard let rawKey = head.value(of: "Sec-WebSocket-Key") else {
            return .failure(HandshakeRejection(status: 400, message: "Missing Sec-WebSocket-Key"))
        }
        let key = trimmed(rawKey)
        guard let decoded = Base64.decode(key), decoded.count == 16 else {
            return .failure(HandshakeRejection(status: 400, message: "Invalid Sec-WebSocket-Key"))
        }
        var chosen: String? = nil
        if let offered = head.value(of: "Sec-WebSocket-Protocol") {
            chosen = splitList(offered).first { subprotocols.contains($0) }
        }
        return .success(
            WebSocketUpgradeRequest(
                key: key, acceptValue: acceptValue(forKey: key), subprotocol: chosen,
                extensionOffers: head.value(of: "Sec-WebSocket-Extensions")))
    }

    /// §4.2.2 step 5: the 101 reply that completes the handshake.
    public static func switchingProtocolsResponse(_ request: WebSocketUpgradeRequest, extensions: String?) -> [UInt8] {
        var s = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        s += "Sec-WebSocket-Accept: \(request.acceptValue)\r\n"
        if let p = request.subprotocol { s += "Sec-WebSocket-Protocol: \(p)\r\n" }
        if let e = extensions, !e.isEmpty { s += "Sec-WebSocket-Extensions: \(e)\r\n" }
        s += "\r\n"
        return Array(s.utf8)
    }

    /// The value without surrounding OWS (RFC 7230 §3.2.3).
    static func trimmed(_ s: String) -> String {
        let u = s.utf8
        var b = u.startIndex
        var e = u.endIndex
        while b < e, u[b] == 0x20 || u[b] == 0x09 { b = u.index(after: b) }
        while e > b, u[u.index(before: e)] == 0x20 || u[u.index(before: e)] == 0x09 { e = u.index(before: e) }
        return String(s[b..<e])
    }
}
