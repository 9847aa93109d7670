import ChorusTestSupport
import Foundation
import Testing

/// The backend proxies end to end: Tests/clients/proxy_backend.py (Python's standard library HTTP
/// server, on a free loopback port, stopped by PID), `chorus --app realtime` with `--proxy-*` flags
/// pointing at it, and the scenarios of Tests/clients/proxy_scenarios.py (python-socketio clients).
@Suite("backend proxies end to end", .serialized)
struct ProxyE2ETests {
    static let proxyToken = "test-proxy-token"

    /// The backend, chorus with `serverArguments` (`{backend}` replaced by the backend's URL), then
    /// the scenario. `backendDown`: the backend is stopped before chorus starts (its port refuses).
    static func scenario(
        _ name: String, _ serverArguments: [String], scenarioArguments: [String] = [],
        auth: [String] = ["--jwt-secret", E2E.secret], backendDown: Bool = false,
        token: [String] = ["--proxy-token", proxyToken]
    ) async throws {
        let backend = try PythonClient.start("proxy_backend.py", args: [], requiring: "json")
        defer { backend.kill() }
        let line = try await backend.waitForLine(timeout: .seconds(20)) { $0.hasPrefix("LISTENING ") }
        let backendURL = "http://127.0.0.1:" + line.dropFirst("LISTENING ".count)
        if backendDown {
            backend.kill()
            _ = try await backend.waitForExit(timeout: .seconds(10))
        }
        let arguments = serverArguments.map { $0.replacing("{backend}", with: backendURL) }
        let server = try await E2E.server(
            auth + ["--api-token", E2E.apiToken, "--threads", "2"] + token + arguments)
        defer { server.kill() }
        let result = try await PythonClient.run(
            "proxy_scenarios.py",
            args: [
                name, "--url", server.url, "--backend", backendURL, "--secret", E2E.secret,
                "--api-token", E2E.apiToken, "--proxy-token", proxyToken,
            ] + scenarioArguments,
            requiring: PythonClient.socketIO, timeout: .seconds(60))
        guard result.exitCode == 0, result.stdout.contains("OK \(name)") else {
            throw HarnessError(
                "scenario \(name) failed: \(result)\n--- chorus ---\n\(server.diagnostics)\n--- backend ---\n\(backend.diagnostics)"
            )
        }
    }

    @Test(
        "message:send: the backend sees the sender, its stored message reaches every member, 4xx/5xx/invalid answers",
        .timeLimit(.minutes(1)))
    func message() async throws {
        try await Self.scenario("message", ["--proxy-message", "{backend}/message"])
    }

    @Test("message:send order per sender survives out-of-order backend answers", .timeLimit(.minutes(1)))
    func order() async throws {
        try await Self.scenario("order", ["--proxy-message", "{backend}/message", "--proxy-connections", "16"])
    }

    @Test("a message stored after its sender left is still broadcast, in order", .timeLimit(.minutes(1)))
    func senderLeft() async throws {
        try await Self.scenario("sender_left", ["--proxy-message", "{backend}/message"])
    }

    @Test("--proxy-connections 1: the backend gets the calls one after the other", .timeLimit(.minutes(1)))
    func oneConnection() async throws {
        try await Self.scenario("one_connection", ["--proxy-message", "{backend}/message", "--proxy-connections", "1"])
    }

    @Test("a slow backend hits --proxy-timeout: unavailable, nothing broadcast", .timeLimit(.minutes(1)))
    func timeout() async throws {
        try await Self.scenario(
            "timeout", ["--proxy-message", "{backend}/message", "--proxy-timeout", "1"],
            scenarioArguments: ["--timeout", "1"])
    }

    @Test("a backend that is down: unavailable at once, nothing broadcast", .timeLimit(.minutes(1)))
    func down() async throws {
        try await Self.scenario(
            "down", ["--proxy-message", "{backend}/message"], scenarioArguments: ["--timeout", "3"],
            backendDown: true)
    }

    @Test("--proxy-max-in-flight 2: further calls refused at once as unavailable", .timeLimit(.minutes(1)))
    func inFlight() async throws {
        try await Self.scenario("inflight", ["--proxy-message", "{backend}/message", "--proxy-max-in-flight", "2"])
    }

    @Test("--proxy-max-per-socket 2: a socket's third waiting message is refused", .timeLimit(.minutes(1)))
    func perSocket() async throws {
        try await Self.scenario("per_socket", ["--proxy-message", "{backend}/message", "--proxy-max-per-socket", "2"])
    }

    @Test(
        "joins decided by the backend: 2xx allowed, 403 forbidden, 500 unavailable; no cache", .timeLimit(.minutes(1)))
    func join() async throws {
        try await Self.scenario("join", ["--proxy-join", "{backend}/join"])
    }

    @Test(
        "joins with --proxy-join-cache: allowed/forbidden reused per user and room, unavailable never",
        .timeLimit(.minutes(1)))
    func joinCached() async throws {
        try await Self.scenario(
            "join", ["--proxy-join", "{backend}/join", "--proxy-join-cache", "60"],
            scenarioArguments: ["--join-cached"])
    }

    @Test(
        "--auth none --proxy-connect: the backend names the user; 401/403 are CONNECT_ERROR; --proxy-token-file",
        .timeLimit(.minutes(1)))
    func connect() async throws {
        let tokenFile = FileManager.default.temporaryDirectory.appendingPathComponent("chorus-proxy-token-\(getpid())")
        try Data((Self.proxyToken + "\n").utf8).write(to: tokenFile)
        defer { try? FileManager.default.removeItem(at: tokenFile) }
        try await Self.scenario(
            "connect",
            [
                "--proxy-connect", "{backend}/connect", "--proxy-message", "{backend}/message",
                "--proxy-connect-headers", "cookie, authorization",
            ],
            auth: ["--auth", "none"], token: ["--proxy-token-file", tokenFile.path])
    }

    @Test(
        "--auth jwt --proxy-connect: the token first (a bad one never reaches the backend), then the backend",
        .timeLimit(.minutes(1)))
    func connectAfterJWT() async throws {
        try await Self.scenario("connect_jwt", ["--proxy-connect", "{backend}/connect"])
    }

    @Test(
        "bad proxy flags are refused at start", .timeLimit(.minutes(1)),
        arguments: [
            (["--proxy-message", "ftp://x/message"], "--proxy-message must be an http:// or https:// URL"),
            (["--proxy-connect", "localhost:8080"], "--proxy-connect must be an http:// or https:// URL"),
            (["--proxy-timeout", "0"], "--proxy-timeout must be positive"),
            (["--proxy-max-in-flight", "0"], "must be at least 1"),
            (["--proxy-max-per-socket", "0"], "must be at least 1"),
            (["--proxy-join-cache=-1"], "--proxy-join-cache must not be negative"),
            (["--proxy-token", "a", "--proxy-token-file", "/dev/null"], "not both"),
        ])
    func badFlags(_ flags: [String], _ message: String) async throws {
        try await E2E.expectRefusedAtStart(flags, message)
    }

    @Test("a connect proxy that is down: CONNECT_ERROR unavailable", .timeLimit(.minutes(1)))
    func connectDown() async throws {
        try await Self.scenario(
            "connect_down", ["--proxy-connect", "{backend}/connect"], auth: ["--auth", "none"],
            backendDown: true)
    }
}

/// examples/backend.py, as the README runs it, behind all three proxies.
@Suite("example backend end to end", .serialized)
struct ExampleBackendE2ETests {
    @Test("examples/backend.py: connect by session, joins and messages decided by the backend", .timeLimit(.minutes(1)))
    func example() async throws {
        let script = Repository.root.appendingPathComponent("examples/backend.py").path
        let backend = try PythonClient.start(
            arguments: [script, "--port", "0", "--token", ProxyE2ETests.proxyToken],
            requiring: "json")
        defer { backend.kill() }
        let line = try await backend.waitForLine(timeout: .seconds(20)) { $0.hasPrefix("backend: listening on ") }
        let backendURL = "http://" + line.dropFirst("backend: listening on ".count)
        let server = try await E2E.server([
            "--auth", "none", "--api-token", E2E.apiToken, "--threads", "2", "--proxy-token", ProxyE2ETests.proxyToken,
            "--proxy-connect", backendURL + "/chorus/connect", "--proxy-join", backendURL + "/chorus/join",
            "--proxy-message", backendURL + "/chorus/message",
        ])
        defer { server.kill() }
        let result = try await PythonClient.run(
            "proxy_scenarios.py",
            args: ["example", "--url", server.url, "--backend", backendURL, "--api-token", E2E.apiToken],
            requiring: PythonClient.socketIO, timeout: .seconds(60))
        guard result.exitCode == 0, result.stdout.contains("OK example") else {
            throw HarnessError(
                "example failed: \(result)\n--- chorus ---\n\(server.diagnostics)\n--- backend ---\n\(backend.diagnostics)"
            )
        }
    }
}
