// Strict RFC 8259 parser: one value per document, a nesting limit, duplicate keys resolved as
// JavaScript's JSON.parse does, and raw UTF-8 in strings checked with the same validator the
// WebSocket layer uses for text frames (ChorusUTF8).
// Over the ~400-line guide: one recursive-descent parser whose string and number scanners share
// its cursor; split, the hot scanners would cross a file's private boundary.
#if canImport(ChorusUTF8)
// scripts/fuzz.sh compiles this file and UTF8Validator.swift into one module, without ChorusUTF8.
import ChorusUTF8
#endif

// MARK: - Errors

public struct JSONError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Kind: Hashable, Sendable {
        case unexpectedEnd
        case unexpectedCharacter(UInt8)
        case invalidNumber
        case numberOutOfRange
        case invalidEscape
        case invalidUnicodeEscape
        case loneSurrogate
        case controlCharacterInString
        case invalidUTF8
        case depthLimitExceeded
        case trailingData
    }

    public var kind: Kind
    /// Byte offset in the input where the problem was detected (for invalid UTF-8: the opening
    /// quote of the string that holds it).
    public var offset: Int

    public init(_ kind: Kind, at offset: Int) {
        self.kind = kind
        self.offset = offset
    }

    public var description: String {
        let what: String
        switch kind {
        case .unexpectedEnd: what = "unexpected end of input"
        case .unexpectedCharacter(let c):
            what =
                (c >= 0x20 && c < 0x7F)
                ? "unexpected character '\(Character(Unicode.Scalar(c)))'" : "unexpected byte 0x\(String(c, radix: 16))"
        case .invalidNumber: what = "invalid number"
        case .numberOutOfRange: what = "number out of range"
        case .invalidEscape: what = "invalid escape sequence"
        case .invalidUnicodeEscape: what = "invalid \\u escape"
        case .loneSurrogate: what = "lone UTF-16 surrogate in \\u escape"
        case .controlCharacterInString: what = "unescaped control character in string"
        case .invalidUTF8: what = "invalid UTF-8"
        case .depthLimitExceeded: what = "nesting depth limit exceeded"
        case .trailingData: what = "trailing data after JSON value"
        }
        return "JSON error at byte \(offset): \(what)"
    }
}

// MARK: - Parser

public struct JSONParseOptions: Sendable, Hashable {
    public enum LoneSurrogatePolicy: Sendable, Hashable {
        /// Reject `"\uD800"` (a Swift String cannot hold it).
        case reject
        /// Replace with U+FFFD (what a JavaScript peer's JSON.parse would accept).
        case replace
    }

    /// Maximum nesting of arrays/objects (the top-level container is depth 1).
    public var maxDepth: Int
    public var loneSurrogates: LoneSurrogatePolicy

    public init(maxDepth: Int = 64, loneSurrogates: LoneSurrogatePolicy = .replace) {
        self.maxDepth = maxDepth
        self.loneSurrogates = loneSurrogates
    }

    public static let `default` = JSONParseOptions()
}

extension JSONValue {
    /// Parses exactly one JSON value (surrounding whitespace allowed).
    public static func parse(
        _ bytes: UnsafeRawBufferPointer, options: JSONParseOptions = .default
    ) throws(JSONError) -> JSONValue {
        var p = JSONParser(bytes: bytes, options: options)
        return try p.parseDocument()
    }

    public static func parse(_ bytes: [UInt8], options: JSONParseOptions = .default) throws(JSONError) -> JSONValue {
        let r: Result<JSONValue, JSONError> = bytes.withUnsafeBytes { raw in
            do throws(JSONError) { return .success(try parse(raw, options: options)) } catch { return .failure(error) }
        }
        return try r.get()
    }

    public static func parse(_ text: String, options: JSONParseOptions = .default) throws(JSONError) -> JSONValue {
        var text = text
        let r: Result<JSONValue, JSONError> = text.withUTF8 { buf in
            do throws(JSONError) {
                return .success(try parse(UnsafeRawBufferPointer(buf), options: options))
            } catch { return .failure(error) }
        }
        return try r.get()
    }
}

@usableFromInline
struct JSONParser {
    let bytes: UnsafeRawBufferPointer
    let options: JSONParseOptions
    var pos = 0
    var depth = 0

    init(bytes: UnsafeRawBufferPointer, options: JSONParseOptions) {
        self.bytes = bytes
        self.options = options
    }

    mutating func parseDocument() throws(JSONError) -> JSONValue {
        skipWhitespace()
        let v = try parseValue()
        skipWhitespace()
        if pos != bytes.count { throw JSONError(.trailingData, at: pos) }
        return v
    }

    @inline(__always)
    mutating func skipWhitespace() {
        while pos < bytes.count {
            switch bytes[pos] {
            case 0x20, 0x09, 0x0A, 0x0D: pos += 1
            default: return
            }
        }
    }

    mutating func parseValue() throws(JSONError) -> JSONValue {
        guard pos < bytes.count else { throw JSONError(.unexpectedEnd, at: pos) }
        switch bytes[pos] {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        case let c: throw JSONError(.unexpectedCharacter(c), at: pos)
        }
    }

    mutating func expectLiteral(_ lit: StaticString) throws(JSONError) {
        let n = lit.utf8CodeUnitCount
        let p = lit.utf8Start
        for i in 0..<n {
            guard pos + i < bytes.count else { throw JSONError(.unexpectedEnd, at: pos + i) }
            if bytes[pos + i] != p[i] { throw JSONError(.unexpectedCharacter(bytes[pos + i]), at: pos + i) }
        }
        pos += n
    }

    mutating func enter() throws(JSONError) {
        depth += 1
        if depth > options.maxDepth { throw JSONError(.depthLimitExceeded, at: pos) }
    }

    mutating func parseArray() throws(JSONError) -> JSONValue {
        try enter()
        pos += 1  // [
        var elements: [JSONValue] = []
        skipWhitespace()
        if pos < bytes.count, bytes[pos] == UInt8(ascii: "]") {
            pos += 1
            depth -= 1
            return .array(elements)
        }
        while true {
            skipWhitespace()
            elements.append(try parseValue())
            skipWhitespace()
            guard pos < bytes.count else { throw JSONError(.unexpectedEnd, at: pos) }
            let c = bytes[pos]
            pos += 1
            if c == UInt8(ascii: ",") { continue }
            if c == UInt8(ascii: "]") { break }
            throw JSONError(.unexpectedCharacter(c), at: pos - 1)
        }
        depth -= 1
        return .array(elements)
    }

    mutating func parseObject() throws(JSONError) -> JSONValue {
        try enter()
        pos += 1  // {
        var keys: [String] = []
        var values: [JSONValue] = []
        var index: [String: Int]? = nil  // built lazily for large objects (duplicate detection)
        skipWhitespace()
        if pos < bytes.count, bytes[pos] == UInt8(ascii: "}") {
            pos += 1
            depth -= 1
            return .object(JSONObject())
        }
        while true {
            skipWhitespace()
            guard pos < bytes.count else { throw JSONError(.unexpectedEnd, at: pos) }
            guard bytes[pos] == UInt8(ascii: "\"") else { throw JSONError(.unexpectedCharacter(bytes[pos]), at: pos) }
            let key = try parseString()
            skipWhitespace()
            guard pos < bytes.count else { throw JSONError(.unexpectedEnd, at: pos) }
            guard bytes[pos] == UInt8(ascii: ":") else { throw JSONError(.unexpectedCharacter(bytes[pos]), at: pos) }
            pos += 1
            skipWhitespace()
            let value = try parseValue()
            // Duplicate keys: like JavaScript's JSON.parse, last value wins at the first position.
            let existing: Int?
            if let idx = index {
                existing = idx[key]
            } else if keys.count < 16 {
                existing = keys.firstIndex(of: key)
            } else {
                var idx = [String: Int](minimumCapacity: keys.count * 2)
                for (i, k) in keys.enumerated() { idx[k] = i }
                index = idx
                existing = idx[key]
            }
            if let e = existing {
                values[e] = value
            } else {
                index?[key] = keys.count
                keys.append(key)
                values.append(value)
            }
            skipWhitespace()
            guard pos < bytes.count else { throw JSONError(.unexpectedEnd, at: pos) }
            let c = bytes[pos]
            pos += 1
            if c == UInt8(ascii: ",") { continue }
            if c == UInt8(ascii: "}") { break }
            throw JSONError(.unexpectedCharacter(c), at: pos - 1)
        }
        depth -= 1
        return .object(JSONObject(uncheckedKeys: keys, values: values))
    }

    @inline(__always)
    static func isDigit(_ c: UInt8) -> Bool { c &- UInt8(ascii: "0") < 10 }

    mutating func parseNumber() throws(JSONError) -> JSONValue {
        let start = pos
        var negative = false
        if bytes[pos] == UInt8(ascii: "-") {
            negative = true
            pos += 1
        }
        guard pos < bytes.count else { throw JSONError(.unexpectedEnd, at: pos) }
        guard Self.isDigit(bytes[pos]) else { throw JSONError(.invalidNumber, at: pos) }
        let intStart = pos
        if bytes[pos] == UInt8(ascii: "0") {
            pos += 1
            if pos < bytes.count, Self.isDigit(bytes[pos]) { throw JSONError(.invalidNumber, at: pos) }  // leading zero
        } else {
            while pos < bytes.count, Self.isDigit(bytes[pos]) { pos += 1 }
        }
        let intEnd = pos
        var integral = true
        if pos < bytes.count, bytes[pos] == UInt8(ascii: ".") {
            integral = false
            pos += 1
            guard pos < bytes.count, Self.isDigit(bytes[pos]) else { throw JSONError(.invalidNumber, at: pos) }
            while pos < bytes.count, Self.isDigit(bytes[pos]) { pos += 1 }
        }
        if pos < bytes.count, bytes[pos] == UInt8(ascii: "e") || bytes[pos] == UInt8(ascii: "E") {
            integral = false
            pos += 1
            if pos < bytes.count, bytes[pos] == UInt8(ascii: "+") || bytes[pos] == UInt8(ascii: "-") { pos += 1 }
            guard pos < bytes.count, Self.isDigit(bytes[pos]) else { throw JSONError(.invalidNumber, at: pos) }
            while pos < bytes.count, Self.isDigit(bytes[pos]) { pos += 1 }
        }
        if integral && intEnd - intStart <= 19 {
            // Accumulate negatively so Int64.min fits.
            var acc: Int64 = 0
            var overflow = false
            for i in intStart..<intEnd {
                let d = Int64(bytes[i] &- UInt8(ascii: "0"))
                let (m, o1) = acc.multipliedReportingOverflow(by: 10)
                let (s, o2) = m.subtractingReportingOverflow(d)
                if o1 || o2 { overflow = true; break }
                acc = s
            }
            if !overflow {
                if negative { return .int(acc) }
                if acc != Int64.min { return .int(-acc) }
            }
        }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<pos]), as: UTF8.self)
        guard let d = Double(text), d.isFinite else { throw JSONError(.numberOutOfRange, at: start) }
        return .double(d)
    }

    @inline(__always)
    static func hexValue(_ c: UInt8) -> UInt32? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return UInt32(c - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return UInt32(c - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return UInt32(c - UInt8(ascii: "A") + 10)
        default: return nil
        }
    }

    /// Reads 4 hex digits at `pos`.
    mutating func readHex4() throws(JSONError) -> UInt32 {
        guard pos + 4 <= bytes.count else { throw JSONError(.unexpectedEnd, at: bytes.count) }
        var v: UInt32 = 0
        for i in 0..<4 {
            guard let h = Self.hexValue(bytes[pos + i]) else { throw JSONError(.invalidUnicodeEscape, at: pos + i) }
            v = v << 4 | h
        }
        pos += 4
        return v
    }

    static func appendScalar(_ s: UInt32, to out: inout [UInt8]) {
        switch s {
        case 0..<0x80:
            out.append(UInt8(s))
        case 0x80..<0x800:
            out.append(UInt8(0xC0 | (s >> 6)))
            out.append(UInt8(0x80 | (s & 0x3F)))
        case 0x800..<0x10000:
            out.append(UInt8(0xE0 | (s >> 12)))
            out.append(UInt8(0x80 | ((s >> 6) & 0x3F)))
            out.append(UInt8(0x80 | (s & 0x3F)))
        default:
            out.append(UInt8(0xF0 | (s >> 18)))
            out.append(UInt8(0x80 | ((s >> 12) & 0x3F)))
            out.append(UInt8(0x80 | ((s >> 6) & 0x3F)))
            out.append(UInt8(0x80 | (s & 0x3F)))
        }
    }

    /// Parses a string; `pos` is at the opening quote.
    mutating func parseString() throws(JSONError) -> String {
        let open = pos
        pos += 1
        let start = pos
        var rawNonASCII = false
        // Fast path: no escapes.
        while pos < bytes.count {
            let c = bytes[pos]
            if c == UInt8(ascii: "\"") {
                let slice = UnsafeRawBufferPointer(rebasing: bytes[start..<pos])
                if rawNonASCII, !UTF8Validator.validate(slice) { throw JSONError(.invalidUTF8, at: open) }
                pos += 1
                return String(decoding: slice, as: UTF8.self)
            }
            if c == UInt8(ascii: "\\") { break }
            if c < 0x20 { throw JSONError(.controlCharacterInString, at: pos) }
            if c >= 0x80 { rawNonASCII = true }
            pos += 1
        }
        guard pos < bytes.count else { throw JSONError(.unexpectedEnd, at: pos) }
        // Slow path: escapes present.
        var out: [UInt8] = []
        out.reserveCapacity(pos - start + 16)
        out.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[start..<pos]))
        while true {
            guard pos < bytes.count else { throw JSONError(.unexpectedEnd, at: pos) }
            let c = bytes[pos]
            if c == UInt8(ascii: "\"") {
                pos += 1
                break
            }
            if c < 0x20 { throw JSONError(.controlCharacterInString, at: pos) }
            if c != UInt8(ascii: "\\") {
                if c >= 0x80 { rawNonASCII = true }
                out.append(c)
                pos += 1
                continue
            }
            pos += 1
            guard pos < bytes.count else { throw JSONError(.unexpectedEnd, at: pos) }
            let e = bytes[pos]
            pos += 1
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                let escStart = pos - 2
                let u = try readHex4()
                if u >= 0xD800 && u < 0xDC00 {
                    // High surrogate: need \uDC00-\uDFFF next.
                    if pos + 6 <= bytes.count, bytes[pos] == UInt8(ascii: "\\"), bytes[pos + 1] == UInt8(ascii: "u") {
                        let save = pos
                        pos += 2
                        let low = try readHex4()
                        if low >= 0xDC00 && low < 0xE000 {
                            Self.appendScalar(0x10000 + ((u - 0xD800) << 10) + (low - 0xDC00), to: &out)
                            continue
                        }
                        pos = save  // not a low surrogate: re-read it as its own escape
                    }
                    if options.loneSurrogates == .reject { throw JSONError(.loneSurrogate, at: escStart) }
                    Self.appendScalar(0xFFFD, to: &out)
                } else if u >= 0xDC00 && u < 0xE000 {
                    if options.loneSurrogates == .reject { throw JSONError(.loneSurrogate, at: escStart) }
                    Self.appendScalar(0xFFFD, to: &out)
                } else {
                    Self.appendScalar(u, to: &out)
                }
            default:
                throw JSONError(.invalidEscape, at: pos - 2)
            }
        }
        if rawNonASCII {
            let valid = out.withUnsafeBytes { UTF8Validator.validate($0) }
            if !valid { throw JSONError(.invalidUTF8, at: open) }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
