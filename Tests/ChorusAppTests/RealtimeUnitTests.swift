import ChorusSocketIO
import Crypto
import Testing

@testable import ChorusApp

func hs256(_ claims: JSONValue, secret: String = "s3cret", alg: String = "HS256") -> String {
    let header = Base64URL.encode(Array(#"{"alg":"\#(alg)","typ":"JWT"}"#.utf8))
    let payload = Base64URL.encode(claims.serialized)
    let input = header + "." + payload
    let mac = HMAC<SHA256>.authenticationCode(for: Array(input.utf8), using: SymmetricKey(data: Array(secret.utf8)))
    return input + "." + Base64URL.encode(Array(mac))
}

@Suite("JWT verification")
struct JWTTests {
    let verifier = JWTVerifier(key: .hs256(Array("s3cret".utf8)))
    let now = 1_700_000_000.0

    @Test func validHS256() throws {
        let claims = try verifier.verify(hs256(["sub": "u1", "exp": 1_700_000_100, "projects": ["p1"]]), now: now)
        #expect(claims["sub"] == "u1")
        let user = try #require(AuthenticatedUser(claims: claims))
        #expect(user.id == "u1" && user.projects == .ids(["p1"]) && user.conversations == .ids([]))
    }

    @Test func refusals() {
        func failure(_ token: String, _ v: JWTVerifier? = nil) -> JWTVerifier.Failure? {
            do { _ = try (v ?? verifier).verify(token, now: now); return nil } catch { return error }
        }
        #expect(failure(hs256(["sub": "u", "exp": 1_699_999_999])) == .expired)
        #expect(failure(hs256(["sub": "u", "exp": 1_700_000_000])) == .expired)
        #expect(failure(hs256(["sub": "u", "nbf": 1_700_000_100])) == .notYetValid)
        #expect(failure(hs256(["sub": "u"], secret: "other")) == .badSignature)
        #expect(failure(hs256(["sub": "u"], alg: "none")) == .algorithmMismatch)
        #expect(failure(hs256(["sub": "u"], alg: "RS256")) == .algorithmMismatch)
        #expect(failure(hs256(["exp": 1_800_000_000])) == .missingSubject)
        #expect(failure(hs256(["sub": "u", "exp": "soon"])) == .malformed)
        #expect(failure("a.b") == .malformed)
        #expect(failure("!!.??.**") == .malformed)
        var strict = verifier
        strict.issuer = "auth.example"
        strict.audience = "chat"
        #expect(failure(hs256(["sub": "u", "iss": "evil", "aud": "chat"]), strict) == .wrongIssuer)
        #expect(failure(hs256(["sub": "u", "iss": "auth.example", "aud": "other"]), strict) == .wrongAudience)
        #expect(failure(hs256(["sub": "u", "iss": "auth.example", "aud": ["x", "chat"]]), strict) == nil)
        var lenient = verifier
        lenient.leeway = 30
        #expect(failure(hs256(["sub": "u", "exp": 1_699_999_990]), lenient) == nil)
    }

    @Test func es256() throws {
        let key = P256.Signing.PrivateKey()
        let verifier = try JWTVerifier(key: JWTVerifier.publicKey(pem: key.publicKey.pemRepresentation))
        let input = Base64URL.encode(Array(#"{"alg":"ES256"}"#.utf8)) + "." + Base64URL.encode((["sub": 42] as JSONValue).serialized)
        let sig = try key.signature(for: Array(input.utf8)).rawRepresentation
        let claims = try verifier.verify(input + "." + Base64URL.encode(Array(sig)))
        #expect(AuthenticatedUser(claims: claims)?.id == "42")
        // An HS256 token signed with the public key as secret (algorithm confusion) is refused.
        let confused = hs256(["sub": "x"], secret: key.publicKey.pemRepresentation)
        #expect(throws: JWTVerifier.Failure.algorithmMismatch) { try verifier.verify(confused) }
    }

    @Test func base64url() {
        for n in 0..<20 {
            let bytes = (0..<n).map { UInt8(($0 * 37 + 11) & 255) }
            #expect(Base64URL.decode(Array(Base64URL.encode(bytes).utf8)) == bytes)
        }
        #expect(Base64URL.decode(Array("a+b".utf8)) == nil)
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
        let ok = try RealtimeValidation.messageSend([["conversationId": 5, "message": ["content": "hi", "type": "image"]]], maxContentLength: 10)
        #expect(ok == MessageSend(conversationId: "5", conversationIdValue: 5, content: "hi", type: "image"))
        #expect(try RealtimeValidation.messageSend([["conversationId": "c", "message": ["content": "hi"]]], maxContentLength: 10).type == "text")
        // counted in Unicode scalars: 10 emoji fit in 10
        #expect(throws: Never.self) {
            try RealtimeValidation.messageSend([["conversationId": "c", "message": ["content": .string(String(repeating: "👋", count: 10))]]], maxContentLength: 10)
        }
        let cases: [(JSONValue, String)] = [
            (["conversationId": "c"], "message is required"),
            (["conversationId": "c", "message": "hi"], "message must be an object"),
            (["conversationId": "c", "message": [:]], "message.content is required"),
            (["conversationId": "c", "message": ["content": 1]], "message.content must be a string"),
            (["conversationId": "c", "message": ["content": "  "]], "message.content must not be empty"),
            (["conversationId": "c", "message": ["content": "12345678901"]], "message.content is longer than 10 characters"),
            (["conversationId": "c", "message": ["content": "x", "type": 3]], "message.type must be a non-empty string of at most 32 bytes"),
            (["message": ["content": "x"]], "conversationId is required"),
        ]
        for (payload, message) in cases {
            #expect(throws: PayloadError(message)) { try RealtimeValidation.messageSend([payload], maxContentLength: 10) }
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
