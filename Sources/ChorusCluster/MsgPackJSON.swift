// JSON values (Socket.IO event arguments) to and from MessagePack the way notepack.io maps
// JavaScript values, so a packet read from Redis and re-emitted to a Socket.IO client is what a
// Node node would send, and a packet Chorus publishes is what a Node node would have published.
import ChorusJSON
import ChorusMsgPack
import ChorusSocketIO

extension MsgPackValue {
    /// notepack.io writes a JavaScript number that is integral (and finite) as an integer, the
    /// shortest form, and any other as float 64; `-0` is integral and becomes `0`. Buffers are bin.
    public init(json: JSONValue) {
        switch json {
        case .null: self = .nil
        case .bool(let b): self = .bool(b)
        case .int(let i): self = i < 0 ? .int(i) : .uint(UInt64(i))
        case .double(let d):
            if d.isFinite, d.rounded(.down) == d, let i = Int64(exactly: d) {
                self = i < 0 ? .int(i) : .uint(UInt64(i))
            } else if d.isFinite, d.rounded(.down) == d, d > 0, let u = UInt64(exactly: d) {
                self = .uint(u)
            } else {
                self = .double(d)
            }
        case .string(let s): self = .string(s)
        case .binary(let b): self = .binary(b)
        case .array(let a): self = .array(a.map(MsgPackValue.init(json:)))
        case .object(let o): self = .map(o.map { MsgPackPair(.string($0.key), MsgPackValue(json: $0.value)) })
        }
    }

    /// The JSON value Node would have after `notepack.decode` and JSON serialisation by
    /// socket.io-parser: `undefined` (notepack's `d4 00 00`) is dropped from objects and becomes
    /// `null` in arrays; bin becomes a binary attachment; integer map keys become their decimal
    /// text (JavaScript object keys are strings); other extensions, and keys that are neither
    /// strings nor integers, have no JSON form (null / dropped).
    public var json: JSONValue {
        switch self {
        case .nil: return .null
        case .bool(let b): return .bool(b)
        case .int(let i): return .int(i)
        case .uint(let u): return Int64(exactly: u).map(JSONValue.int) ?? .double(Double(u))
        case .float(let f): return .double(Double(f))
        case .double(let d): return .double(d)
        case .string(let s): return .string(s)
        case .binary(let b): return .binary(b)
        case .array(let a): return .array(a.map(\.json))
        case .map(let pairs):
            // A repeated key keeps its first position and its last value, as in JavaScript; the
            // positions are looked up in a table so that a hostile map stays linear.
            var keys: [String] = []
            var values: [JSONValue] = []
            var position: [String: Int] = [:]
            for pair in pairs where !pair.value.isUndefined {
                guard let key = pair.key.objectKey else { continue }
                if let i = position[key] {
                    values[i] = pair.value.json
                } else {
                    position[key] = keys.count
                    keys.append(key)
                    values.append(pair.value.json)
                }
            }
            var object = JSONObject(minimumCapacity: keys.count)
            for (key, value) in zip(keys, values) { object.appendUnchecked(key: key, value: value) }
            return .object(object)
        case .ext: return .null
        }
    }

    /// A map key as JavaScript would name the property.
    var objectKey: String? {
        switch self {
        case .string(let s): return s
        case .int(let i): return String(i)
        case .uint(let u): return String(u)
        default: return nil
        }
    }
}
