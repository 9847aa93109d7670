import ChorusJSON
import ChorusSocketIO
import ChorusTestSupport
import Crypto
import Foundation
import Testing
import _CryptoExtras

/// `chorus --jwt-public-key-file` with keys made here, and the real python-socketio client.
@Suite("JWT public keys end to end", .serialized)
struct PublicKeyE2ETests {
    /// Connects with `token` as `auth.token`; "CONNECTED <sid>" or "ERROR <connect_error data as JSON>".
    static let connectScript = #"""
        import json, sys
        import socketio
        url, tok = sys.argv[1], sys.argv[2]
        err = {}
        sio = socketio.Client(reconnection=False)
        @sio.on("connect_error")
        def connect_error(data=None):
            err["data"] = data
        try:
            sio.connect(url, auth={"token": tok}, transports=["websocket"], wait_timeout=5)
            print("CONNECTED", sio.get_sid())
            sio.disconnect()
        except socketio.exceptions.ConnectionError:
            print("ERROR", json.dumps(err.get("data")))
        """#

    static func connect(_ url: String, token: String) async throws -> String {
        let result = try await PythonClient.run(
            code: connectScript, args: [url, token], requiring: PythonClient.socketIO, timeout: .seconds(30))
        return (result.stdout + result.stderr).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func claims(_ sub: String) -> JSONValue {
        let now = Int64(Date().timeIntervalSince1970)
        return ["sub": .string(sub), "iat": .int(now), "exp": .int(now + 600)]
    }

    static func withKeyFile(_ pem: String, _ body: (String) async throws -> Void) async throws {
        let path = NSTemporaryDirectory() + "chorus-jwt-\(UUID().uuidString).pem"
        try (pem + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        try await body(path)
    }

    @Test(
        "RS256 with --jwt-public-key-file: valid token in; wrong key, HS256 confusion, alg none out",
        .timeLimit(.minutes(1)))
    func rs256() async throws {
        let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        try await Self.withKeyFile(key.publicKey.pemRepresentation) { path in
            let server = try await E2E.server(["--jwt-public-key-file", path, "--threads", "1"])
            defer { server.kill() }
            let ok = try await Self.connect(server.url, token: signRS256(Self.claims("rsa-user"), key: key))
            #expect(ok.hasPrefix("CONNECTED "), "\(ok)")
            let stranger = try _RSA.Signing.PrivateKey(keySize: .bits2048)
            let refused = [
                try signRS256(Self.claims("x"), key: stranger),
                hs256(Self.claims("x"), secret: key.publicKey.pemRepresentation),
                hs256(Self.claims("x"), secret: key.publicKey.pemRepresentation + "\n"),
                base64url(#"{"alg":"none"}"#) + "." + base64url(Self.claims("x").serialized) + ".",
            ]
            for token in refused {
                #expect(try await Self.connect(server.url, token: token) == #"ERROR {"message": "unauthorized"}"#)
            }
        }
    }

    @Test("ES256 with --jwt-public-key-file", .timeLimit(.minutes(1)))
    func es256() async throws {
        let key = P256.Signing.PrivateKey()
        try await Self.withKeyFile(key.publicKey.pemRepresentation) { path in
            let server = try await E2E.server(["--jwt-public-key-file", path, "--threads", "1"])
            defer { server.kill() }
            let input = base64url(#"{"alg":"ES256","typ":"JWT"}"#) + "." + base64url(Self.claims("ec-user").serialized)
            let sig = try key.signature(for: Array(input.utf8)).rawRepresentation
            let ok = try await Self.connect(server.url, token: input + "." + base64url(sig))
            #expect(ok.hasPrefix("CONNECTED "), "\(ok)")
            let bad = try await Self.connect(
                server.url, token: hs256(Self.claims("x"), secret: key.publicKey.pemRepresentation))
            #expect(bad == #"ERROR {"message": "unauthorized"}"#)
        }
    }
}
