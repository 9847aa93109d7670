/// The head of an HTTP/1.x request (RFC 7230 §3): request line and header fields.
public struct HTTPRequestHead: Sendable {
    public var method: String
    public var target: String
    /// The x of HTTP/1.x.
    public var versionMinor: Int
    public var headers: [(name: String, value: String)]

    public init(method: String, target: String, versionMinor: Int = 1, headers: [(name: String, value: String)] = []) {
        self.method = method
        self.target = target
        self.versionMinor = versionMinor
        self.headers = headers
    }

    /// Case-insensitive (RFC 7230 §3.2); repeated headers joined with ", " (§3.2.2).
    public func value(of name: String) -> String? {
        var result: String? = nil
        for h in headers where asciiCaseInsensitiveEquals(h.name, name) {
            if let r = result { result = r + ", " + h.value } else { result = h.value }
        }
        return result
    }

    /// The target before '?'.
    public var path: String {
        if let q = target.utf8.firstIndex(of: UInt8(ascii: "?")) { return String(target[..<q]) }
        return target
    }

    /// The query of the target, split on '&' and '=', percent-decoded ('+' as space,
    /// as browsers' URLSearchParams encode it).
    public var query: [(name: String, value: String)] {
        guard let q = target.utf8.firstIndex(of: UInt8(ascii: "?")) else { return [] }
        var result: [(name: String, value: String)] = []
        let rest = Array(target.utf8[target.utf8.index(after: q)...])
        for part in rest.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            if let eq = part.firstIndex(of: UInt8(ascii: "=")) {
                result.append((percentDecode(part[..<eq]), percentDecode(part[(eq + 1)...])))
            } else {
                result.append((percentDecode(part[...]), ""))
            }
        }
        return result
    }

    public func queryValue(_ name: String) -> String? {
        query.first(where: { $0.name == name })?.value
    }

    /// Whether `Connection` lists `token` (RFC 9110 §7.6.1: a comma-separated list of tokens).
    public func connectionHasToken(_ token: String) -> Bool {
        guard let value = value(of: "connection") else { return false }
        return value.split(separator: ",").contains {
            asciiCaseInsensitiveEquals(String($0.trimmingHTTPWhitespace), token)
        }
    }

    /// Whether the connection stays open after the response (RFC 9112 §9.3): HTTP/1.1 unless the
    /// client sent `Connection: close`. HTTP/1.0 closes (its `keep-alive` extension is not offered).
    public var keepsConnectionAlive: Bool {
        versionMinor >= 1 && !connectionHasToken("close")
    }

    /// `Expect: 100-continue` (RFC 9110 §10.1.1): the client waits for a go-ahead before its body.
    public var expectsContinue: Bool {
        guard versionMinor >= 1, let value = value(of: "expect") else { return false }
        return asciiCaseInsensitiveEquals(String(value.trimmingHTTPWhitespace), "100-continue")
    }
}

@usableFromInline
func asciiCaseInsensitiveEquals(_ a: String, _ b: String) -> Bool {
    let a = a.utf8
    let b = b.utf8
    guard a.count == b.count else { return false }
    for (x, y) in zip(a, b) where x != y {
        let lx = x >= 0x41 && x <= 0x5A ? x | 0x20 : x
        let ly = y >= 0x41 && y <= 0x5A ? y | 0x20 : y
        if lx != ly { return false }
    }
    return true
}

func percentDecode(_ bytes: ArraySlice<UInt8>) -> String {
    func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count)
    var i = bytes.startIndex
    while i < bytes.endIndex {
        let c = bytes[i]
        if c == UInt8(ascii: "%"), i + 2 < bytes.endIndex, let h = hex(bytes[i + 1]), let l = hex(bytes[i + 2]) {
            out.append(h << 4 | l)
            i += 3
        } else {
            out.append(c == UInt8(ascii: "+") ? UInt8(ascii: " ") : c)
            i += 1
        }
    }
    return String(decoding: out, as: UTF8.self)
}

/// Why a request head or body cannot be read. The status it is answered with is decided here, in
/// one switch, not where the parser notices the fault; the many ways a request can be malformed
/// share one case (all 400), whose text says which rule was broken.
public enum HTTPParseError: Error, Sendable, Equatable {
    /// Not the syntax of RFC 9112 (§2-§7), or framing two parties could read differently (§6.3).
    case malformed(String)
    /// The request head over `maxHeaderSize` (RFC 6585 §5).
    case headerTooLarge
    /// A chunked body's trailer section over its line limit (RFC 6585 §5).
    case trailerTooLarge
    /// A body over `maxBodySize` (RFC 9110 §15.5.14): `limit` is that size.
    case bodyTooLarge(limit: Int)
    /// A transfer coding other than chunked, which this server does not decode (RFC 9112 §6.1).
    case unsupportedTransferCoding

    public var status: Int {
        switch self {
        case .malformed: 400
        case .headerTooLarge, .trailerTooLarge: 431
        case .bodyTooLarge: 413
        case .unsupportedTransferCoding: 501
        }
    }

    public var message: String {
        switch self {
        case .malformed(let rule): rule
        case .headerTooLarge: "Request header too large"
        case .trailerTooLarge: "Trailer section too large"
        case .bodyTooLarge(let limit): "Request body larger than \(limit) bytes"
        case .unsupportedTransferCoding: "Transfer codings other than chunked are not implemented"
        }
    }

    public var response: HTTPResponse { .text(status, message) }
}

public enum HTTPParseResult {
    case needMoreData
    case complete(HTTPRequestHead, headerLength: Int)
    case failed(HTTPParseError)
}

/// Incremental parser for the request head of the upgrade request (RFC 7230 §3).
public struct HTTPRequestParser {
    public let maxHeaderSize: Int
    /// Bytes already searched for the blank line, so a resumed call does not rescan them.
    var scanned = 0
    var requestLineChecked = false

    public init(maxHeaderSize: Int) {
        self.maxHeaderSize = maxHeaderSize
    }

    /// `bytes` is everything received so far on the connection; resumes scanning where the last call stopped.
    /// Too-long headers → 431; malformed request line/header lines → 400.
    public mutating func parse(_ bytes: UnsafeRawBufferPointer) -> HTTPParseResult {
        let n = bytes.count
        var end: Int? = nil
        // The head ends at an empty line; §3.5 lets a recipient accept bare LF as a line end.
        var i = max(scanned, 1)
        while i < n {
            if bytes[i] == 0x0A {
                if bytes[i - 1] == 0x0A { end = i + 1; break }
                if i >= 2 && bytes[i - 1] == 0x0D && bytes[i - 2] == 0x0A { end = i + 1; break }
            }
            i += 1
        }
        guard let end else {
            scanned = max(n, 1)
            if let err = checkRequestLineEarly(bytes) { return .failed(err) }
            if n > maxHeaderSize { return .failed(.headerTooLarge) }
            return .needMoreData
        }
        // The same verdict however the head was segmented: a bad request line within the size
        // limit is 400 even when the whole head arrives at once and is also too large.
        let earlyError = checkRequestLineEarly(bytes)
        scanned = 0
        requestLineChecked = false
        if let earlyError { return .failed(earlyError) }
        if end > maxHeaderSize { return .failed(.headerTooLarge) }
        switch Self.parseHead(UnsafeRawBufferPointer(rebasing: bytes[..<end])) {
        case .success(let head): return .complete(head, headerLength: end)
        case .failure(let e): return .failed(e)
        }
    }

    static func bad(_ message: String) -> Result<HTTPRequestHead, HTTPParseError> {
        .failure(.malformed(message))
    }

    /// RFC 7230 §3.2.6 tchar.
    static func isTokenChar(_ c: UInt8) -> Bool {
        switch c {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
            UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
            UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    static func parseHead(_ head: UnsafeRawBufferPointer) -> Result<HTTPRequestHead, HTTPParseError> {
        // Split into lines without their CRLF / LF.
        var lines: [UnsafeRawBufferPointer] = []
        var start = 0
        for i in 0..<head.count where head[i] == 0x0A {
            var e = i
            if e > start && head[e - 1] == 0x0D { e -= 1 }
            lines.append(UnsafeRawBufferPointer(rebasing: head[start..<e]))
            start = i + 1
        }
        // §3.5: ignore empty lines before the request line.
        var idx = 0
        while idx < lines.count && lines[idx].isEmpty { idx += 1 }
        guard idx < lines.count, !lines[idx].isEmpty else { return bad("Empty request") }

        let requestLine: (method: String, target: String, minor: Int)
        switch parseRequestLine(lines[idx]) {
        case .success(let r): requestLine = r
        case .failure(let e): return .failure(e)
        }

        var headers: [(name: String, value: String)] = []
        for l in lines[(idx + 1)...] where !l.isEmpty {
            // §3.2.4: obs-fold may be rejected with 400.
            if l[0] == 0x20 || l[0] == 0x09 { return bad("Obsolete header line folding") }
            // §3.2.4: no whitespace between field name and colon, hence token chars only up to the colon.
            guard let colon = l.firstIndex(of: UInt8(ascii: ":")) else { return bad("Header line without colon") }
            let name = l[..<colon]
            guard !name.isEmpty, name.allSatisfy(isTokenChar) else { return bad("Malformed header name") }
            var vs = colon + 1
            var ve = l.count
            while vs < ve && (l[vs] == 0x20 || l[vs] == 0x09) { vs += 1 }
            while ve > vs && (l[ve - 1] == 0x20 || l[ve - 1] == 0x09) { ve -= 1 }
            let value = l[vs..<ve]
            // §3.2: field-content is VCHAR / obs-text with SP / HTAB inside; no other controls.
            guard value.allSatisfy({ $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7F) }) else {
                return bad("Control character in header value")
            }
            headers.append(
                (
                    String(decoding: UnsafeRawBufferPointer(rebasing: name), as: UTF8.self),
                    String(decoding: UnsafeRawBufferPointer(rebasing: value), as: UTF8.self)
                ))
        }
        return .success(
            HTTPRequestHead(
                method: requestLine.method, target: requestLine.target, versionMinor: requestLine.minor,
                headers: headers))
    }

    /// Request line (§3.1.1): method SP request-target SP HTTP-version.
    static func parseRequestLine(_ line: UnsafeRawBufferPointer) -> Result<
        (method: String, target: String, minor: Int), HTTPParseError
    > {
        func bad(_ m: String) -> Result<(method: String, target: String, minor: Int), HTTPParseError> {
            .failure(.malformed(m))
        }
        guard let sp1 = line.firstIndex(of: 0x20) else { return bad("Malformed request line") }
        let methodBytes = line[..<sp1]
        guard !methodBytes.isEmpty, methodBytes.allSatisfy(isTokenChar) else { return bad("Malformed method") }
        let afterMethod = line[(sp1 + 1)...]
        guard let sp2 = afterMethod.firstIndex(of: 0x20) else { return bad("Malformed request line") }
        let targetBytes = line[(sp1 + 1)..<sp2]
        guard !targetBytes.isEmpty, targetBytes.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            return bad("Malformed request target")
        }
        let versionBytes = line[(sp2 + 1)...]
        let prefix = Array("HTTP/1.".utf8)
        guard versionBytes.count == 8, versionBytes.prefix(7).elementsEqual(prefix),
            let last = versionBytes.last, last >= UInt8(ascii: "0"), last <= UInt8(ascii: "9")
        else { return bad("Unsupported HTTP version") }
        return .success(
            (
                String(decoding: UnsafeRawBufferPointer(rebasing: methodBytes), as: UTF8.self),
                String(decoding: UnsafeRawBufferPointer(rebasing: targetBytes), as: UTF8.self),
                Int(last - UInt8(ascii: "0"))
            ))
    }

    /// Once the first line is in, judge it without waiting for the rest of the head, so a
    /// client that does not speak HTTP is turned away at once rather than at the size limit.
    mutating func checkRequestLineEarly(_ bytes: UnsafeRawBufferPointer) -> HTTPParseError? {
        guard !requestLineChecked else { return nil }
        var start = 0
        while start < bytes.count && (bytes[start] == 0x0D || bytes[start] == 0x0A) { start += 1 }
        // Only a line that ends within the size limit is judged (a longer one is 431 whatever
        // its content), so that the answer does not depend on how the bytes were segmented.
        guard let nl = bytes[start..<max(start, min(bytes.count, maxHeaderSize))].firstIndex(of: 0x0A) else {
            return nil
        }
        requestLineChecked = true
        var e = nl
        if e > start && bytes[e - 1] == 0x0D { e -= 1 }
        if case .failure(let err) = Self.parseRequestLine(UnsafeRawBufferPointer(rebasing: bytes[start..<e])) {
            return err
        }
        return nil
    }
}
