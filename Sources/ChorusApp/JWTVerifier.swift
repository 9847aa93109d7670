import ChorusSocketIO
import Crypto
import _CryptoExtras

#if canImport(Glibc)
import Glibc
#endif

/// Verifies compact JWS tokens (HS256, RS256, ES256) synchronously, on the loop thread.
///
/// Why not vapor/jwt-kit: jwt-kit 5 verifies through the `JWTKeyCollection` actor (`async`), and
/// the server's callbacks are synchronous on the loop thread. Going async would mean parking the
/// CONNECT, hopping to the cooperative pool and back through `withConnection`, and queueing the
/// packets that arrive meanwhile — for work that takes microseconds. The verification itself is
/// small and is done with swift-crypto (the primitives jwt-kit uses): the algorithm is pinned by
/// the configured key (the header's `alg` must match it; `none` and algorithm confusion are
/// refused), then exp/nbf/iss/aud are checked.
public struct JWTVerifier: Sendable {
    public enum Key: Sendable {
        case hs256([UInt8])
        case rs256(_RSA.Signing.PublicKey)
        case es256(P256.Signing.PublicKey)

        var algorithm: String {
            switch self {
            case .hs256: "HS256"
            case .rs256: "RS256"
            case .es256: "ES256"
            }
        }
    }

    public enum Failure: Error, Equatable, Sendable {
        case malformed, algorithmMismatch, badSignature, expired, notYetValid, wrongIssuer, wrongAudience, missingSubject
    }

    public let key: Key
    public var issuer: String?
    public var audience: String?
    /// Seconds of clock skew tolerated for exp/nbf.
    public var leeway: Double

    public init(key: Key, issuer: String? = nil, audience: String? = nil, leeway: Double = 0) {
        self.key = key
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
    }

    /// A PEM public key: EC P-256 (ES256) or RSA (RS256).
    public static func publicKey(pem: String) throws -> Key {
        if let k = try? P256.Signing.PublicKey(pemRepresentation: pem) { return .es256(k) }
        return .rs256(try _RSA.Signing.PublicKey(pemRepresentation: pem))
    }

    /// The verified claims.
    public func verify(_ token: String, now: Double = JWTVerifier.currentTime()) throws(Failure) -> JSONObject {
        let parts = token.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 3,
            let headerBytes = Base64URL.decode(parts[0]),
            let payloadBytes = Base64URL.decode(parts[1]),
            let signature = Base64URL.decode(parts[2]),
            let header = (try? JSONValue.parse(headerBytes))?.objectValue,
            let claims = (try? JSONValue.parse(payloadBytes))?.objectValue
        else { throw .malformed }
        guard header["alg"]?.stringValue == key.algorithm else { throw .algorithmMismatch }
        let signingInput = Array(token.utf8[..<parts[1].endIndex])
        let valid: Bool
        switch key {
        case .hs256(let secret):
            valid = HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: signingInput, using: SymmetricKey(data: secret))
        case .rs256(let publicKey):
            let digest = SHA256.hash(data: signingInput)
            valid = publicKey.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: signature), for: digest, padding: .insecurePKCS1v1_5)
        case .es256(let publicKey):
            guard signature.count == 64, let sig = try? P256.Signing.ECDSASignature(rawRepresentation: signature) else {
                throw .badSignature
            }
            valid = publicKey.isValidSignature(sig, for: SHA256.hash(data: signingInput))
        }
        guard valid else { throw .badSignature }

        if let exp = claims["exp"] {
            guard let e = exp.doubleValue else { throw .malformed }
            if now >= e + leeway { throw .expired }
        }
        if let nbf = claims["nbf"] {
            guard let n = nbf.doubleValue else { throw .malformed }
            if now + leeway < n { throw .notYetValid }
        }
        if let issuer, claims["iss"]?.stringValue != issuer { throw .wrongIssuer }
        if let audience {
            switch claims["aud"] {
            case .string(let a)? where a == audience: break
            case .array(let list)? where list.contains(where: { $0.stringValue == audience }): break
            default: throw .wrongAudience
            }
        }
        guard let sub = claims["sub"], let subject = RealtimeIDs.id(from: sub), !subject.isEmpty else { throw .missingSubject }
        return claims
    }

    public static func currentTime() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}

/// Base64url without padding (RFC 7515 §2), padding tolerated.
public enum Base64URL {
    static let table: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
    static let reverse: [Int16] = {
        var r = [Int16](repeating: -1, count: 256)
        for (i, c) in table.enumerated() { r[Int(c)] = Int16(i) }
        return r
    }()

    public static func decode(_ input: some Collection<UInt8>) -> [UInt8]? {
        var chars = Array(input)
        while chars.last == UInt8(ascii: "=") { chars.removeLast() }
        if chars.count % 4 == 1 { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(chars.count * 3 / 4)
        var acc: UInt32 = 0
        var bits = 0
        for c in chars {
            let v = reverse[Int(c)]
            if v < 0 { return nil }
            acc = acc << 6 | UInt32(v)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: acc >> UInt32(bits)))
            }
        }
        return out
    }

    public static func encode(_ bytes: some Collection<UInt8>) -> String {
        var out: [UInt8] = []
        let b = Array(bytes)
        var i = 0
        while i + 2 < b.count {
            let n = UInt32(b[i]) << 16 | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2])
            out += [table[Int(n >> 18 & 63)], table[Int(n >> 12 & 63)], table[Int(n >> 6 & 63)], table[Int(n & 63)]]
            i += 3
        }
        if b.count - i == 1 {
            let n = UInt32(b[i]) << 16
            out += [table[Int(n >> 18 & 63)], table[Int(n >> 12 & 63)]]
        } else if b.count - i == 2 {
            let n = UInt32(b[i]) << 16 | UInt32(b[i + 1]) << 8
            out += [table[Int(n >> 18 & 63)], table[Int(n >> 12 & 63)], table[Int(n >> 6 & 63)]]
        }
        return String(decoding: out, as: UTF8.self)
    }
}
