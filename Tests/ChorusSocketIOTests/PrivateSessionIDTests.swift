import ChorusTestSupport
import Testing

@testable import ChorusSocketIO

/// Recovery's private session id is kept as 15 bytes when it has the base64id shape, as text otherwise.
/// 16 bytes with its optional (a socket's field).
@Suite struct PrivateSessionIDTests {
    @Test func itIsSixteenBytesWithItsOptional() {
        #expect(MemoryLayout<PrivateSessionID?>.size == 16)
    }

    @Test func generatedSecretsArePackedAndComeBackUnchanged() {
        var rng = SplitMix64(seed: 7)
        for _ in 0..<500 {
            let secret = EngineIOSessionID.generateSecret(using: &rng)
            let id = PrivateSessionID(secret)
            guard case .packed = id else {
                Issue.record("not packed: \(secret)")
                return
            }
            #expect(id.string == secret)
        }
        for edge in ["AAAAAAAAAAAAAAAAAAAA", "____________________", "oSO0OpakMV_3jnilAAAA", "-AAAAAAAAAAAAAAAAAA_"] {
            #expect(PrivateSessionID(edge).string == edge)
            guard case .packed = PrivateSessionID(edge) else {
                Issue.record("not packed: \(edge)")
                return
            }
        }
    }

    @Test(arguments: [
        "", "short", "AAAAAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAAAAAAA", "AAAAAAAAAA+AAAAAAAAA", "AAAAAAAAAA/AAAAAAAAA",
        "AAAAAAAAAA=AAAAAAAAA", "ééééééééééééééééééé", "a node's pid of another shape",
    ])
    func anyOtherShapeIsKeptAsText(_ text: String) {
        guard case .text(let kept) = PrivateSessionID(text) else {
            Issue.record("packed: \(text)")
            return
        }
        #expect(kept.value == text)
        #expect(PrivateSessionID(text).string == text)
    }
}
