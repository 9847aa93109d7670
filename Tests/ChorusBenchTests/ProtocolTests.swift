import Testing
@testable import ChorusBenchCore

@Suite struct PayloadTests {
    @Test(arguments: [Payload.minimumSupportedSize, 64, 100, 1024, 65_536])
    func encodesExactlyTheRequestedSize(size: Int) throws {
        let t: UInt64 = 12_345_678_901_234_567
        let bytes = Payload.encode(time: t, seq: 4_000_000_000, publisher: 99_999, size: size)
        #expect(bytes.count == size)
        #expect(bytes.allSatisfy { $0 >= 0x20 && $0 < 0x7F })
        #expect(bytes.first == UInt8(ascii: "{") && bytes.last == UInt8(ascii: "}"))
        let f = try #require(bytes.withUnsafeBytes { Payload.decode($0) })
        #expect(f == Payload.Fields(time: t, seq: 4_000_000_000, publisher: 99_999))
    }

    @Test func sixtyFourBytesLooksLikeJSON() {
        let bytes = Payload.encode(time: 1_000_000, seq: 7, publisher: 0, size: 64)
        let s = String(decoding: bytes, as: UTF8.self)
        #expect(s.hasPrefix(#"{"t":1000000,"s":7,"p":0,"pad":""#))
        #expect(s.hasSuffix(#""}"#))
        #expect(s.utf8.count == 64)
    }

    @Test func rejectsForeignPayloads() {
        #expect(Array("hello world, not ours at all".utf8).withUnsafeBytes { Payload.decode($0) } == nil)
    }
}
