import Testing

@testable import ChorusWebSocket

@Suite struct MaskingTests {
    static func reference(_ bytes: [UInt8], key: UInt32, phase: Int) -> [UInt8] {
        let k = [
            UInt8(truncatingIfNeeded: key), UInt8(truncatingIfNeeded: key >> 8),
            UInt8(truncatingIfNeeded: key >> 16), UInt8(truncatingIfNeeded: key >> 24),
        ]
        return bytes.enumerated().map { $0.element ^ k[($0.offset + phase) % 4] }
    }

    @Test func unmaskMatchesByteByByteReferenceAtEveryPhaseAndLength0To40() {
        let key: UInt32 = 0x8F3A_1C55
        for phase in 0..<4 {
            for length in 0...40 {
                // Offset 1..3 into the array so the word loads are unaligned too.
                for start in 0..<4 {
                    let original = (0..<(length + start)).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
                    var buf = original
                    let newPhase = buf.withUnsafeMutableBytes {
                        WebSocketMasking.unmask(
                            UnsafeMutableRawBufferPointer(rebasing: $0[start...]), key: key, phase: phase)
                    }
                    #expect(newPhase == (phase + length) % 4)
                    #expect(Array(buf[..<start]) == Array(original[..<start]))
                    #expect(Array(buf[start...]) == Self.reference(Array(original[start...]), key: key, phase: phase))
                }
            }
        }
    }

    @Test func unmaskingInPiecesEqualsUnmaskingWhole() {
        let original = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        var whole = original
        _ = whole.withUnsafeMutableBytes { WebSocketMasking.unmask($0, key: rfcKey) }
        for cut in [1, 3, 5, 8, 13, 333, 999] {
            var pieces = original
            pieces.withUnsafeMutableBytes { p in
                let ph = WebSocketMasking.unmask(UnsafeMutableRawBufferPointer(rebasing: p[..<cut]), key: rfcKey)
                _ = WebSocketMasking.unmask(UnsafeMutableRawBufferPointer(rebasing: p[cut...]), key: rfcKey, phase: ph)
            }
            #expect(pieces == whole)
        }
    }

    @Test func maskingTwiceIsIdentity() {
        let original = (0..<77).map { UInt8($0) }
        var buf = original
        buf.withUnsafeMutableBytes {
            _ = WebSocketMasking.unmask($0, key: 0xDEAD_BEEF, phase: 2)
            _ = WebSocketMasking.unmask($0, key: 0xDEAD_BEEF, phase: 2)
        }
        #expect(buf == original)
    }

    @Test func rfc5_7_maskKeyBytesApplyInWireOrder() {
        var buf: [UInt8] = [0x7f, 0x9f, 0x4d, 0x51, 0x58]
        _ = buf.withUnsafeMutableBytes { WebSocketMasking.unmask($0, key: rfcKey) }
        #expect(buf == Array("Hello".utf8))
    }
}
