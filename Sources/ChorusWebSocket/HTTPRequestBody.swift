/// How a request's body is delimited (RFC 9112 §6), decided on the head before any body byte is
/// read, and the incremental reader that collects it (`Content-Length` or chunked, §7.1).
public enum HTTPBodyFraming: Sendable, Equatable {
    /// No body (no `Content-Length`, no `Transfer-Encoding`: §6.3 rule 7 for requests).
    case none
    case length(Int)
    case chunked

    /// The framing of `head`'s body, or the error to answer with. Everything ambiguous is refused
    /// (§6.3: a request whose framing two parties could read differently is how requests are
    /// smuggled): a `Content-Length` that is not one plain decimal number, or is repeated (even with
    /// the same value), `Transfer-Encoding` beside `Content-Length`, or in HTTP/1.0 (§6.1), or whose
    /// final coding is not chunked → 400; a coding other than chunked → 501; a declared length
    /// over `maxBodySize` → 413.
    public static func of(_ head: HTTPRequestHead, maxBodySize: Int) -> Result<HTTPBodyFraming, HTTPParseError> {
        var lengths: [String] = []
        var codings: [String] = []
        for h in head.headers {
            if asciiCaseInsensitiveEquals(h.name, "content-length") { lengths.append(h.value) }
            if asciiCaseInsensitiveEquals(h.name, "transfer-encoding") { codings.append(h.value) }
        }
        if !codings.isEmpty {
            if !lengths.isEmpty { return bad("Transfer-Encoding together with Content-Length") }
            if head.versionMinor == 0 { return bad("Transfer-Encoding in an HTTP/1.0 request") }
            // The codings in order (§6.1: a list, possibly over several header lines).
            var list: [Substring] = []
            for value in codings {
                for item in value.split(separator: ",", omittingEmptySubsequences: false) {
                    let coding = item.trimmingHTTPWhitespace
                    if coding.isEmpty { return bad("Malformed Transfer-Encoding") }
                    list.append(coding)
                }
            }
            // Chunked must be applied once and last; anything else is a coding we do not decode.
            for coding in list.dropLast() where asciiCaseInsensitiveEquals(String(coding), "chunked") {
                return bad("chunked applied more than once")
            }
            guard asciiCaseInsensitiveEquals(String(list.last!), "chunked") else {
                return bad("the final transfer coding of a request must be chunked")
            }
            guard list.count == 1 else {
                return .failure(.unsupportedTransferCoding)
            }
            return .success(.chunked)
        }
        guard !lengths.isEmpty else { return .success(.none) }
        // §8.6: Content-Length = 1*DIGIT. A list ("5, 5") or a second header line is refused
        // rather than reconciled: the sender is confused or lying.
        guard lengths.count == 1 else { return bad("Content-Length repeated") }
        guard let length = parseDecimal(lengths[0].utf8) else { return bad("Invalid Content-Length") }
        if length > maxBodySize {
            return .failure(.bodyTooLarge(limit: maxBodySize))
        }
        return .success(length == 0 ? .none : .length(length))
    }

    static func bad(_ message: String) -> Result<HTTPBodyFraming, HTTPParseError> {
        .failure(.malformed(message))
    }

    /// 1*DIGIT, no sign, no space, at most 18 digits (so it fits an Int); nil otherwise.
    static func parseDecimal(_ digits: String.UTF8View) -> Int? {
        guard !digits.isEmpty, digits.count <= 18 else { return nil }
        var value = 0
        for c in digits {
            guard c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int(c - UInt8(ascii: "0"))
        }
        return value
    }
}

extension StringProtocol {
    /// Without leading and trailing OWS (SP / HTAB, RFC 9110 §5.6.3).
    var trimmingHTTPWhitespace: Substring {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return s
    }
}

public enum HTTPBodyReadResult: Equatable {
    /// All of the input was used; the body is not complete yet.
    case needMoreData
    /// The body is complete after `consumed` bytes of this input (the rest is the next request).
    case complete(consumed: Int)
    case failed(HTTPParseError)
}

/// Collects a request body from the bytes that follow the head, fed in whatever pieces the
/// network delivers. Chunked bodies (RFC 9112 §7.1) are parsed strictly: chunk-size is 1*HEXDIG
/// with nothing before it, every line ends in CRLF, chunk extensions and trailer fields are
/// skipped within bounds; the decoded size is held to `maxBodySize` as it grows (413), so a
/// client cannot declare or send more than the limit.
public struct HTTPBodyReader {
    public let framing: HTTPBodyFraming
    public let maxBodySize: Int
    /// Longest chunk-size line (with its extensions) and all trailer fields together.
    public let maxLineSize: Int
    public private(set) var body: [UInt8] = []

    enum ChunkState: Equatable {
        /// In a chunk-size line: `digits` hex digits read; `inExtension` after the first non-digit.
        case size(digits: Int, inExtension: Bool, lineLength: Int)
        /// The LF after a chunk-size line's CR.
        case sizeLF
        case data(remaining: Int)
        /// The CR (then LF) that ends chunk-data.
        case dataCR
        case dataLF
        /// After the last chunk: trailer lines until an empty one. `lineLength` of the current line.
        case trailer(lineLength: Int, sawCR: Bool)
        case done
    }

    var chunkState = ChunkState.size(digits: 0, inExtension: false, lineLength: 0)
    var chunkSize = 0
    /// Whitespace followed the chunk-size digits: only more of it or ';' may come.
    var bwsAfterSize = false
    var trailerBytes = 0

    public init(framing: HTTPBodyFraming, maxBodySize: Int, maxLineSize: Int = 4096) {
        self.framing = framing
        self.maxBodySize = maxBodySize
        self.maxLineSize = maxLineSize
        if case .length(let n) = framing { body.reserveCapacity(n) }
    }

    public var isComplete: Bool {
        switch framing {
        case .none: return true
        case .length(let n): return body.count == n
        case .chunked: return chunkState == .done
        }
    }

    public mutating func read(_ bytes: UnsafeRawBufferPointer) -> HTTPBodyReadResult {
        switch framing {
        case .none:
            return .complete(consumed: 0)
        case .length(let n):
            let take = min(n - body.count, bytes.count)
            body.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[..<take]))
            return body.count == n ? .complete(consumed: take) : .needMoreData
        case .chunked:
            return readChunked(bytes)
        }
    }

    static func fail(_ message: String) -> HTTPBodyReadResult {
        .failed(.malformed(message))
    }

    static func hexValue(_ c: UInt8) -> Int? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return Int(c - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return Int(c - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return Int(c - UInt8(ascii: "A") + 10)
        default: return nil
        }
    }

    mutating func readChunked(_ bytes: UnsafeRawBufferPointer) -> HTTPBodyReadResult {
        var i = 0
        let n = bytes.count
        while i < n {
            let c = bytes[i]
            switch chunkState {
            case .size(let digits, let inExtension, let lineLength):
                guard lineLength < maxLineSize else { return Self.fail("Chunk-size line too long") }
                if c == 0x0D {
                    guard digits > 0 else { return Self.fail("Missing chunk size") }
                    chunkState = .sizeLF
                } else if !inExtension, !bwsAfterSize, let v = Self.hexValue(c) {
                    // Held to the limit while it is read: no overflow, no huge declared chunk.
                    chunkSize = chunkSize * 16 + v
                    if body.count + chunkSize > maxBodySize {
                        return .failed(.bodyTooLarge(limit: maxBodySize))
                    }
                    chunkState = .size(digits: digits + 1, inExtension: false, lineLength: lineLength + 1)
                } else if digits > 0 && (c == UInt8(ascii: ";") || inExtension) {
                    // chunk-ext (§7.1.1), ignored. No controls inside.
                    if c == 0x0A || (c < 0x20 && c != 0x09) || c == 0x7F {
                        return Self.fail("Malformed chunk extension")
                    }
                    chunkState = .size(digits: digits, inExtension: true, lineLength: lineLength + 1)
                } else if digits > 0 && (c == 0x20 || c == 0x09) {
                    // BWS before ';': only whitespace and then ';' may follow the digits.
                    chunkState = .size(digits: digits, inExtension: false, lineLength: lineLength + 1)
                    bwsAfterSize = true
                } else {
                    return Self.fail("Malformed chunk size")
                }
                i += 1
            case .sizeLF:
                guard c == 0x0A else { return Self.fail("Chunk-size line not ended by CRLF") }
                i += 1
                bwsAfterSize = false
                if chunkSize == 0 {
                    chunkState = .trailer(lineLength: 0, sawCR: false)
                } else {
                    chunkState = .data(remaining: chunkSize)
                }
                chunkSize = 0
            case .data(let remaining):
                let take = min(remaining, n - i)
                body.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[i..<(i + take)]))
                i += take
                chunkState = take == remaining ? .dataCR : .data(remaining: remaining - take)
            case .dataCR:
                guard c == 0x0D else { return Self.fail("Chunk data not followed by CRLF") }
                chunkState = .dataLF
                i += 1
            case .dataLF:
                guard c == 0x0A else { return Self.fail("Chunk data not followed by CRLF") }
                chunkState = .size(digits: 0, inExtension: false, lineLength: 0)
                i += 1
            case .trailer(let lineLength, let sawCR):
                // Trailer fields are read and dropped (§7.1.2 lets a recipient discard them).
                trailerBytes += 1
                guard trailerBytes <= maxLineSize else { return .failed(.trailerTooLarge) }
                i += 1
                if sawCR {
                    guard c == 0x0A else { return Self.fail("Trailer line not ended by CRLF") }
                    if lineLength == 0 {
                        chunkState = .done
                        return .complete(consumed: i)
                    }
                    chunkState = .trailer(lineLength: 0, sawCR: false)
                } else if c == 0x0D {
                    chunkState = .trailer(lineLength: lineLength, sawCR: true)
                } else if c == 0x0A || (c < 0x20 && c != 0x09) || c == 0x7F {
                    return Self.fail("Malformed trailer field")
                } else {
                    chunkState = .trailer(lineLength: lineLength + 1, sawCR: false)
                }
            case .done:
                return .complete(consumed: i)
            }
        }
        return chunkState == .done ? .complete(consumed: i) : .needMoreData
    }
}
