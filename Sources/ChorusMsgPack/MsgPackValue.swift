// A MessagePack value (https://github.com/msgpack/msgpack/blob/master/spec.md). Pure Swift, no
// Foundation, no I/O: the Redis adapter's broadcasts (`[uid, packet, opts]`) and its
// broadcast-with-ack requests are MessagePack, written by Node's `notepack.io`.
//
// Integers keep their signedness as decoded (`int` for the signed forms, `uint` for the unsigned
// ones) and `float`/`double` their width, so a decoded value says what was on the wire; the
// encoder picks the shortest form for the *value*, as notepack.io does (see MsgPackEncoder).

/// One MessagePack value. Maps keep their pairs in wire order (notepack writes an object's keys in
/// insertion order, and Socket.IO's `{type, data, nsp}` is read by position by nobody, but the
/// byte-for-byte fixtures are).
public enum MsgPackValue: Sendable, Hashable {
    case `nil`
    case bool(Bool)
    /// A signed integer (negative values, or a signed form on the wire).
    case int(Int64)
    /// An unsigned integer.
    case uint(UInt64)
    case float(Float)
    case double(Double)
    /// A UTF-8 string (invalid sequences are replaced by U+FFFD when decoding, as Node does).
    case string(String)
    case binary([UInt8])
    case array([MsgPackValue])
    /// Key/value pairs in order; keys may be any value (duplicates are kept).
    case map([MsgPackPair])
    /// An extension: notepack.io writes JavaScript `undefined` as `ext(type: 0, data: [0])`
    /// (`d4 00 00`) and a `Date` as an 8-byte type-0 extension.
    case ext(type: Int8, data: [UInt8])

    /// JavaScript's `undefined` as notepack.io writes it (`d4 00 00`).
    public static let undefined = MsgPackValue.ext(type: 0, data: [0])

    public static func == (lhs: MsgPackValue, rhs: MsgPackValue) -> Bool {
        switch (lhs, rhs) {
        case (.nil, .nil): return true
        case let (.bool(a), .bool(b)): return a == b
        case let (.int(a), .int(b)): return a == b
        case let (.uint(a), .uint(b)): return a == b
        // The same integer in a signed and an unsigned form is the same value.
        case let (.int(a), .uint(b)), let (.uint(b), .int(a)): return a >= 0 && UInt64(a) == b
        // Bit patterns, so that a NaN read back equals itself (round-trip checks).
        case let (.float(a), .float(b)): return a.bitPattern == b.bitPattern
        case let (.double(a), .double(b)): return a.bitPattern == b.bitPattern
        case let (.string(a), .string(b)): return a == b
        case let (.binary(a), .binary(b)): return a == b
        case let (.array(a), .array(b)): return a == b
        case let (.map(a), .map(b)): return a == b
        case let (.ext(t1, d1), .ext(t2, d2)): return t1 == t2 && d1 == d2
        default: return false
        }
    }

    public func hash(into hasher: inout Hasher) {
        switch self {
        case .nil: hasher.combine(0 as UInt8)
        case .bool(let b): hasher.combine(1 as UInt8); hasher.combine(b)
        // Integers hash alike whatever their form (they compare equal across forms).
        case .int(let i):
            if i >= 0 {
                hasher.combine(2 as UInt8); hasher.combine(UInt64(i))
            } else {
                hasher.combine(3 as UInt8); hasher.combine(i)
            }
        case .uint(let u): hasher.combine(2 as UInt8); hasher.combine(u)
        case .float(let f): hasher.combine(4 as UInt8); hasher.combine(f.bitPattern)
        case .double(let d): hasher.combine(5 as UInt8); hasher.combine(d.bitPattern)
        case .string(let s): hasher.combine(6 as UInt8); hasher.combine(s)
        case .binary(let b): hasher.combine(7 as UInt8); hasher.combine(b)
        case .array(let a): hasher.combine(8 as UInt8); hasher.combine(a)
        case .map(let m): hasher.combine(9 as UInt8); hasher.combine(m)
        case .ext(let t, let d): hasher.combine(10 as UInt8); hasher.combine(t); hasher.combine(d)
        }
    }

    // MARK: Reading

    public var isNil: Bool { if case .nil = self { return true }; return false }
    public var isUndefined: Bool { self == .undefined }
    public var stringValue: String? { if case .string(let s) = self { return s }; return nil }
    public var boolValue: Bool? { if case .bool(let b) = self { return b }; return nil }
    public var arrayValue: [MsgPackValue]? { if case .array(let a) = self { return a }; return nil }
    public var mapValue: [MsgPackPair]? { if case .map(let m) = self { return m }; return nil }
    public var binaryValue: [UInt8]? { if case .binary(let b) = self { return b }; return nil }

    /// The integer, whatever its form, if it fits an `Int64` (a `double` only if integral).
    public var int64Value: Int64? {
        switch self {
        case .int(let i): return i
        case .uint(let u): return Int64(exactly: u)
        case .double(let d): return Int64(exactly: d)
        case .float(let f): return Int64(exactly: f)
        default: return nil
        }
    }

    /// The value under the string key `key` of a map (the first such pair).
    public subscript(key: String) -> MsgPackValue? {
        guard case .map(let pairs) = self else { return nil }
        for pair in pairs where pair.key.stringValue == key { return pair.value }
        return nil
    }
}

/// One entry of a MessagePack map.
public struct MsgPackPair: Sendable, Hashable {
    public var key: MsgPackValue
    public var value: MsgPackValue

    public init(_ key: MsgPackValue, _ value: MsgPackValue) {
        self.key = key
        self.value = value
    }
}

extension MsgPackValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral
{
    public init(nilLiteral: ()) { self = .nil }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int64) { self = value < 0 ? .int(value) : .uint(UInt64(value)) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: MsgPackValue...) { self = .array(elements) }

    /// A map with string keys, in the given order.
    public static func object(_ pairs: KeyValuePairs<String, MsgPackValue>) -> MsgPackValue {
        .map(pairs.map { MsgPackPair(.string($0.key), $0.value) })
    }
}
