import ChorusJSON
import ChorusSocketIO
import Crypto
import Foundation
import Testing

@testable import ChorusApp

/// A validly signed HS256 token over raw claims text (nesting JSONValue cannot express cheaply).
func hs256(rawClaims: String, secret: String = "s3cret") -> String {
    let input = base64url(#"{"alg":"HS256","typ":"JWT"}"#) + "." + base64url(rawClaims)
    let mac = HMAC<SHA256>.authenticationCode(for: Array(input.utf8), using: SymmetricKey(data: Array(secret.utf8)))
    return input + "." + base64url(Array(mac))
}

/// Token size and claim nesting are bounded before jwt-kit decodes anything: a validly signed
/// token nested 500 deep used to cost about 2 s of decoding on the verifier's task.
@Suite("JWT bounds")
struct JWTBoundsTests {
    let verifier = JWTVerifier(key: .hs256(Array("s3cret".utf8)))

    func failure(_ token: String, _ v: JWTVerifier? = nil) async -> JWTVerifier.Failure? {
        do { _ = try await (v ?? verifier).verify(token, now: 1_700_000_000); return nil } catch { return error }
    }

    static func nested(_ depth: Int) -> String {
        #"{"sub":"u","deep":"# + String(repeating: "[", count: depth - 1) + String(repeating: "]", count: depth - 1)
            + "}"
    }

    @Test("nesting up to --jwt-max-depth is decoded, one level more is refused")
    func depthAtTheLimit() async {
        #expect(JWTVerifier.defaultMaxNestingDepth == 16)
        #expect(await failure(hs256(rawClaims: Self.nested(16))) == nil)
        #expect(await failure(hs256(rawClaims: Self.nested(17))) == .tooDeep)
        var shallow = verifier
        shallow.maxNestingDepth = 2
        #expect(await failure(hs256(["sub": "u", "projects": ["p1"]]), shallow) == nil)
        #expect(await failure(hs256(["sub": "u", "projects": [["p1"]]]), shallow) == .tooDeep)
    }

    @Test("a validly signed token nested 500 deep is refused fast")
    func deepTokenRefusedFast() async {
        let token = hs256(rawClaims: Self.nested(500))
        let clock = ContinuousClock()
        var result: JWTVerifier.Failure?
        let elapsed = await clock.measure { result = await failure(token) }
        #expect(result == .tooDeep)
        #expect(elapsed < .milliseconds(50), "took \(elapsed)")
    }

    @Test("brackets inside strings and escaped quotes do not count as nesting")
    func stringsAreSkipped() async {
        let claims = #"{"sub":"u","name":"[[[[[[[[[[[[[[[[[[[[{{{{{{{{{{{{ \"[[[[[[[[[[[[[[[[[[[[[[["}"#
        #expect(await failure(hs256(rawClaims: claims)) == nil)
        #expect(JWTVerifier.jsonNestingDepth(Array(#"{"a":"\\",  "b":[[1]]}"#.utf8), limit: 16) == 3)
    }

    @Test("a header nested too deep is refused as well")
    func deepHeader() async {
        let header =
            #"{"alg":"HS256","x":"# + String(repeating: "[", count: 20) + String(repeating: "]", count: 20) + "}"
        let input = base64url(header) + "." + base64url(#"{"sub":"u"}"#)
        let mac = HMAC<SHA256>.authenticationCode(
            for: Array(input.utf8), using: SymmetricKey(data: Array("s3cret".utf8)))
        #expect(await failure(input + "." + base64url(Array(mac))) == .tooDeep)
    }

    @Test("a token of exactly --jwt-max-size bytes is verified, one byte more is refused")
    func sizeAtTheLimit() async {
        #expect(JWTVerifier.defaultMaxTokenSize == 8192)
        let token = hs256(["sub": "u", "pad": .string(String(repeating: "x", count: 700))])
        var v = verifier
        v.maxTokenSize = token.utf8.count
        #expect(await failure(token, v) == nil)
        v.maxTokenSize = token.utf8.count - 1
        #expect(await failure(token, v) == .tooLarge)
        let big = hs256(["sub": "u", "pad": .string(String(repeating: "x", count: 7000))])
        #expect(big.utf8.count > 8192)
        #expect(await failure(big) == .tooLarge)
    }
}
