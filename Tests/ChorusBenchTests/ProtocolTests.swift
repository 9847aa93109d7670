import Foundation
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

    @Test func eightDigitsAtOnceMatchDigitByDigit() {
        var seed: UInt64 = 12345
        var samples = ["00000000", "99999999", "12345678", "87654321", "00000001", "10000000"]
        for _ in 0..<2000 {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            samples.append(String(format: "%08llu", (seed >> 20) % 100_000_000))
        }
        for text in samples {
            let value = Array(text.utf8).withUnsafeBytes { Payload.eightDigits($0.baseAddress!) }
            #expect(value == UInt64(text), "\(text)")
        }
        // One non-digit anywhere, including the neighbours of '0' and '9' and high bytes.
        for position in 0..<8 {
            for bad: UInt8 in [0x2F, 0x3A, 0x00, 0x20, 0x7F, 0x80, 0xB9, 0xC6, 0xFF] {
                var bytes = Array("31415926".utf8)
                bytes[position] = bad
                #expect(bytes.withUnsafeBytes { Payload.eightDigits($0.baseAddress!) } == nil, "\(bad) at \(position)")
            }
        }
    }

    @Test(arguments: [0, 7, 12_345_678, 123_456_789, 99_999_999_999_999_999, UInt64.max / 2])
    func decodesNumbersOfEveryLength(time: UInt64) throws {
        let bytes = Payload.encode(time: time, seq: time % 10_000_000_000, publisher: 12, size: 100)
        let f = try #require(bytes.withUnsafeBytes { Payload.decode($0) })
        #expect(f == Payload.Fields(time: time, seq: time % 10_000_000_000, publisher: 12))
    }

    @Test func rejectsForeignPayloads() {
        #expect(Array("hello world, not ours at all".utf8).withUnsafeBytes { Payload.decode($0) } == nil)
    }
}
