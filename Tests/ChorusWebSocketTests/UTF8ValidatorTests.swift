import Testing
@testable import ChorusWebSocket

@Suite struct UTF8ValidatorTests {
    func valid(_ b: [UInt8]) -> Bool { withBytes(b) { UTF8Validator.validate($0) } }

    @Test func asciiAndMultiByteCharactersAreValid() {
        #expect(valid([]))
        #expect(valid(Array("Hello, world! 0123456789 abcdefghijklmnop".utf8)))
        #expect(valid([0xC2, 0x80]))               // U+0080, smallest 2-byte
        #expect(valid([0xDF, 0xBF]))               // U+07FF
        #expect(valid([0xE0, 0xA0, 0x80]))         // U+0800, smallest 3-byte
        #expect(valid([0xED, 0x9F, 0xBF]))         // U+D7FF, just below the surrogates
        #expect(valid([0xEE, 0x80, 0x80]))         // U+E000, just above them
        #expect(valid([0xEF, 0xBF, 0xBF]))         // U+FFFF
        #expect(valid([0xF0, 0x90, 0x80, 0x80]))   // U+10000, smallest 4-byte
        #expect(valid([0xF4, 0x8F, 0xBF, 0xBF]))   // U+10FFFF, the last code point
        #expect(valid(Array("κόσμε 日本語 🎉".utf8)))
    }

    @Test func overlongEncodingsAreInvalid() {
        #expect(!valid([0xC0, 0x80]))
        #expect(!valid([0xC1, 0xBF]))
        #expect(!valid([0xE0, 0x80, 0x80]))
        #expect(!valid([0xE0, 0x9F, 0xBF]))
        #expect(!valid([0xF0, 0x80, 0x80, 0x80]))
        #expect(!valid([0xF0, 0x8F, 0xBF, 0xBF]))
    }

    @Test func utf16SurrogatesAreInvalid() {
        #expect(!valid([0xED, 0xA0, 0x80]))
        #expect(!valid([0xED, 0xBF, 0xBF]))
    }

    @Test func codePointsAboveU10FFFFAreInvalid() {
        #expect(!valid([0xF4, 0x90, 0x80, 0x80]))
        #expect(!valid([0xF5, 0x80, 0x80, 0x80]))
        #expect(!valid([0xFF]))
        #expect(!valid([0xFE]))
    }

    @Test func strayContinuationBytesAreInvalid() {
        #expect(!valid([0x80]))
        #expect(!valid([0x41, 0xBF]))
        #expect(!valid([0xC2, 0x80, 0x80]))
    }

    @Test func truncatedSequenceAtTheEndIsAValidPrefixButNotComplete() {
        for t in [[0xC2], [0xE2, 0x82], [0xF0, 0x9F, 0x8E]] as [[UInt8]] {
            var v = UTF8Validator()
            #expect(withBytes(t) { v.feed($0) })
            #expect(!v.isComplete)
            #expect(!valid(t))
        }
    }

    @Test func truncatedSequenceFollowedByANewCharacterFailsOnThatByte() {
        var v = UTF8Validator()
        #expect(withBytes([0xE2, 0x82]) { v.feed($0) })
        #expect(!withBytes([0x41]) { v.feed($0) })
        #expect(!v.isComplete)
        // Once failed, stays failed until reset.
        #expect(!withBytes([0x41]) { v.feed($0) })
        v.reset()
        #expect(withBytes([0x41]) { v.feed($0) })
        #expect(v.isComplete)
    }

    @Test func splitAcrossChunksAtEveryOffsetGivesTheSameAnswer() {
        let text = Array("aé€𝄞κόσμε🎉 ascii run of text 12345678 ".utf8)
        for cut1 in 0...text.count {
            for cut2 in cut1...text.count {
                var v = UTF8Validator()
                var ok = withBytes(Array(text[..<cut1])) { v.feed($0) }
                ok = ok && withBytes(Array(text[cut1..<cut2])) { v.feed($0) }
                ok = ok && withBytes(Array(text[cut2...])) { v.feed($0) }
                #expect(ok && v.isComplete)
            }
        }
    }

    @Test func failsFastOnTheChunkThatHoldsTheFirstInvalidByte() {
        // Autobahn 6.3.x: "κόσμε" followed by a surrogate, then more text.
        let bytes: [UInt8] = Array("κόσμε".utf8) + [0xED, 0xA0, 0x80] + Array("edited".utf8)
        let bad = Array("κόσμε".utf8).count + 1  // the A0 after ED is the first byte that cannot continue
        for chunkSize in 1...bytes.count {
            var v = UTF8Validator()
            var failedAt: Int? = nil
            var i = 0
            while i < bytes.count {
                let end = min(i + chunkSize, bytes.count)
                if !withBytes(Array(bytes[i..<end]), { v.feed($0) }) { failedAt = end; break }
                i = end
            }
            let expectedChunkEnd = min(((bad / chunkSize) + 1) * chunkSize, bytes.count)
            #expect(failedAt == expectedChunkEnd, "chunk size \(chunkSize)")
        }
    }

    @Test func invalidByteAtEveryPositionOfALongAsciiRunIsFound() {
        for pos in 0..<40 {
            var b = [UInt8](repeating: 0x61, count: 40)
            b[pos] = 0x80
            #expect(!valid(b), "position \(pos)")
            b[pos] = 0xC3
            if pos + 1 < 40 { b[pos + 1] = 0xA9; #expect(valid(b), "position \(pos)") }
        }
    }

    @Test func agreesWithTheStandardLibraryOnRandomInput() {
        var rng = SplitMix(seed: 42)
        let interesting: [UInt8] = [0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF,
                                    0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF]
        for _ in 0..<5000 {
            let n = Int(rng.next() % 12)
            let bytes = (0..<n).map { _ in interesting[Int(rng.next() % UInt64(interesting.count))] }
            let expected = String(validating: bytes, as: UTF8.self) != nil
            #expect(valid(bytes) == expected, "\(bytes)")
        }
    }
}

struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
