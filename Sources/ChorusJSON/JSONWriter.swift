// JSON.stringify-compatible serializer, with the exact output size computed beforehand so that
// a packet is written into one buffer of the right capacity.

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
