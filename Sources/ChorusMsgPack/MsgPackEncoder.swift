// MessagePack encoder writing the same bytes as notepack.io (the parser of socket.io-redis-adapter
// 8.x and socket.io-redis-emitter 5.x) for the same value:
// - integers in the shortest form for their value: 0...127 positive fixint, then uint 8/16/32/64
//   for the non-negative ones; -32...-1 negative fixint, then int 8/16/32/64 for the negative ones
//   (notepack never writes a signed form for a non-negative number);
// - floating point always as float 64 (`cb`), never float 32: notepack writes every non-integral
//   JavaScript number so (a `.float` value, which notepack cannot produce, stays `ca`);
// - str: fixstr below 32 bytes, then str 8/16/32 (str 8 exists since the 2013 spec; notepack and
//   Python's msgpack with `use_bin_type=True` both use it);
// - bin 8/16/32 for Buffers; fixarray/array 16/32; fixmap/map 16/32;
// - ext: fixext 1/2/4/8/16 for those sizes, ext 8/16/32 otherwise (`undefined` is `d4 00 00`).
// Python's `msgpack.packb(..., use_bin_type=True)` makes the same choices, which is what the
// byte-for-byte fixtures (Tests/ChorusMsgPackTests/Fixtures) check.

public enum MsgPackEncoder {
    /// The encoding of `value`.
    public static func encode(_ value: MsgPackValue) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64)
        encode(value, into: &out)
        return out
    }

    /// Appends the encoding of `value` to `out`.
    public static func encode(_ value: MsgPackValue, into out: inout [UInt8]) {
        switch value {
        case .nil: out.append(0xc0)
        case .bool(let b): out.append(b ? 0xc3 : 0xc2)
        case .int(let i):
            if i >= 0 { writeUnsigned(UInt64(i), into: &out) } else { writeNegative(i, into: &out) }
        case .uint(let u): writeUnsigned(u, into: &out)
        case .float(let f):
            out.append(0xca)
            writeBigEndian(UInt64(f.bitPattern), bytes: 4, into: &out)
        case .double(let d):
            out.append(0xcb)
            writeBigEndian(d.bitPattern, bytes: 8, into: &out)
        case .string(let s):
            var s = s
            s.withUTF8 { utf8 in
                writeHeader(
                    utf8.count, fix: 0xa0, fixLimit: 32, eight: 0xd9, sixteen: 0xda, thirtyTwo: 0xdb, into: &out)
                out.append(contentsOf: utf8)
            }
        case .binary(let bytes):
            writeHeader(bytes.count, fix: nil, fixLimit: 0, eight: 0xc4, sixteen: 0xc5, thirtyTwo: 0xc6, into: &out)
            out.append(contentsOf: bytes)
        case .array(let elements):
            writeHeader(elements.count, fix: 0x90, fixLimit: 16, eight: nil, sixteen: 0xdc, thirtyTwo: 0xdd, into: &out)
            for element in elements { encode(element, into: &out) }
        case .map(let pairs):
            writeHeader(pairs.count, fix: 0x80, fixLimit: 16, eight: nil, sixteen: 0xde, thirtyTwo: 0xdf, into: &out)
            for pair in pairs {
                encode(pair.key, into: &out)
                encode(pair.value, into: &out)
            }
        case .ext(let type, let data):
            switch data.count {
            case 1: out.append(0xd4)
            case 2: out.append(0xd5)
            case 4: out.append(0xd6)
            case 8: out.append(0xd7)
            case 16: out.append(0xd8)
            default:
                writeHeader(data.count, fix: nil, fixLimit: 0, eight: 0xc7, sixteen: 0xc8, thirtyTwo: 0xc9, into: &out)
            }
            out.append(UInt8(bitPattern: type))
            out.append(contentsOf: data)
        }
    }

    private static func writeUnsigned(_ u: UInt64, into out: inout [UInt8]) {
        switch u {
        case 0..<0x80: out.append(UInt8(u))
        case 0x80..<0x100: out.append(0xcc); out.append(UInt8(u))
        case 0x100..<0x1_0000: out.append(0xcd); writeBigEndian(u, bytes: 2, into: &out)
        case 0x1_0000..<0x1_0000_0000: out.append(0xce); writeBigEndian(u, bytes: 4, into: &out)
        default: out.append(0xcf); writeBigEndian(u, bytes: 8, into: &out)
        }
    }

    private static func writeNegative(_ i: Int64, into out: inout [UInt8]) {
        let bits = UInt64(bitPattern: i)
        switch i {
        case -32..<0: out.append(UInt8(truncatingIfNeeded: bits))
        case -0x80 ..< -32: out.append(0xd0); out.append(UInt8(truncatingIfNeeded: bits))
        case -0x8000 ..< -0x80: out.append(0xd1); writeBigEndian(bits, bytes: 2, into: &out)
        case -0x8000_0000 ..< -0x8000: out.append(0xd2); writeBigEndian(bits, bytes: 4, into: &out)
        default: out.append(0xd3); writeBigEndian(bits, bytes: 8, into: &out)
        }
    }

    /// A length header: the fix form below `fixLimit` if there is one, then 8, 16 or 32 bits.
    /// Lengths beyond 32 bits cannot be written in MessagePack; no value Chorus builds comes near
    /// (Redis itself caps a message at 512 MB), so they are clamped rather than trapped on.
    private static func writeHeader(
        _ count: Int, fix: UInt8?, fixLimit: Int, eight: UInt8?, sixteen: UInt8, thirtyTwo: UInt8,
        into out: inout [UInt8]
    ) {
        if let fix, count < fixLimit {
            out.append(fix | UInt8(count))
        } else if let eight, count < 0x100 {
            out.append(eight)
            out.append(UInt8(count))
        } else if count < 0x1_0000 {
            out.append(sixteen)
            writeBigEndian(UInt64(count), bytes: 2, into: &out)
        } else {
            out.append(thirtyTwo)
            writeBigEndian(UInt64(min(count, Int(UInt32.max))), bytes: 4, into: &out)
        }
    }

    @inline(__always)
    private static func writeBigEndian(_ value: UInt64, bytes: Int, into out: inout [UInt8]) {
        var shift = (bytes - 1) * 8
        while shift >= 0 {
            out.append(UInt8(truncatingIfNeeded: value >> UInt64(shift)))
            shift -= 8
        }
    }
}
