import ChorusTestSupport
import ChorusUTF8
import Testing

@testable import ChorusWebSocket

@Suite struct UTF8ValidatorTests {
    func valid(_ b: [UInt8]) -> Bool { withBytes(b) { UTF8Validator.validate($0) } }

    @Test func asciiAndMultiByteCharactersAreValid() {
        #expect(valid([]))
        #expect(valid(Array("Hello, world! 0123456789 abcdefghijklmnop".utf8)))
        #expect(valid([0xC2, 0x80]))  // U+0080, smallest 2-byte
        #expect(valid([0xDF, 0xBF]))  // U+07FF
        #expect(valid([0xE0, 0xA0, 0x80]))  // U+0800, smallest 3-byte
        #expect(valid([0xED, 0x9F, 0xBF]))  // U+D7FF, just below the surrogates
        #expect(valid([0xEE, 0x80, 0x80]))  // U+E000, just above them
        #expect(valid([0xEF, 0xBF, 0xBF]))  // U+FFFF
        #expect(valid([0xF0, 0x90, 0x80, 0x80]))  // U+10000, smallest 4-byte
        #expect(valid([0xF4, 0x8F, 0xBF, 0xBF]))  // U+10FFFF, the last code point
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
        var rng = SplitMix64(seed: 42)
        let interesting: [UInt8] = [
            0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF,
            0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF,
        ]
        for _ in 0..<5000 {
            let n = Int(rng.next() % 12)
            let bytes = (0..<n).map { _ in interesting[Int(rng.next() % UInt64(interesting.count))] }
            let expected = String(validating: bytes, as: UTF8.self) != nil
            #expect(valid(bytes) == expected, "\(bytes)")
        }
    }

    /// Random text from all sequence lengths, with the code points next to each boundary of
    /// Table 3-7 (overlong limits, surrogates, U+10FFFF) overrepresented.
    func randomValidText(_ rng: inout SplitMix64, maxCharacters: Int) -> [UInt8] {
        let edges: [UInt32] = [
            0x00, 0x7F, 0x80, 0x7FF, 0x800, 0xFFF, 0x1000, 0xD7FF, 0xE000, 0xFFFD, 0xFFFF,
            0x10000, 0x3FFFF, 0x40000, 0xFFFFF, 0x100000, 0x10FFFF,
        ]
        let ranges: [ClosedRange<UInt32>] = [
            0x20...0x7E, 0x80...0x7FF, 0x800...0xD7FF, 0xE000...0xFFFF, 0x10000...0x10FFFF,
        ]
        var s = String.UnicodeScalarView()
        for _ in 0..<Int(rng.next() % UInt64(maxCharacters + 1)) {
            let pick = rng.next() % 10
            let value: UInt32
            if pick < 2 {
                value = edges[Int(rng.next() % UInt64(edges.count))]
            } else if pick < 5 {
                value = UInt32(0x20 + rng.next() % 0x5F)  // runs of ASCII
            } else {
                let r = ranges[Int(rng.next() % UInt64(ranges.count))]
                value = r.lowerBound + UInt32(rng.next() % UInt64(r.upperBound - r.lowerBound + 1))
            }
            s.append(Unicode.Scalar(value)!)
        }
        return Array(String(s).utf8)
    }

    /// Feeds `bytes` in chunks ending at `cuts`; returns the verdict and the index of the chunk on
    /// which `feed` first returned false.
    func feedChunks(_ bytes: [UInt8], cuts: [Int]) -> (valid: Bool, failedChunk: Int?) {
        var v = UTF8Validator()
        var start = 0
        for (n, end) in (cuts + [bytes.count]).enumerated() {
            if !withBytes(Array(bytes[start..<end]), { v.feed($0) }) { return (false, n) }
            start = end
        }
        return (v.isComplete, nil)
    }

    @Test func randomInputSplitAtRandomChunkBoundariesAgreesWithOneShotValidation() {
        var rng = SplitMix64(seed: 7)
        let interesting: [UInt8] = [
            0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF,
            0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF,
        ]
        var invalidCount = 0
        for round in 0..<4000 {
            var bytes = randomValidText(&rng, maxCharacters: round % 4 == 0 ? 200 : 24)
            if round % 2 == 1 && !bytes.isEmpty {
                // Corrupt it: overwrite, insert or drop bytes (the result may still be valid).
                for _ in 0...(rng.next() % 3) {
                    let at = Int(rng.next() % UInt64(bytes.count))
                    switch rng.next() % 3 {
                    case 0: bytes[at] = interesting[Int(rng.next() % UInt64(interesting.count))]
                    case 1: bytes.insert(interesting[Int(rng.next() % UInt64(interesting.count))], at: at)
                    default: bytes.remove(at: at)
                    }
                    if bytes.isEmpty { break }
                }
            }
            let expected = String(validating: bytes, as: UTF8.self) != nil
            if !expected { invalidCount += 1 }
            #expect(valid(bytes) == expected, "\(bytes)")

            // Byte at a time: the position of the first byte after which no valid continuation exists.
            let perByte = feedChunks(bytes, cuts: bytes.indices.dropFirst().map { $0 })
            #expect(perByte.valid == expected, "\(bytes)")

            // Random chunk boundaries (0 to 6 cuts, empty chunks allowed).
            for _ in 0..<8 {
                let cuts = (0..<Int(rng.next() % 7)).map { _ in Int(rng.next() % UInt64(bytes.count + 1)) }.sorted()
                let chunked = feedChunks(bytes, cuts: cuts)
                #expect(chunked.valid == expected, "\(bytes) cut at \(cuts)")
                // Fail fast: the chunk that fails is the one holding the first offending byte.
                if let badByte = perByte.failedChunk {
                    let chunkEnds = cuts + [bytes.count]
                    let expectedChunk = chunkEnds.firstIndex { $0 > badByte }
                    #expect(chunked.failedChunk == expectedChunk, "\(bytes) cut at \(cuts)")
                } else {
                    #expect(chunked.failedChunk == nil, "\(bytes) cut at \(cuts)")
                }
            }
        }
        #expect(invalidCount > 1000)
    }
}
