import Testing

@testable import ChorusMsgPack

func hexBytes(_ hex: String) -> [UInt8] {
    var out: [UInt8] = []
    var it = hex.utf8.makeIterator()
    func nibble(_ c: UInt8) -> UInt8 { c <= 57 ? c - 48 : (c | 0x20) - 87 }
    while let hi = it.next(), let lo = it.next() { out.append(nibble(hi) << 4 | nibble(lo)) }
    return out
}

func fnv1a64(_ bytes: [UInt8]) -> UInt64 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
    return h
}

@Suite("MessagePack codec")
struct MsgPackTests {
    let decoder = MsgPackDecoder()

    @Test("encodes as Python msgpack / notepack.io do", arguments: msgPackFixtures)
    func encodesLikeTheReference(_ fixture: MsgPackFixture) {
        let bytes = MsgPackEncoder.encode(fixture.value)
        #expect(bytes.count == fixture.count)
        #expect(Array(bytes.prefix(hexBytes(fixture.hex).count)) == hexBytes(fixture.hex))
        #expect(fnv1a64(bytes) == fixture.fnv1a)
    }

    @Test("decodes the reference bytes", arguments: msgPackFixtures)
    func decodesTheReference(_ fixture: MsgPackFixture) throws {
        let bytes = MsgPackEncoder.encode(fixture.value)
        #expect(fnv1a64(bytes) == fixture.fnv1a)
        #expect(try decoder.decode(bytes) == fixture.value)
    }

    @Test func integersAreEqualWhateverTheirForm() throws {
        // `d0 05` (int 8) and `05` (fixint) are the same number; re-encoding picks the short form.
        let signed = try decoder.decode([0xd0, 0x05])
        #expect(signed == .uint(5))
        #expect(MsgPackEncoder.encode(signed) == [0x05])
        #expect(MsgPackEncoder.encode(.int(200)) == [0xcc, 200])
    }

    @Test func float32IsReadAndKept() throws {
        let value = try decoder.decode([0xca, 0x3f, 0xc0, 0x00, 0x00])
        #expect(value == .float(1.5))
        #expect(MsgPackEncoder.encode(value) == [0xca, 0x3f, 0xc0, 0x00, 0x00])
    }

    @Test func undefinedIsNotepacksExtension() {
        #expect(MsgPackEncoder.encode(.undefined) == [0xd4, 0x00, 0x00])
        #expect(MsgPackValue.undefined.isUndefined)
    }

    @Test func mapLookupByStringKey() throws {
        let value = try decoder.decode(hexBytes("82a474797065 02 a36e7370 a12f".replacingSpaces))
        #expect(value["type"] == .uint(2))
        #expect(value["nsp"] == .string("/"))
        #expect(value["data"] == nil)
    }

    @Test func invalidUTF8IsReplacedNotRefused() throws {
        #expect(try decoder.decode([0xa2, 0xff, 0x41]) == .string("\u{FFFD}A"))
    }

    // MARK: Hostile input

    @Test func emptyInputIsTruncated() {
        #expect(throws: MsgPackDecodingError.truncated(offset: 0)) { try decoder.decode([]) }
    }

    @Test func reservedByteIsRefused() {
        #expect(throws: MsgPackDecodingError.reservedByte(offset: 1)) { try decoder.decode([0x91, 0xc1]) }
    }

    @Test func trailingBytesAreRefused() {
        #expect(throws: MsgPackDecodingError.trailingBytes(count: 2)) { try decoder.decode([0xc0, 0xc0, 0xc0]) }
    }

    @Test func truncatedNumberIsRefused() {
        #expect(throws: MsgPackDecodingError.truncated(offset: 1)) { try decoder.decode([0xcd, 0x01]) }
        #expect(throws: MsgPackDecodingError.truncated(offset: 1)) { try decoder.decode([0xcb, 0, 0, 0]) }
    }

    @Test func lengthsBeyondTheInputAllocateNothing() {
        // A 4-billion-element array, string, binary, map and extension in a few bytes.
        #expect(throws: MsgPackDecodingError.tooLong(offset: 5)) { try decoder.decode([0xdd, 0xff, 0xff, 0xff, 0xff]) }
        #expect(throws: MsgPackDecodingError.tooLong(offset: 5)) {
            try decoder.decode([0xdb, 0xff, 0xff, 0xff, 0xff, 0x41])
        }
        #expect(throws: MsgPackDecodingError.tooLong(offset: 5)) { try decoder.decode([0xc6, 0xff, 0xff, 0xff, 0xff]) }
        #expect(throws: MsgPackDecodingError.tooLong(offset: 5)) { try decoder.decode([0xdf, 0x80, 0, 0, 0, 1, 2]) }
        #expect(throws: MsgPackDecodingError.tooLong(offset: 6)) {
            try decoder.decode([0xc9, 0xff, 0xff, 0xff, 0xff, 0x01])
        }
        // A map of one pair needs at least two bytes.
        #expect(throws: MsgPackDecodingError.tooLong(offset: 1)) { try decoder.decode([0x81, 0xc0]) }
    }

    @Test func nestingAtTheDepthLimit() throws {
        let limited = MsgPackDecoder(limits: .init(maxDepth: 3))
        // Three arrays deep is allowed; a fourth is not.
        #expect(try limited.decode([0x91, 0x91, 0x91, 0xc0]) == [[[nil]]])
        #expect(throws: MsgPackDecodingError.tooDeep(offset: 3)) { try limited.decode([0x91, 0x91, 0x91, 0x91, 0xc0]) }
        // The default limit holds against a deep stack of one-byte arrays (would overflow the stack).
        let deep = [UInt8](repeating: 0x91, count: 100_000) + [0xc0]
        #expect(throws: MsgPackDecodingError.tooDeep(offset: 64)) { try decoder.decode(deep) }
    }

    @Test func containerCountAtTheLimit() throws {
        let limited = MsgPackDecoder(limits: .init(maxContainerCount: 3))
        #expect(try limited.decode([0x93, 1, 2, 3]) == [1, 2, 3])
        #expect(throws: MsgPackDecodingError.tooLong(offset: 1)) { try limited.decode([0x94, 1, 2, 3, 4]) }
    }

    @Test func everySingleAndDoubleBytePrefixDecodesOrThrows() {
        // Never a trap: every one- and two-byte input is a value or an error.
        for a in 0...255 {
            _ = try? decoder.decode([UInt8(a)])
            for b in 0...255 { _ = try? decoder.decode([UInt8(a), UInt8(b)]) }
        }
    }

    @Test func roundTripsRandomValues() throws {
        var rng = SplitMix(seed: 12)
        for _ in 0..<300 {
            let value = randomValue(&rng, depth: 0)
            let bytes = MsgPackEncoder.encode(value)
            #expect(try decoder.decode(bytes) == value)
        }
    }
}

struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}

func randomValue(_ rng: inout SplitMix, depth: Int) -> MsgPackValue {
    switch rng.below(depth > 3 ? 8 : 11) {
    case 0: return .nil
    case 1: return .bool(rng.below(2) == 0)
    case 2: return .int(-Int64(rng.next() >> UInt64(1 + rng.below(63))) - 1)
    case 3: return .uint(rng.next() >> UInt64(rng.below(64)))
    case 4: return .double(Double(bitPattern: rng.next()))
    case 5: return .string(String(decoding: (0..<rng.below(40)).map { _ in UInt8(32 + rng.below(90)) }, as: UTF8.self))
    case 6: return .binary((0..<rng.below(300)).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
    case 7:
        return .ext(
            type: Int8(truncatingIfNeeded: rng.next()),
            data: (0..<rng.below(20)).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
    case 8: return .array((0..<rng.below(20)).map { _ in randomValue(&rng, depth: depth + 1) })
    case 9:
        return .map(
            (0..<rng.below(18)).map { _ in
                MsgPackPair(randomValue(&rng, depth: depth + 1), randomValue(&rng, depth: depth + 1))
            })
    default: return .float(Float(bitPattern: UInt32(truncatingIfNeeded: rng.next())))
    }
}

extension String {
    var replacingSpaces: String { String(filter { $0 != " " }) }
}
