import ChorusTestSupport
import Testing

/// `--adapter redis-streams` end to end: nodes sharing one Redis stream as socket.io-redis-streams-
/// adapter 0.3.x does, and connection state recovery across them with the official socket.io-client
/// (Tests/clients/recovery.js behind a loopback balancer), plus a Python stand-in for a Node.js node
/// using that adapter (Tests/clients/cluster_scenarios.py).
@Suite("Redis Streams adapter and recovery across nodes (end to end)", .serialized)
struct StreamsRecoveryE2ETests {
    /// `recovery.js SCENARIO` against two streams nodes (`--url` the first, `--url2` the second).
    static func recovery(_ name: String, serverArguments: [String] = [], scenarioArguments: [String] = []) async throws
    {
        try await ClusterE2E.withNodes(2, adapter: "redis-streams", extraServerArguments: serverArguments) { _, urls in
            let result = try await NodeClient.run(
                "recovery.js",
                args: [name, "--url", urls[0], "--url2", urls[1], "--secret", E2E.secret, "--api-token", E2E.apiToken]
                    + scenarioArguments)
            guard result.exitCode == 0, result.stdout.contains("OK \(name)") else {
                throw HarnessError("recovery scenario \(name) failed: \(result)")
            }
        }
    }

    @Test(
        "a client whose transport drops comes back through the balancer to the other node: same id, rooms, user; every event from either node once, in order",
        .timeLimit(.minutes(2)))
    func otherNode() async throws { try await Self.recovery("otherNode") }

    @Test(
        "on its own node too: same id, rooms, every missed event once and in order before connect",
        .timeLimit(.minutes(2)))
    func sameNode() async throws { try await Self.recovery("recovered") }

    @Test("a deliberate disconnect keeps no session in Redis", .timeLimit(.minutes(2)))
    func deliberate() async throws { try await Self.recovery("deliberate") }

    @Test(
        "the session's TTL is the window: after it the client gets a fresh session (counted unknownSession: Redis forgot it)",
        .timeLimit(.minutes(2)))
    func expired() async throws {
        try await Self.recovery(
            "expired", serverArguments: ["--recovery-window", "2"], scenarioArguments: ["--refusal", "unknownSession"])
    }

    @Test(
        "an offset trimmed from the stream (--redis-stream-max-len) is not recovered (offsetGone), and the fresh session works",
        .timeLimit(.minutes(2)))
    func trimmed() async throws {
        try await Self.recovery(
            "overflow", serverArguments: ["--redis-stream-max-len", "1"],
            scenarioArguments: ["--posts", "300", "--stream", "1", "--delay", "8000"])
    }

    @Test("skip-middlewares on and off, across nodes' store", .timeLimit(.minutes(2)), arguments: [true, false])
    func middlewares(_ skip: Bool) async throws {
        try await Self.recovery(
            "middlewares", serverArguments: skip ? [] : ["--no-recovery-skip-middlewares"],
            scenarioArguments: ["--expect", skip ? "recovered" : "refused"])
    }

    @Test(
        "a Node.js streams node stand-in: entries and sessions in the reference's layout both ways, requests answered",
        .timeLimit(.minutes(2)))
    func foreignNode() async throws { try await ClusterE2E.scenario("streams_foreign_node", adapter: "redis-streams") }

    @Test(
        "cluster-wide operations over the stream and pub/sub: cross-node emits, fetch, join, leave, disconnect",
        .timeLimit(.minutes(2)))
    func operations() async throws {
        try await ClusterE2E.scenario("cross_node", adapter: "redis-streams")
        try await ClusterE2E.scenario("operations", adapter: "redis-streams")
    }

    @Test(
        "bad streams flags are refused at start", .timeLimit(.minutes(1)),
        arguments: [
            (["--app", "echo", "--adapter", "redis-streams"], "--adapter redis-streams needs --app realtime"),
            (
                ["--adapter", "redis-streams", "--redis-stream-max-len", "0"],
                "--redis-stream-max-len must be at least 1"
            ),
        ])
    func badFlags(_ flags: [String], _ message: String) async throws {
        try await E2E.expectRefusedAtStart(flags, message)
    }
}
