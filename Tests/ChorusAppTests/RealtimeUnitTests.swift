import ChorusJSON
import ChorusSocketIO
import Crypto
import Testing
import _CryptoExtras

@testable import ChorusApp

/// Base64url without padding (RFC 7515 §2): to build tokens by hand, independently of jwt-kit.
func base64url(_ bytes: some Collection<UInt8>) -> String {
    let table = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
    var out: [UInt8] = []
    let b = Array(bytes)
    var i = 0
    while i < b.count {
        let n =
            UInt32(b[i]) << 16 | UInt32(i + 1 < b.count ? b[i + 1] : 0) << 8 | UInt32(i + 2 < b.count ? b[i + 2] : 0)
        let chars = min(4, (b.count - i) * 4 / 3 + ((b.count - i) % 3 == 0 ? 0 : 1))
        for k in 0..<chars { out.append(table[Int(n >> UInt32(18 - 6 * k) & 63)]) }
        i += 3
    }
    return String(decoding: out, as: UTF8.self)
}

func base64url(_ s: String) -> String { base64url(Array(s.utf8)) }

func hs256(_ claims: JSONValue, secret: String = "s3cret", alg: String = "HS256") -> String {
    let input = base64url(#"{"alg":"\#(alg)","typ":"JWT"}"#) + "." + base64url(claims.serialized)
    let mac = HMAC<SHA256>.authenticationCode(for: Array(input.utf8), using: SymmetricKey(data: Array(secret.utf8)))
    return input + "." + base64url(Array(mac))
}

/// An RS256 token signed with `key` (PKCS #1 v1.5, SHA-256).
func signRS256(_ claims: JSONValue, key: _RSA.Signing.PrivateKey, alg: String = "RS256") throws -> String {
    let input = base64url(#"{"alg":"\#(alg)","typ":"JWT"}"#) + "." + base64url(claims.serialized)
    let sig = try key.signature(for: SHA256.hash(data: Array(input.utf8)), padding: .insecurePKCS1v1_5)
    return input + "." + base64url(sig.rawRepresentation)
}

@Suite("JWT verification (jwt-kit)")
struct JWTTests {
    let verifier = JWTVerifier(key: .hs256(Array("s3cret".utf8)))
    let now = 1_700_000_000.0

    func failure(_ token: String, _ v: JWTVerifier? = nil) async -> JWTVerifier.Failure? {
        do { _ = try await (v ?? verifier).verify(token, now: now); return nil } catch { return error }
    }

    @Test func validHS256() async throws {
        let claims = try await verifier.verify(
            hs256(["sub": "u1", "exp": 1_700_000_100, "projects": ["p1"]]), now: now)
        #expect(claims["sub"] == "u1")
        let user = try #require(AuthenticatedUser(claims: claims))
        #expect(user.id == "u1" && user.projects == .ids(["p1"]) && user.conversations == .ids([]))
        let all = try await verifier.verify(
            hs256(["sub": 7, "projects": "*", "conversations": ["c1", 2, "*"]]), now: now)
        let u = try #require(AuthenticatedUser(claims: all))
        #expect(u.id == "7" && u.projects == .all && u.conversations == .all)
    }

    @Test("secrets of any length: short ones (zero-padded for jwt-kit, same MACs), 32 bytes, over a hash block")
    func secretLengths() async throws {
        #expect(verifier.hasWeakSecret)
        for length in [1, 31, 32, 33, 64, 65, 100] {
            let secret = String((0..<length).map { Character(Unicode.Scalar(UInt8(97 + $0 % 26))) })
            let v = JWTVerifier(key: .hs256(Array(secret.utf8)))
            #expect(v.hasWeakSecret == (length < 32))
            #expect(await failure(hs256(["sub": "u"], secret: secret), v) == nil, "secret of \(length) bytes")
            #expect(await failure(hs256(["sub": "u"], secret: secret + "x"), v) == .badSignature)
            if length < 32 {
                // The zero padding must not let a padded secret through as a different key... it
                // cannot: HMAC pads short keys with zeros itself, so both are the same key.
                #expect(await failure(hs256(["sub": "u"], secret: secret + "\0"), v) == nil)
            }
        }
    }

    @Test func refusals() async {
        #expect(await failure(hs256(["sub": "u", "exp": 1_699_999_999])) == .expired)
        #expect(await failure(hs256(["sub": "u", "exp": 1_700_000_000])) == .expired)
        #expect(await failure(hs256(["sub": "u", "nbf": 1_700_000_100])) == .notYetValid)
        #expect(await failure(hs256(["sub": "u", "nbf": 1_699_999_000])) == nil)
        #expect(await failure(hs256(["sub": "u"], secret: "other")) == .badSignature)
        #expect(await failure(hs256(["sub": "u"], alg: "none")) == .algorithmMismatch)
        #expect(await failure(hs256(["sub": "u"], alg: "RS256")) == .algorithmMismatch)
        #expect(await failure(hs256(["sub": "u"], alg: "HS512")) == .algorithmMismatch)
        // alg none with an empty signature, as attackers send it.
        let none = base64url(#"{"alg":"none"}"#) + "." + base64url((["sub": "u"] as JSONValue).serialized) + "."
        #expect(await failure(none) == .algorithmMismatch)
        #expect(await failure(hs256(["exp": 1_800_000_000])) == .missingSubject)
        #expect(await failure(hs256(["sub": ""])) == .missingSubject)
        #expect(await failure(hs256(["sub": true])) == .missingSubject)
        #expect(await failure(hs256(["sub": "u", "exp": "soon"])) == .malformed)
        #expect(await failure("a.b") == .malformed)
        #expect(await failure("!!.??.**") == .malformed)
        #expect(await failure("") == .malformed)
        var strict = verifier
        strict.issuer = "auth.example"
        strict.audience = "chat"
        #expect(await failure(hs256(["sub": "u", "iss": "evil", "aud": "chat"]), strict) == .wrongIssuer)
        #expect(await failure(hs256(["sub": "u", "aud": "chat"]), strict) == .wrongIssuer)
        #expect(await failure(hs256(["sub": "u", "iss": "auth.example", "aud": "other"]), strict) == .wrongAudience)
        #expect(await failure(hs256(["sub": "u", "iss": "auth.example"]), strict) == .wrongAudience)
        #expect(await failure(hs256(["sub": "u", "iss": "auth.example", "aud": ["x", "chat"]]), strict) == nil)
        var lenient = verifier
        lenient.leeway = 30
        #expect(await failure(hs256(["sub": "u", "exp": 1_699_999_990]), lenient) == nil)
        #expect(await failure(hs256(["sub": "u", "exp": 1_699_999_960]), lenient) == .expired)
        #expect(await failure(hs256(["sub": "u", "nbf": 1_700_000_020]), lenient) == nil)
        #expect(await failure(hs256(["sub": "u", "nbf": 1_700_000_040]), lenient) == .notYetValid)
    }

    @Test func es256() async throws {
        let key = P256.Signing.PrivateKey()
        let verifier = try JWTVerifier(key: JWTVerifier.publicKey(pem: key.publicKey.pemRepresentation))
        let input = base64url(#"{"alg":"ES256"}"#) + "." + base64url((["sub": 42] as JSONValue).serialized)
        let sig = try key.signature(for: Array(input.utf8)).rawRepresentation
        let claims = try await verifier.verify(input + "." + base64url(sig))
        #expect(AuthenticatedUser(claims: claims)?.id == "42")
        // An HS256 token signed with the public key as secret (algorithm confusion) is refused.
        let confused = hs256(["sub": "x"], secret: key.publicKey.pemRepresentation)
        await #expect(throws: JWTVerifier.Failure.algorithmMismatch) { try await verifier.verify(confused) }
        // Signed by another key.
        let other = try P256.Signing.PrivateKey().signature(for: Array(input.utf8)).rawRepresentation
        await #expect(throws: JWTVerifier.Failure.badSignature) {
            try await verifier.verify(input + "." + base64url(other))
        }
    }

    @Test func rs256() async throws {
        let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let verifier = try JWTVerifier(key: JWTVerifier.publicKey(pem: key.publicKey.pemRepresentation))
        guard case .rs256 = verifier.key else { Issue.record("not an RSA key: \(verifier.key)"); return }
        let claims = try await verifier.verify(
            signRS256(["sub": "r1", "exp": 1_700_000_100, "conversations": ["c9"]], key: key), now: now)
        let user = try #require(AuthenticatedUser(claims: claims))
        #expect(user.id == "r1" && user.conversations == .ids(["c9"]))
        #expect(await failure(try signRS256(["sub": "r1", "exp": 1_699_000_000], key: key), verifier) == .expired)
        let stranger = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        #expect(await failure(try signRS256(["sub": "r1"], key: stranger), verifier) == .badSignature)
        // Algorithm confusion: HS256 keyed with the PEM public key; alg none; a PS256 header.
        #expect(
            await failure(hs256(["sub": "x"], secret: key.publicKey.pemRepresentation), verifier) == .algorithmMismatch)
        #expect(await failure(hs256(["sub": "x"], alg: "none"), verifier) == .algorithmMismatch)
        #expect(await failure(try signRS256(["sub": "r1"], key: key, alg: "PS256"), verifier) == .algorithmMismatch)
        // Garbage is refused at configuration time.
        #expect(throws: (any Error).self) { try JWTVerifier.publicKey(pem: "not a key") }
    }

    @Test func base64urlHelper() {
        #expect(base64url("") == "")
        #expect(base64url("f") == "Zg")
        #expect(base64url("fo") == "Zm8")
        #expect(base64url("foo") == "Zm9v")
        #expect(base64url([0xfb, 0xff]) == "-_8")
    }
}

@Suite("realtime payload validation")
struct ValidationTests {
    @Test func ids() throws {
        #expect(try RealtimeValidation.projectId([["projectId": "p1"]]) == "p1")
        #expect(try RealtimeValidation.projectId([["projectId": 7]]) == "7")
        #expect(throws: PayloadError("projectId is required")) { try RealtimeValidation.projectId([[:]]) }
        #expect(throws: PayloadError("payload must be an object")) { try RealtimeValidation.projectId([]) }
        #expect(throws: PayloadError("payload must be an object")) { try RealtimeValidation.conversationId(["c1"]) }
        for bad: JSONValue in ["", 1.5, true, ["x"], .string(String(repeating: "x", count: 129))] {
            #expect(throws: PayloadError.self) { try RealtimeValidation.conversationId([["conversationId": bad]]) }
        }
    }

    @Test func messageSend() throws {
        let ok = try RealtimeValidation.messageSend(
            [["conversationId": 5, "message": ["content": "hi", "type": "image"]]], maxContentLength: 10)
        #expect(ok == MessageSend(conversationId: "5", conversationIdValue: 5, content: "hi", type: "image"))
        #expect(
            try RealtimeValidation.messageSend(
                [["conversationId": "c", "message": ["content": "hi"]]], maxContentLength: 10
            ).type == "text")
        // counted in Unicode scalars: 10 emoji fit in 10
        #expect(throws: Never.self) {
            try RealtimeValidation.messageSend(
                [["conversationId": "c", "message": ["content": .string(String(repeating: "👋", count: 10))]]],
                maxContentLength: 10)
        }
        let cases: [(JSONValue, String)] = [
            (["conversationId": "c"], "message is required"),
            (["conversationId": "c", "message": "hi"], "message must be an object"),
            (["conversationId": "c", "message": [:]], "message.content is required"),
            (["conversationId": "c", "message": ["content": 1]], "message.content must be a string"),
            (["conversationId": "c", "message": ["content": "  "]], "message.content must not be empty"),
            (
                ["conversationId": "c", "message": ["content": "12345678901"]],
                "message.content is longer than 10 characters"
            ),
            (
                ["conversationId": "c", "message": ["content": "x", "type": 3]],
                "message.type must be a non-empty string of at most 32 bytes"
            ),
            (["message": ["content": "x"]], "conversationId is required"),
        ]
        for (payload, message) in cases {
            #expect(throws: PayloadError(message)) {
                try RealtimeValidation.messageSend([payload], maxContentLength: 10)
            }
        }
    }

    @Test func grants() {
        #expect(Grant(claim: ["*"]) == .all)
        #expect(Grant(claim: "*") == .all)
        #expect(Grant(claim: [1, "a"]) == .ids(["1", "a"]))
        #expect(Grant(claim: nil) == .ids([]))
        #expect(Grant(claim: "p1") == .ids([]))
        let user = AuthenticatedUser(id: "u", projects: .ids(["p1"]), conversations: .all)
        #expect(ClaimsPolicy().canJoinProject(user, projectId: "p1"))
        #expect(!ClaimsPolicy().canJoinProject(user, projectId: "p2"))
        #expect(ClaimsPolicy().canJoinConversation(user, conversationId: "any"))
        #expect(OpenPolicy().canJoinProject(user, projectId: "p2"))
    }

    @Test func stamps() {
        #expect(MessageStamp.iso8601(epochMilliseconds: 0) == "1970-01-01T00:00:00.000Z")
        #expect(MessageStamp.iso8601(epochMilliseconds: 1_714_564_800_123) == "2024-05-01T12:00:00.123Z")
        let id = MessageStamp.uuid()
        #expect(id.count == 36 && Array(id)[14] == "4")
        #expect(MessageStamp.uuid() != id)
    }

    @Test func apiTokenComparison() {
        #expect(RealtimeApplication.constantTimeEquals(Array("abc".utf8), Array("abc".utf8)))
        #expect(!RealtimeApplication.constantTimeEquals(Array("abc".utf8), Array("abd".utf8)))
        #expect(!RealtimeApplication.constantTimeEquals(Array("abc".utf8), Array("abcd".utf8)))
        #expect(!RealtimeApplication.constantTimeEquals([], Array("a".utf8)))
    }
}
