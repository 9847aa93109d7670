// MessagePack decoder for messages read from Redis, which anyone with access to the Redis server
// can publish: every length is checked against the bytes left before anything is allocated,
// nesting is bounded (the decoder recurses), and every failure is a thrown value, never a trap.

/// Why a MessagePack message could not be decoded (`offset`: where, in bytes from the start).
public enum MsgPackDecodingError: Error, Sendable, Hashable {
    /// The message ends inside a value.
    case truncated(offset: Int)
    /// `0xc1`, the one byte the format never uses.
    case reservedByte(offset: Int)
    /// Arrays and maps nested deeper than `MsgPackDecoder.Limits.maxDepth`.
    case tooDeep(offset: Int)
    /// An array, map, string, binary or extension longer than the limit, or than the bytes left.
    case tooLong(offset: Int)
    /// Bytes after the value (notepack.io refuses them too).
    case trailingBytes(count: Int)
}

public struct MsgPackDecoder: Sendable {
    public struct Limits: Sendable, Hashable {
        /// Arrays and maps nested at most this deep.
        public var maxDepth: Int
        /// Elements of one array or pairs of one map at most (besides the bytes-left check).
        public var maxContainerCount: Int

        public init(maxDepth: Int = 64, maxContainerCount: Int = 1 << 20) {
            self.maxDepth = maxDepth
            self.maxContainerCount = maxContainerCount
        }
    }

    public let limits: Limits

    public init(limits: Limits = Limits()) { self.limits = limits }

    /// Decodes exactly one value filling `bytes`.
    public func decode(_ bytes: [UInt8]) throws(MsgPackDecodingError) -> MsgPackValue {
        // withUnsafeBytes rethrows untyped errors: carry the typed one out as a result.
        let result = bytes.withUnsafeBytes { buffer in Result { () throws(MsgPackDecodingError) in try decode(buffer) }
        }
        return try result.get()
    }

    /// Decodes exactly one value filling `buffer`.
    public func decode(_ buffer: UnsafeRawBufferPointer) throws(MsgPackDecodingError) -> MsgPackValue {
        var reader = Reader(buffer: buffer, limits: limits)
        let value = try reader.value(depth: 0)
        if reader.offset != buffer.count { throw .trailingBytes(count: buffer.count - reader.offset) }
        return value
    }

    private struct Reader {
        let buffer: UnsafeRawBufferPointer
        let limits: Limits
        var offset = 0

        init(buffer: UnsafeRawBufferPointer, limits: Limits) {
            self.buffer = buffer
            self.limits = limits
        }

        var remaining: Int { buffer.count - offset }

        mutating func byte() throws(MsgPackDecodingError) -> UInt8 {
            guard offset < buffer.count else { throw .truncated(offset: offset) }
            defer { offset += 1 }
            return buffer[offset]
        }

        mutating func bigEndian(_ count: Int) throws(MsgPackDecodingError) -> UInt64 {
            guard remaining >= count else { throw .truncated(offset: offset) }
            var value: UInt64 = 0
            for i in 0..<count { value = value << 8 | UInt64(buffer[offset + i]) }
            offset += count
            return value
        }

        mutating func bytes(_ count: Int) throws(MsgPackDecodingError) -> [UInt8] {
            guard count <= remaining else { throw .tooLong(offset: offset) }
            defer { offset += count }
            return Array(UnsafeRawBufferPointer(rebasing: buffer[offset..<offset + count]))
        }

        mutating func string(_ count: Int) throws(MsgPackDecodingError) -> MsgPackValue {
            guard count <= remaining else { throw .tooLong(offset: offset) }
            defer { offset += count }
            return .string(
                String(decoding: UnsafeRawBufferPointer(rebasing: buffer[offset..<offset + count]), as: UTF8.self))
        }

        /// Each element takes at least one byte, each pair two: a count beyond that is a lie that
        /// must not size an allocation.
        mutating func array(_ count: Int, depth: Int, at start: Int) throws(MsgPackDecodingError) -> MsgPackValue {
            guard depth < limits.maxDepth else { throw .tooDeep(offset: start) }
            guard count <= remaining, count <= limits.maxContainerCount else { throw .tooLong(offset: offset) }
            var elements: [MsgPackValue] = []
            elements.reserveCapacity(count)
            for _ in 0..<count { elements.append(try value(depth: depth + 1)) }
            return .array(elements)
        }

        mutating func map(_ count: Int, depth: Int, at start: Int) throws(MsgPackDecodingError) -> MsgPackValue {
            guard depth < limits.maxDepth else { throw .tooDeep(offset: start) }
            guard count <= remaining / 2, count <= limits.maxContainerCount else { throw .tooLong(offset: offset) }
            var pairs: [MsgPackPair] = []
            pairs.reserveCapacity(count)
            for _ in 0..<count {
                let key = try value(depth: depth + 1)
                pairs.append(MsgPackPair(key, try value(depth: depth + 1)))
            }
            return .map(pairs)
        }

        mutating func ext(_ count: Int) throws(MsgPackDecodingError) -> MsgPackValue {
            let type = Int8(bitPattern: try byte())
            return .ext(type: type, data: try bytes(count))
        }

        mutating func value(depth: Int) throws(MsgPackDecodingError) -> MsgPackValue {
            let start = offset
            let prefix = try byte()
            switch prefix {
            case 0x00...0x7f: return .uint(UInt64(prefix))
            case 0x80...0x8f: return try map(Int(prefix & 0x0f), depth: depth, at: start)
            case 0x90...0x9f: return try array(Int(prefix & 0x0f), depth: depth, at: start)
            case 0xa0...0xbf: return try string(Int(prefix & 0x1f))
            case 0xc0: return .nil
            case 0xc1: throw .reservedByte(offset: start)
            case 0xc2: return .bool(false)
            case 0xc3: return .bool(true)
            case 0xc4: return .binary(try bytes(Int(try bigEndian(1))))
            case 0xc5: return .binary(try bytes(Int(try bigEndian(2))))
            case 0xc6: return .binary(try bytes(Int(try bigEndian(4))))
            case 0xc7: return try ext(Int(try bigEndian(1)))
            case 0xc8: return try ext(Int(try bigEndian(2)))
            case 0xc9: return try ext(Int(try bigEndian(4)))
            case 0xca: return .float(Float(bitPattern: UInt32(try bigEndian(4))))
            case 0xcb: return .double(Double(bitPattern: try bigEndian(8)))
            case 0xcc: return .uint(try bigEndian(1))
            case 0xcd: return .uint(try bigEndian(2))
            case 0xce: return .uint(try bigEndian(4))
            case 0xcf: return .uint(try bigEndian(8))
            case 0xd0: return .int(Int64(Int8(truncatingIfNeeded: try bigEndian(1))))
            case 0xd1: return .int(Int64(Int16(truncatingIfNeeded: try bigEndian(2))))
            case 0xd2: return .int(Int64(Int32(truncatingIfNeeded: try bigEndian(4))))
            case 0xd3: return .int(Int64(bitPattern: try bigEndian(8)))
            case 0xd4: return try ext(1)
            case 0xd5: return try ext(2)
            case 0xd6: return try ext(4)
            case 0xd7: return try ext(8)
            case 0xd8: return try ext(16)
            case 0xd9: return try string(Int(try bigEndian(1)))
            case 0xda: return try string(Int(try bigEndian(2)))
            case 0xdb: return try string(Int(try bigEndian(4)))
            case 0xdc: return try array(Int(try bigEndian(2)), depth: depth, at: start)
            case 0xdd: return try array(Int(try bigEndian(4)), depth: depth, at: start)
            case 0xde: return try map(Int(try bigEndian(2)), depth: depth, at: start)
            case 0xdf: return try map(Int(try bigEndian(4)), depth: depth, at: start)
            default: return .int(Int64(Int8(bitPattern: prefix)))  // 0xe0...0xff: negative fixint
            }
        }
    }
}
