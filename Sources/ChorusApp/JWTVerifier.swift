import ChorusJSON
import ChorusSocketIO
import JWTKit
import Synchronization

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

#if canImport(Glibc)
import Glibc
#endif

/// Verifies compact JWS tokens (HS256, RS256, ES256) with vapor/jwt-kit.
///
/// jwt-kit verifies through its `JWTKeyCollection` actor, so `verify` is `async`: the realtime
/// app calls it from an asynchronous Socket.IO middleware (`Namespace.use(async:)`), in a task
/// off the loop threads. On top of jwt-kit:
/// - the algorithm is pinned by the configured key (RFC 8725 §3.1): jwt-kit picks the signer by
///   `kid`, not by `alg`, so the header's `alg` must name the key's algorithm (`none` and
///   algorithm confusion are refused before any signature check);
/// - `exp`/`nbf` are checked with jwt-kit's claim types against our clock and leeway, then
///   `iss`/`aud` if configured, then `sub` (a non-empty string or an integer) is required.
public struct JWTVerifier: Sendable {
    public enum Key: Sendable {
        case hs256([UInt8])
        case rs256(Insecure.RSA.PublicKey)
        case es256(ES256PublicKey)

        var algorithm: String {
            switch self {
            case .hs256: "HS256"
            case .rs256: "RS256"
            case .es256: "ES256"
            }
        }
    }

    public enum Failure: Error, Equatable, Sendable {
        case malformed, algorithmMismatch, badSignature, expired, notYetValid, wrongIssuer, wrongAudience,
            missingSubject
        /// Longer than `maxTokenSize`, or header/claims nested deeper than `maxNestingDepth`:
        /// refused before jwt-kit decodes anything.
        case tooLarge, tooDeep
    }

    /// Longest token accepted, in bytes (a token with a few dozen room claims is well under 2 KiB).
    public static let defaultMaxTokenSize = 8 * 1024
    /// Deepest `[`/`{` nesting of the header and the claims. Chorus reads flat claims and arrays of
    /// ids (depth 2); Foundation's JSON decoding costs about the cube of the depth (0.4 s at 300).
    public static let defaultMaxNestingDepth = 16

    public let key: Key
    public var issuer: String?
    public var audience: String?
    /// Seconds of clock skew tolerated for exp/nbf.
    public var leeway: Double
    public var maxTokenSize: Int
    public var maxNestingDepth: Int
    private let keys: KeyRing

    public init(
        key: Key, issuer: String? = nil, audience: String? = nil, leeway: Double = 0,
        maxTokenSize: Int = JWTVerifier.defaultMaxTokenSize, maxNestingDepth: Int = JWTVerifier.defaultMaxNestingDepth
    ) {
        self.key = key
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self.maxTokenSize = maxTokenSize
        self.maxNestingDepth = maxNestingDepth
        self.keys = KeyRing(key)
    }

    /// A PEM public key: EC P-256 (ES256) or RSA (RS256, 2048 bits or more).
    public static func publicKey(pem: String) throws -> Key {
        if let k = try? ES256PublicKey(pem: pem) { return .es256(k) }
        return .rs256(try Insecure.RSA.PublicKey(pem: pem))
    }

    /// The verified claims. `now`: seconds since 1970.
    public func verify(_ token: String, now: Double = JWTVerifier.currentTime()) async throws(Failure) -> JSONObject {
        guard token.utf8.count <= maxTokenSize else { throw .tooLarge }
        let bytes = Array(token.utf8)
        try Self.checkNesting(bytes, maxDepth: maxNestingDepth)
        let header: JWTHeader
        do {
            header = try DefaultJWTParser().parse(bytes, as: Unchecked.self).header
        } catch {
            throw .malformed
        }
        guard header.alg == key.algorithm else { throw .algorithmMismatch }

        let claims: Claims
        do {
            claims = try await keys.collection().verify(bytes, as: Claims.self)
        } catch let error as JWTError where error.errorType == .signatureVerificationFailed {
            throw .badSignature
        } catch {
            throw .malformed
        }

        do {
            try claims.exp?.verifyNotExpired(currentDate: Date(timeIntervalSince1970: now - leeway))
        } catch {
            throw .expired
        }
        do {
            try claims.nbf?.verifyNotBefore(currentDate: Date(timeIntervalSince1970: now + leeway))
        } catch {
            throw .notYetValid
        }
        if let issuer, claims.iss?.value != issuer { throw .wrongIssuer }
        if let audience {
            guard let aud = claims.aud, (try? aud.verifyIntendedAudience(includes: audience)) != nil else {
                throw .wrongAudience
            }
        }
        guard let sub = claims.object["sub"], RealtimeIDs.id(from: sub) != nil else { throw .missingSubject }
        return claims.object
    }

    /// The header's and the claims' nesting, by a byte scan of their base64url-decoded JSON:
    /// linear in the token's size, before any decoder (whose cost grows with the cube of the depth)
    /// sees them. Not a JSON validator: jwt-kit still refuses what is not JSON.
    static func checkNesting(_ token: [UInt8], maxDepth: Int) throws(Failure) {
        var segments = token.split(separator: UInt8(ascii: "."), maxSplits: 2, omittingEmptySubsequences: false)
        guard segments.count == 3 else { throw .malformed }
        segments.removeLast()
        for segment in segments {
            guard let json = base64URLDecode(segment) else { throw .malformed }
            if jsonNestingDepth(json, limit: maxDepth) > maxDepth { throw .tooDeep }
        }
    }

    /// The deepest `[`/`{` nesting of JSON text, counted outside strings; stops counting once past
    /// `limit` (returns `limit + 1`).
    static func jsonNestingDepth(_ json: [UInt8], limit: Int) -> Int {
        var depth = 0
        var deepest = 0
        var inString = false
        var escaped = false
        for c in json {
            if inString {
                if escaped {
                    escaped = false
                } else if c == UInt8(ascii: "\\") {
                    escaped = true
                } else if c == UInt8(ascii: "\"") {
                    inString = false
                }
                continue
            }
            switch c {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                depth += 1
                if depth > deepest {
                    deepest = depth
                    if deepest > limit { return deepest }
                }
            case UInt8(ascii: "]"), UInt8(ascii: "}"): depth -= 1
            default: break
            }
        }
        return deepest
    }

    /// RFC 4648 §5 without padding (RFC 7515 §2); nil on any other byte.
    static func base64URLDecode(_ text: ArraySlice<UInt8>) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(text.count * 3 / 4)
        var accumulator: UInt32 = 0
        var bits = 0
        for c in text {
            let v: UInt32
            switch c {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): v = UInt32(c - UInt8(ascii: "A"))
            case UInt8(ascii: "a")...UInt8(ascii: "z"): v = UInt32(c - UInt8(ascii: "a")) + 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): v = UInt32(c - UInt8(ascii: "0")) + 52
            case UInt8(ascii: "-"): v = 62
            case UInt8(ascii: "_"): v = 63
            default: return nil
            }
            accumulator = accumulator << 6 | v
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
            }
        }
        return out
    }

    /// RFC 7518 §3.2: an HS256 key should be at least 256 bits.
    public static let minimumSecretLength = 32

    /// True for an HS256 secret under 32 bytes (accepted, but weak).
    public var hasWeakSecret: Bool {
        if case .hs256(let secret) = key { return secret.count < Self.minimumSecretLength }
        return false
    }

    public static func currentTime() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}

/// The jwt-kit key collection for one key, filled on first use (adding keys is actor-isolated,
/// and `JWTVerifier.init` is synchronous). Two first verifications racing both add the same key,
/// which is harmless: the second replaces the default signer with an identical one.
private final class KeyRing: Sendable {
    private let key: JWTVerifier.Key
    private let keys = JWTKeyCollection()
    private let loaded = Atomic<Bool>(false)

    init(_ key: JWTVerifier.Key) { self.key = key }

    func collection() async -> JWTKeyCollection {
        if loaded.load(ordering: .acquiring) { return keys }
        switch key {
        case .hs256(let secret):
            // jwt-kit asserts (debug builds) that an HMAC key is at least 32 bytes. HMAC pads keys
            // shorter than the hash block (64 bytes) with zeros (RFC 2104 §2), so zero-padding a
            // short secret to 32 bytes gives the very same MACs: short secrets keep working (the
            // app warns about them: RFC 7518 §3.2 asks for 256 bits).
            let padded =
                secret.count < JWTVerifier.minimumSecretLength
                ? secret + [UInt8](repeating: 0, count: JWTVerifier.minimumSecretLength - secret.count) : secret
            await keys.add(hmac: HMACKey(from: padded), digestAlgorithm: .sha256)
        case .rs256(let publicKey):
            await keys.add(rsa: publicKey, digestAlgorithm: .sha256)
        case .es256(let publicKey):
            await keys.add(ecdsa: publicKey)
        }
        loaded.store(true, ordering: .releasing)
        return keys
    }
}

/// A payload that decodes nothing: to read the header alone.
private struct Unchecked: JWTPayload {
    init(from decoder: any Decoder) throws {}
    func encode(to encoder: any Encoder) throws {}
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// Every claim as JSON (the authorisation policy reads `projects` / `conversations`), plus the
/// registered ones as jwt-kit claims. A malformed `exp`/`nbf` fails decoding (→ `.malformed`);
/// a malformed `iss`/`aud` counts as absent (refused only when an issuer/audience is required).
private struct Claims: JWTPayload {
    var object: JSONObject
    var exp: ExpirationClaim?
    var nbf: NotBeforeClaim?
    var iss: IssuerClaim?
    var aud: AudienceClaim?

    struct Name: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: Name.self)
        var object = JSONObject(minimumCapacity: c.allKeys.count)
        for key in c.allKeys { object[key.stringValue] = try c.decode(AnyJSON.self, forKey: key).value }
        self.object = object
        exp = try c.decodeIfPresent(ExpirationClaim.self, forKey: Name(stringValue: "exp"))
        nbf = try c.decodeIfPresent(NotBeforeClaim.self, forKey: Name(stringValue: "nbf"))
        iss = (try? c.decodeIfPresent(IssuerClaim.self, forKey: Name(stringValue: "iss"))) ?? nil
        aud = (try? c.decodeIfPresent(AudienceClaim.self, forKey: Name(stringValue: "aud"))) ?? nil
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Name.self)
        for (key, value) in object { try c.encode(AnyJSON(value), forKey: Name(stringValue: key)) }
    }

    /// Nothing here: `JWTVerifier.verify` checks the claims with its own clock and leeway.
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// Any JSON value through Codable.
private struct AnyJSON: Codable {
    var value: JSONValue

    init(_ value: JSONValue) { self.value = value }

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            value = .null
        } else if let b = try? c.decode(Bool.self) {
            value = .bool(b)
        } else if let i = try? c.decode(Int64.self) {
            value = .int(i)
        } else if let d = try? c.decode(Double.self) {
            value = .double(d)
        } else if let s = try? c.decode(String.self) {
            value = .string(s)
        } else if let a = try? c.decode([AnyJSON].self) {
            value = .array(a.map(\.value))
        } else {
            let o = try c.decode([String: AnyJSON].self)
            value = .object(JSONObject(o.map { ($0.key, $0.value.value) }))
        }
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch value {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .int(let i): try c.encode(i)
        case .double(let d): try c.encode(d)
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a.map(AnyJSON.init))
        case .object(let o):
            try c.encode(Dictionary(o.map { ($0.key, AnyJSON($0.value)) }, uniquingKeysWith: { a, _ in a }))
        case .binary(let b): try c.encode(b)
        }
    }
}
