/// A minimal HTTP/1.1 response (RFC 7230 §3.1.2) for the upgrade path: error
/// replies to failed handshakes and small plain responses.
public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]

    public init(status: Int, headers: [(String, String)] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    public static func text(_ status: Int, _ body: String, headers: [(String, String)] = []) -> HTTPResponse {
        HTTPResponse(
            status: status, headers: [("Content-Type", "text/plain; charset=utf-8")] + headers, body: Array(body.utf8))
    }

    /// Status line with the standard reason phrase, the headers, Content-Length and
    /// (by default) Connection: close, then the body.
    public func serialize(closeConnection: Bool = true) -> [UInt8] {
        var s = "HTTP/1.1 \(status) \(HTTPResponse.reasonPhrase(status))\r\n"
        for (name, value) in headers { s += "\(name): \(value)\r\n" }
        s += "Content-Length: \(body.count)\r\n"
        if closeConnection { s += "Connection: close\r\n" }
        s += "\r\n"
        var out = Array(s.utf8)
        out.append(contentsOf: body)
        return out
    }

    /// The reason phrases of RFC 9110 §15 (plus 429 and 431 from RFC 6585), one table for every
    /// status line the server writes. A code without one gets an empty phrase, which RFC 9112 §4
    /// allows ("HTTP/1.1 299 "), never a made-up word.
    public static func reasonPhrase(_ status: Int) -> String {
        reasonPhrases[status] ?? ""
    }

    static let reasonPhrases: [Int: String] = [
        100: "Continue", 101: "Switching Protocols",
        200: "OK", 201: "Created", 202: "Accepted", 203: "Non-Authoritative Information",
        204: "No Content", 205: "Reset Content", 206: "Partial Content",
        300: "Multiple Choices", 301: "Moved Permanently", 302: "Found", 303: "See Other",
        304: "Not Modified", 307: "Temporary Redirect", 308: "Permanent Redirect",
        400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden",
        404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable",
        407: "Proxy Authentication Required", 408: "Request Timeout", 409: "Conflict", 410: "Gone",
        411: "Length Required", 412: "Precondition Failed", 413: "Content Too Large", 414: "URI Too Long",
        415: "Unsupported Media Type", 416: "Range Not Satisfiable", 417: "Expectation Failed",
        421: "Misdirected Request", 422: "Unprocessable Content", 426: "Upgrade Required",
        428: "Precondition Required", 429: "Too Many Requests", 431: "Request Header Fields Too Large",
        500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway",
        503: "Service Unavailable", 504: "Gateway Timeout", 505: "HTTP Version Not Supported",
    ]
}
