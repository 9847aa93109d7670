// JSON value, strict RFC 8259 parser and JSON.stringify-compatible serializer.
// Pure Swift, no Foundation.
//
// Binary design choice: binary data is a case of `JSONValue` (`.binary([UInt8])`), not a
// separate type. Socket.IO lets a Buffer appear anywhere inside event arguments; keeping it
// in the same tree means the application builds one value, the Socket.IO encoder swaps each
// `.binary` for `{"_placeholder":true,"num":N}` during serialization (no intermediate copy
// of the tree) and the decoder swaps placeholders back. Plain JSON serialization (no
// attachment channel) renders `.binary` like Node's `Buffer.prototype.toJSON`:
// `{"type":"Buffer","data":[1,2,3]}`.

/// An ordered JSON object: keys keep insertion order (the order clients will see).
/// Equality is order-sensitive. Lookups are linear (objects on the wire are small).
public struct JSONObject: Sendable, Hashable, RandomAccessCollection, ExpressibleByDictionaryLiteral {
    public typealias Element = (key: String, value: JSONValue)
    public typealias Index = Int

    public private(set) var keys: [String]
    public private(set) var values: [JSONValue]

    public init() {
        keys = []
        values = []
    }

    public init(minimumCapacity: Int) {
        keys = []
        values = []
        keys.reserveCapacity(minimumCapacity)
        values.reserveCapacity(minimumCapacity)
    }

    /// Builds from pairs; a duplicated key keeps its first position and its last value.
    public init(_ pairs: some Sequence<(String, JSONValue)>) {
        self.init()
        for (k, v) in pairs { self[k] = v }
    }

    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self.init(elements)
    }

    /// Internal: caller guarantees keys are unique.
    init(uncheckedKeys keys: [String], values: [JSONValue]) {
        self.keys = keys
        self.values = values
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { keys.count }
    public subscript(position: Int) -> (key: String, value: JSONValue) {
        (keys[position], values[position])
    }

    public func index(forKey key: String) -> Int? {
        keys.firstIndex(of: key)
    }

    /// Get, replace in place, append (new key), or remove (assign nil).
    public subscript(key: String) -> JSONValue? {
        get {
            guard let i = index(forKey: key) else { return nil }
            return values[i]
        }
        set {
            if let i = index(forKey: key) {
                if let newValue {
                    values[i] = newValue
                } else {
                    keys.remove(at: i)
                    values.remove(at: i)
                }
            } else if let newValue {
                keys.append(key)
                values.append(newValue)
            }
        }
    }

    /// Appends without checking for duplicates (fast path when building from known keys).
    public mutating func appendUnchecked(key: String, value: JSONValue) {
        keys.append(key)
        values.append(value)
    }

    @discardableResult
    public mutating func removeValue(forKey key: String) -> JSONValue? {
        guard let i = index(forKey: key) else { return nil }
        keys.remove(at: i)
        return values.remove(at: i)
    }
}

/// A JSON value. Integers that fit `Int64` are `.int`; other numbers are `.double`.
/// Numeric equality is by value: `.int(1) == .double(1.0)`.
public enum JSONValue: Sendable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)
    /// Binary attachment (Socket.IO): serialized as a placeholder by the Socket.IO encoder.
    case binary([UInt8])
}

// MARK: - Equality / hashing (numeric by value)

extension JSONValue: Hashable {
    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case let (.bool(a), .bool(b)): return a == b
        case let (.int(a), .int(b)): return a == b
        case let (.double(a), .double(b)): return a == b
        case let (.int(a), .double(b)), let (.double(b), .int(a)): return Int64(exactly: b) == a
        case let (.string(a), .string(b)): return a == b
        case let (.array(a), .array(b)): return a == b
        case let (.object(a), .object(b)): return a == b
        case let (.binary(a), .binary(b)): return a == b
        default: return false
        }
    }

    public func hash(into hasher: inout Hasher) {
        switch self {
        case .null: hasher.combine(0 as UInt8)
        case .bool(let b): hasher.combine(1 as UInt8); hasher.combine(b)
        case .int(let i): hasher.combine(2 as UInt8); hasher.combine(i)
        case .double(let d):
            if let i = Int64(exactly: d) {
                hasher.combine(2 as UInt8); hasher.combine(i)
            } else {
                hasher.combine(3 as UInt8); hasher.combine(d)
            }
        case .string(let s): hasher.combine(4 as UInt8); hasher.combine(s)
        case .array(let a): hasher.combine(5 as UInt8); hasher.combine(a)
        case .object(let o): hasher.combine(6 as UInt8); hasher.combine(o)
        case .binary(let b): hasher.combine(7 as UInt8); hasher.combine(b)
        }
    }
}

// MARK: - Literals

extension JSONValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral,
    ExpressibleByDictionaryLiteral
{
    public init(nilLiteral: ()) { self = .null }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) { self = .object(JSONObject(elements)) }
}

// MARK: - Accessors

extension JSONValue {
    public init(_ value: Int) { self = .int(Int64(value)) }

    /// Object member lookup; nil when not an object or key missing.
    public subscript(key: String) -> JSONValue? {
        if case .object(let o) = self { return o[key] }
        return nil
    }

    /// Array element; nil when not an array or out of bounds.
    public subscript(index: Int) -> JSONValue? {
        if case .array(let a) = self, a.indices.contains(index) { return a[index] }
        return nil
    }

    public var isNull: Bool { if case .null = self { return true }; return false }
    public var boolValue: Bool? { if case .bool(let b) = self { return b }; return nil }
    public var stringValue: String? { if case .string(let s) = self { return s }; return nil }
    public var arrayValue: [JSONValue]? { if case .array(let a) = self { return a }; return nil }
    public var objectValue: JSONObject? { if case .object(let o) = self { return o }; return nil }
    public var binaryValue: [UInt8]? { if case .binary(let b) = self { return b }; return nil }

    /// Integer value of `.int`, or of an integral `.double` that fits.
    public var int64Value: Int64? {
        switch self {
        case .int(let i): return i
        case .double(let d): return Int64(exactly: d)
        default: return nil
        }
    }

    public var intValue: Int? { int64Value.flatMap { Int(exactly: $0) } }

    public var doubleValue: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: return nil
        }
    }

    /// True when a `.binary` appears anywhere in the tree.
    public var containsBinary: Bool {
        switch self {
        case .binary: return true
        case .array(let a): return a.contains { $0.containsBinary }
        case .object(let o): return o.values.contains { $0.containsBinary }
        default: return false
        }
    }
}

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
    /// Byte offset in the input where the problem was detected.
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
            what = (c >= 0x20 && c < 0x7F)
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
                if rawNonASCII, let bad = UTF8Validation.firstInvalid(slice) {
                    throw JSONError(.invalidUTF8, at: start + bad)
                }
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
            let bad: Int? = out.withUnsafeBytes { UTF8Validation.firstInvalid($0) }
            if bad != nil { throw JSONError(.invalidUTF8, at: open) }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

enum UTF8Validation {
    /// Offset of the first byte of an invalid sequence, or nil if `buf` is valid UTF-8.
    static func firstInvalid(_ buf: UnsafeRawBufferPointer) -> Int? {
        var i = 0
        let n = buf.count
        while i < n {
            let b0 = buf[i]
            if b0 < 0x80 {
                i += 1
                continue
            }
            @inline(__always) func cont(_ j: Int) -> Bool { j < n && buf[j] & 0xC0 == 0x80 }
            switch b0 {
            case 0xC2...0xDF:
                guard cont(i + 1) else { return i }
                i += 2
            case 0xE0...0xEF:
                guard i + 1 < n else { return i }
                let b1 = buf[i + 1]
                let ok1: Bool
                switch b0 {
                case 0xE0: ok1 = (0xA0...0xBF).contains(b1)
                case 0xED: ok1 = (0x80...0x9F).contains(b1)  // no surrogates
                default: ok1 = b1 & 0xC0 == 0x80
                }
                guard ok1, cont(i + 2) else { return i }
                i += 3
            case 0xF0...0xF4:
                guard i + 1 < n else { return i }
                let b1 = buf[i + 1]
                let ok1: Bool
                switch b0 {
                case 0xF0: ok1 = (0x90...0xBF).contains(b1)
                case 0xF4: ok1 = (0x80...0x8F).contains(b1)
                default: ok1 = b1 & 0xC0 == 0x80
                }
                guard ok1, cont(i + 2), cont(i + 3) else { return i }
                i += 4
            default:
                return i
            }
        }
        return nil
    }
}

// MARK: - Serializer

extension JSONValue {
    /// Appends the JSON text (JSON.stringify-compatible). `.binary` is written like Node's
    /// `Buffer.toJSON()`: `{"type":"Buffer","data":[...]}`.
    public func serialize(into out: inout [UInt8]) {
        var none: [[UInt8]]? = nil
        write(into: &out, attachments: &none)
    }

    /// Appends the JSON text, replacing each `.binary` by `{"_placeholder":true,"num":N}` and
    /// appending its bytes to `attachments` (N = index in `attachments`, depth-first order).
    public func serialize(into out: inout [UInt8], attachments: inout [[UInt8]]) {
        var a: [[UInt8]]? = attachments
        attachments = []  // keep a unique reference in `a`
        write(into: &out, attachments: &a)
        attachments = a!
    }

    /// JSON text as bytes.
    public var serialized: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(serializedCount)
        serialize(into: &out)
        return out
    }

    /// JSON text as a String.
    public var jsonString: String { String(decoding: serialized, as: UTF8.self) }

    /// Exact number of bytes `serialize(into:)` appends.
    public var serializedCount: Int {
        var n = 0
        var num = 0
        count(into: &n, placeholders: false, nextAttachment: &num)
        return n
    }

    /// Exact number of bytes `serialize(into:attachments:)` appends, given the number of
    /// attachments already collected.
    public func serializedCountWithPlaceholders(firstAttachment: Int = 0) -> Int {
        var n = 0
        var num = firstAttachment
        count(into: &n, placeholders: true, nextAttachment: &num)
        return n
    }

    func write(into out: inout [UInt8], attachments: inout [[UInt8]]?) {
        switch self {
        case .null: JSONWriter.appendASCII("null", to: &out)
        case .bool(let b): JSONWriter.appendASCII(b ? "true" : "false", to: &out)
        case .int(let i): JSONWriter.appendInt(i, to: &out)
        case .double(let d): JSONWriter.appendDouble(d, to: &out)
        case .string(let s): JSONWriter.appendString(s, to: &out)
        case .array(let a):
            out.append(UInt8(ascii: "["))
            var first = true
            for v in a {
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                v.write(into: &out, attachments: &attachments)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let o):
            out.append(UInt8(ascii: "{"))
            for i in 0..<o.keys.count {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                JSONWriter.appendString(o.keys[i], to: &out)
                out.append(UInt8(ascii: ":"))
                o.values[i].write(into: &out, attachments: &attachments)
            }
            out.append(UInt8(ascii: "}"))
        case .binary(let bytes):
            if attachments != nil {
                JSONWriter.appendASCII("{\"_placeholder\":true,\"num\":", to: &out)
                JSONWriter.appendInt(Int64(attachments!.count), to: &out)
                out.append(UInt8(ascii: "}"))
                attachments!.append(bytes)
            } else {
                JSONWriter.appendASCII("{\"type\":\"Buffer\",\"data\":[", to: &out)
                var first = true
                for b in bytes {
                    if !first { out.append(UInt8(ascii: ",")) }
                    first = false
                    JSONWriter.appendInt(Int64(b), to: &out)
                }
                JSONWriter.appendASCII("]}", to: &out)
            }
        }
    }

    func count(into n: inout Int, placeholders: Bool, nextAttachment: inout Int) {
        switch self {
        case .null: n += 4
        case .bool(let b): n += b ? 4 : 5
        case .int(let i): n += JSONWriter.intCount(i)
        case .double(let d): n += JSONWriter.doubleCount(d)
        case .string(let s): n += JSONWriter.stringCount(s)
        case .array(let a):
            n += 2 + max(0, a.count - 1)
            for v in a { v.count(into: &n, placeholders: placeholders, nextAttachment: &nextAttachment) }
        case .object(let o):
            n += 2 + max(0, o.count - 1) + o.count  // braces, commas, colons
            for i in 0..<o.keys.count {
                n += JSONWriter.stringCount(o.keys[i])
                o.values[i].count(into: &n, placeholders: placeholders, nextAttachment: &nextAttachment)
            }
        case .binary(let bytes):
            if placeholders {
                n += 27 + JSONWriter.intCount(Int64(nextAttachment)) + 1
                nextAttachment += 1
            } else {
                n += 25 + 2 + max(0, bytes.count - 1)
                for b in bytes { n += b < 10 ? 1 : (b < 100 ? 2 : 3) }
            }
        }
    }
}

extension JSONValue: CustomStringConvertible {
    public var description: String { jsonString }
}

enum JSONWriter {
    @inline(__always)
    static func appendASCII(_ s: StaticString, to out: inout [UInt8]) {
        out.append(contentsOf: UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }

    static func intCount(_ v: Int64) -> Int {
        var m = v.magnitude
        var n = v < 0 ? 2 : 1
        while m >= 10 {
            m /= 10
            n += 1
        }
        return n
    }

    static func appendInt(_ v: Int64, to out: inout [UInt8]) {
        if v >= 0 && v < 10 {
            out.append(UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: v))
            return
        }
        if v < 0 { out.append(UInt8(ascii: "-")) }
        var m = v.magnitude
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { tmp in
            var i = 20
            repeat {
                i -= 1
                tmp[i] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: m % 10)
                m /= 10
            } while m != 0
            out.append(contentsOf: UnsafeBufferPointer(rebasing: tmp[i..<20]))
        }
    }

    /// Integral doubles in Int64 range print like integers ("100", as JSON.stringify does);
    /// non-finite print as null (as JSON.stringify does); others use Swift's shortest
    /// round-trip `description` ("0.1", "1e-07", "1e+19"), all valid JSON.
    static func appendDouble(_ d: Double, to out: inout [UInt8]) {
        if let i = Int64(exactly: d) {
            appendInt(i, to: &out)
        } else if !d.isFinite {
            appendASCII("null", to: &out)
        } else {
            out.append(contentsOf: d.description.utf8)
        }
    }

    static func doubleCount(_ d: Double) -> Int {
        if let i = Int64(exactly: d) { return intCount(i) }
        if !d.isFinite { return 4 }
        return d.description.utf8.count
    }

    @inline(__always)
    static func needsEscape(_ c: UInt8) -> Bool { c < 0x20 || c == 0x22 || c == 0x5C }

    static func stringCount(_ s: String) -> Int {
        var n = 2
        for c in s.utf8 {
            if !needsEscape(c) {
                n += 1
            } else {
                switch c {
                case 0x22, 0x5C, 0x08, 0x0C, 0x0A, 0x0D, 0x09: n += 2
                default: n += 6
                }
            }
        }
        return n
    }

    static func appendString(_ s: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        let done: Void? = s.utf8.withContiguousStorageIfAvailable { appendEscaped($0, to: &out) }
        if done == nil {
            var copy = s
            copy.withUTF8 { appendEscaped($0, to: &out) }
        }
        out.append(UInt8(ascii: "\""))
    }

    static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    static func appendEscaped(_ p: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
        var runStart = 0
        var i = 0
        let n = p.count
        while i < n {
            let c = p[i]
            if !needsEscape(c) {
                i += 1
                continue
            }
            if runStart < i { out.append(contentsOf: UnsafeBufferPointer(rebasing: p[runStart..<i])) }
            out.append(UInt8(ascii: "\\"))
            switch c {
            case 0x22: out.append(UInt8(ascii: "\""))
            case 0x5C: out.append(UInt8(ascii: "\\"))
            case 0x08: out.append(UInt8(ascii: "b"))
            case 0x0C: out.append(UInt8(ascii: "f"))
            case 0x0A: out.append(UInt8(ascii: "n"))
            case 0x0D: out.append(UInt8(ascii: "r"))
            case 0x09: out.append(UInt8(ascii: "t"))
            default:
                out.append(UInt8(ascii: "u"))
                out.append(UInt8(ascii: "0"))
                out.append(UInt8(ascii: "0"))
                out.append(hex[Int(c >> 4)])
                out.append(hex[Int(c & 0xF)])
            }
            i += 1
            runStart = i
        }
        if runStart < n { out.append(contentsOf: UnsafeBufferPointer(rebasing: p[runStart..<n])) }
    }
}
