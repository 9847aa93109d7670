import ChorusTestSupport
import Testing

/// Connection state recovery end to end: `chorus --app realtime` and the official socket.io-client
/// under Node (Tests/clients/recovery.js), as the product's apps use it. Each test starts its own
/// server with the flags its scenario needs.
@Suite("connection state recovery (official JS client)", .serialized)
struct RecoveryE2ETests {
    static func scenario(_ name: String, serverArguments: [String] = [], scenarioArguments: [String] = []) async throws
    {
        let server = try await E2E.server(
            ["--jwt-secret", E2E.secret, "--api-token", E2E.apiToken, "--threads", "2"] + serverArguments)
        defer { server.kill() }
        let result = try await NodeClient.run(
            "recovery.js",
            args: [name, "--url", server.url, "--secret", E2E.secret, "--api-token", E2E.apiToken] + scenarioArguments)
        guard result.exitCode == 0, result.stdout.contains("OK \(name)") else {
            throw HarnessError("recovery scenario \(name) failed: \(result)\n\(server.diagnostics)")
        }
    }

    @Test(
        "a dropped transport comes back: same id, rooms, data; every missed event once, in order, before connect",
        .timeLimit(.minutes(1)))
    func recovered() async throws { try await Self.scenario("recovered") }

    @Test("after --recovery-window the client gets a fresh session and nothing is replayed", .timeLimit(.minutes(1)))
    func expired() async throws { try await Self.scenario("expired", serverArguments: ["--recovery-window", "2"]) }

    @Test(
        "an offset that fell out of --recovery-buffer is not recovered (counted), and the fresh session works",
        .timeLimit(.minutes(1)))
    func overflow() async throws {
        try await Self.scenario("overflow", serverArguments: ["--recovery-buffer", "4096"])
    }

    @Test("a deliberate disconnect keeps no session", .timeLimit(.minutes(1)))
    func deliberate() async throws { try await Self.scenario("deliberate") }

    @Test(
        "skip-middlewares (default): a token that expired meanwhile does not stop the recovery", .timeLimit(.minutes(1))
    )
    func middlewaresSkipped() async throws {
        try await Self.scenario("middlewares", scenarioArguments: ["--expect", "recovered"])
    }

    @Test(
        "--no-recovery-skip-middlewares: the JWT middleware runs again and refuses the expired token",
        .timeLimit(.minutes(1)))
    func middlewaresRun() async throws {
        try await Self.scenario(
            "middlewares", serverArguments: ["--no-recovery-skip-middlewares"],
            scenarioArguments: ["--expect", "refused"])
    }

    @Test(
        "python-socketio (no recovery of its own) gets the offset as one more argument, as from Node; none with --recovery-window 0",
        .timeLimit(.minutes(1)))
    func pythonClients() async throws {
        try await E2E.scenario("offsets", scenarioArguments: ["--offsets", "1"])
        try await E2E.scenario(
            "offsets", serverArguments: ["--recovery-window", "0"], scenarioArguments: ["--offsets", "0"])
    }

    @Test(
        "bad recovery flags are refused at start", .timeLimit(.minutes(1)),
        arguments: [
            (["--recovery-window=-1"], "--recovery-window must be 0...86400 seconds"),
            (["--recovery-window", "86401"], "--recovery-window must be 0...86400 seconds"),
            (["--recovery-buffer", "0"], "--recovery-buffer and --recovery-max-sessions must be positive"),
            (["--recovery-max-sessions", "0"], "--recovery-buffer and --recovery-max-sessions must be positive"),
        ])
    func badFlags(_ flags: [String], _ message: String) async throws {
        try await E2E.expectRefusedAtStart(flags, message)
    }
}
