import ChorusTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Several `chorus --adapter redis` processes on one real redis-server (started on a free loopback
/// port, stopped by PID), with the python-socketio clients, the emitter stand-in and the foreign
/// node stand-in of Tests/clients/cluster_scenarios.py.
enum ClusterE2E {
    /// Two nodes on `redis` (`--threads 2` each, so an incoming broadcast is also forwarded
    /// between loops), the scenario, then everything killed.
    static func scenario(
        _ name: String, nodes: Int = 2, adapter: String = "redis", extraServerArguments: [String] = [],
        scenarioArguments: [String] = [], overrideTimeout: Bool = false
    ) async throws {
        try await withNodes(
            nodes, adapter: adapter, extraServerArguments: extraServerArguments, overrideTimeout: overrideTimeout
        ) { redis, urls in
            let result = try await PythonClient.run(
                "cluster_scenarios.py",
                args: [name, "--redis", redis.url, "--secret", E2E.secret, "--api-token", E2E.apiToken]
                    + urls.flatMap { ["--url", $0] } + scenarioArguments,
                requiring: PythonClient.socketIO + ", redis, msgpack", timeout: .seconds(90))
            guard result.exitCode == 0, result.stdout.contains("OK \(name)") else {
                throw HarnessError("scenario \(name) failed: \(result)")
            }
        }
    }

    /// A redis-server and `nodes` Chorus nodes on it (`--threads 2` each) for `body`; everything
    /// killed after it, and the servers' logs added to its error.
    static func withNodes(
        _ nodes: Int, adapter: String, extraServerArguments: [String] = [], overrideTimeout: Bool = false,
        _ body: (RedisServerProcess, [String]) async throws -> Void
    ) async throws {
        let redis = try await RedisServerProcess.start()
        defer { redis.kill() }
        var servers: [ChorusProcess] = []
        defer { for s in servers { s.kill() } }
        for _ in 0..<nodes {
            servers.append(
                try await E2E.server(
                    [
                        "--jwt-secret", E2E.secret, "--api-token", E2E.apiToken, "--threads", "2",
                        "--adapter", adapter, "--redis-url", redis.url,
                    ] + (overrideTimeout ? [] : ["--redis-request-timeout", "3000"]) + extraServerArguments))
        }
        do {
            try await body(redis, servers.map(\.url))
        } catch {
            throw HarnessError(
                "\(error)\n" + servers.map(\.diagnostics).joined(separator: "\n") + "\n" + redis.diagnostics)
        }
    }
}

@Suite("Several nodes on Redis (end to end)", .serialized)
struct ClusterE2ETests {
    @Test(
        "an emit on one node reaches clients on the other: room, except, namespace, a user's sockets, chat",
        .timeLimit(.minutes(2)))
    func crossNode() async throws { try await ClusterE2E.scenario("cross_node") }

    @Test("a socket.io-redis-emitter publish reaches every node's clients; garbage is skipped", .timeLimit(.minutes(2)))
    func emitter() async throws { try await ClusterE2E.scenario("emitter") }

    @Test("operator routes fetch, join, leave and disconnect a room's sockets on every node", .timeLimit(.minutes(2)))
    func operations() async throws { try await ClusterE2E.scenario("operations") }

    @Test(
        "a foreign socket.io-redis-adapter node: broadcasts both ways, its requests answered, ours include it",
        .timeLimit(.minutes(2)))
    func foreignNode() async throws { try await ClusterE2E.scenario("foreign_node") }

    @Test(
        "--redis-subscription rooms: cross-node delivery, the emitter and a foreign node work as with the pattern",
        .timeLimit(.minutes(4)), arguments: ["cross_node", "emitter", "foreign_node"])
    func roomSubscriptions(_ scenario: String) async throws {
        try await ClusterE2E.scenario(
            scenario, extraServerArguments: ["--redis-subscription", "rooms"],
            scenarioArguments: ["--subscription", "rooms"])
    }

    @Test("--redis-key: an emitter on another key prefix reaches the nodes using it", .timeLimit(.minutes(2)))
    func customKey() async throws {
        try await ClusterE2E.scenario(
            "emitter", extraServerArguments: ["--redis-key", "chorus-test"],
            scenarioArguments: ["--key", "chorus-test"])
    }

    @Test(
        "--redis-request-timeout: a node that never answers makes a fetch fail with 504 after the timeout",
        .timeLimit(.minutes(2)))
    func requestTimeout() async throws {
        try await ClusterE2E.scenario(
            "request_timeout", extraServerArguments: ["--redis-request-timeout", "1000"],
            scenarioArguments: ["--timeout-ms", "1000"], overrideTimeout: true)
    }

    @Test(
        "--redis-publish-queue: while Redis is down emits wait in the bounded queue, the rest are dropped and counted",
        .timeLimit(.minutes(2)))
    func publishQueueBound() async throws {
        let port = try RedisServerProcess.freeLoopbackPort()
        let node = try await E2E.server([
            "--jwt-secret", E2E.secret, "--api-token", E2E.apiToken, "--threads", "2",
            "--adapter", "redis", "--redis-url", "redis://127.0.0.1:\(port)", "--redis-publish-queue", "2",
        ])
        defer { node.kill() }
        let result = try await PythonClient.run(
            "cluster_scenarios.py",
            args: [
                "publish_queue", "--redis", "redis://127.0.0.1:\(port)", "--url", node.url, "--publish-queue", "2",
                "--secret", E2E.secret, "--api-token", E2E.apiToken,
            ],
            requiring: PythonClient.socketIO + ", redis, msgpack", timeout: .seconds(60))
        #expect(result.exitCode == 0 && result.stdout.contains("OK publish_queue"), "\(result)\n\(node.diagnostics)")
    }

    @Test("--adapter redis is refused without the realtime app or with a bad --redis-url", .timeLimit(.minutes(1)))
    func adapterFlagsAreValidated() async throws {
        for arguments in [
            ["--app", "echo", "--adapter", "redis"], ["--adapter", "redis", "--redis-url", "http://x"],
            ["--adapter", "redis", "--redis-request-timeout", "0"], ["--adapter", "cluster"],
            ["--adapter", "redis", "--redis-subscription", "channels"],
            ["--adapter", "redis", "--redis-reconnect-min", "0"],
            ["--adapter", "redis", "--redis-reconnect-min", "200", "--redis-reconnect-max", "199"],
            ["--adapter", "redis", "--redis-connect-timeout", "0"],
        ] {
            let child = try ChildProcess(
                executable: ChorusProcess.binary, arguments: ["serve", "--port", "0", "--auth", "none"] + arguments)
            let code = try await child.waitForExit(timeout: .seconds(20))
            #expect(code != 0, "\(arguments) accepted")
            #expect(child.stderr.text.contains("Error"), "\(arguments): \(child.stderr.text)")
        }
    }

    @Test(
        "--redis-connect-timeout and --redis-reconnect-min/max at their edges: a login never answered is abandoned after the timeout and retried at the capped delay",
        .timeLimit(.minutes(1)))
    func connectTimeoutAndReconnectDelay() async throws {
        // A listener that never answers: the kernel completes each TCP handshake, the login gets no reply.
        let listener = try SilentListener()
        defer { listener.close() }
        let node = try await E2E.server([
            "--jwt-secret", E2E.secret, "--api-token", E2E.apiToken, "--threads", "1",
            "--adapter", "redis", "--redis-url", "redis://127.0.0.1:\(listener.port)",
            "--redis-connect-timeout", "200", "--redis-reconnect-min", "1", "--redis-reconnect-max", "1",
        ])
        defer { node.kill() }
        // Two connections (publishing, subscribing), each attempting every 200 ms + at most 1 ms:
        // about 20 in 2 s (with the defaults, 5 s and 100 ms doubling: 2).
        try await Task.sleep(for: .seconds(2))
        let attempts = listener.acceptAll()
        #expect((12...28).contains(attempts), "\(attempts) connection attempts\n\(node.diagnostics)")
        #expect(node.stderr.contains("no connection and login within 0.2 seconds"), "\(node.diagnostics)")
    }

    @Test(
        "a node starts while Redis is down, serves locally, and joins the cluster when Redis comes",
        .timeLimit(.minutes(2)),
        arguments: ["redis", "redis-streams"])
    func redisDownAtStart(_ adapter: String) async throws {
        let port = try RedisServerProcess.freeLoopbackPort()
        let node = try await E2E.server([
            "--jwt-secret", E2E.secret, "--api-token", E2E.apiToken, "--threads", "2",
            "--adapter", adapter, "--redis-url", "redis://127.0.0.1:\(port)",
        ])
        defer { node.kill() }
        // Local delivery works without Redis.
        let local = try await PythonClient.run(
            "cluster_scenarios.py",
            args: [
                "redis_down", "--redis", "redis://127.0.0.1:\(port)", "--url", node.url, "--secret", E2E.secret,
                "--api-token", E2E.apiToken,
            ],
            requiring: PythonClient.socketIO + ", redis, msgpack", timeout: .seconds(60))
        #expect(local.exitCode == 0 && local.stdout.contains("OK redis_down"), "\(local)\n\(node.diagnostics)")
        let redis = try await RedisServerProcess.start(port: port)
        defer { redis.kill() }
        let other = try await E2E.server([
            "--jwt-secret", E2E.secret, "--api-token", E2E.apiToken, "--threads", "2",
            "--adapter", adapter, "--redis-url", redis.url,
        ])
        defer { other.kill() }
        let result = try await PythonClient.run(
            "cluster_scenarios.py",
            args: [
                "cross_node", "--redis", redis.url, "--url", node.url, "--url", other.url,
                "--secret", E2E.secret, "--api-token", E2E.apiToken,
            ],
            requiring: PythonClient.socketIO + ", redis, msgpack", timeout: .seconds(90))
        #expect(result.exitCode == 0 && result.stdout.contains("OK cross_node"), "\(result)\n\(node.diagnostics)")
    }

    @Test(
        "a Redis restart in the middle: delivery across nodes resumes, nothing crashes", .timeLimit(.minutes(2)),
        arguments: ["redis", "redis-streams"])
    func redisRestart(_ adapter: String) async throws {
        let redis = try await RedisServerProcess.start()
        defer { redis.kill() }
        var servers: [ChorusProcess] = []
        defer { for s in servers { s.kill() } }
        for _ in 0..<2 {
            servers.append(
                try await E2E.server([
                    "--jwt-secret", E2E.secret, "--api-token", E2E.apiToken, "--threads", "2",
                    "--adapter", adapter, "--redis-url", redis.url,
                ]))
        }
        let args = [
            "--redis", redis.url, "--url", servers[0].url, "--url", servers[1].url,
            "--secret", E2E.secret, "--api-token", E2E.apiToken,
        ]
        // The pub/sub emitter does not speak to a Streams fleet (nor to Node's Streams adapter).
        var result = try await PythonClient.run(
            "cluster_scenarios.py", args: [adapter == "redis" ? "emitter" : "cross_node"] + args,
            requiring: PythonClient.socketIO + ", redis, msgpack", timeout: .seconds(60))
        #expect(result.exitCode == 0, "\(result)")
        try await redis.restart()
        // The scenario waits until both nodes are subscribed again (NUMSUB), then checks delivery.
        result = try await PythonClient.run(
            "cluster_scenarios.py", args: ["cross_node"] + args,
            requiring: PythonClient.socketIO + ", redis, msgpack", timeout: .seconds(60))
        #expect(result.exitCode == 0 && result.stdout.contains("OK cross_node"), "\(result)\n\(servers[0].diagnostics)")
        for s in servers { #expect(s.child.isRunning) }
    }

    @Test("a node killed: the others keep serving and answering", .timeLimit(.minutes(2)))
    func nodeKilled() async throws {
        let redis = try await RedisServerProcess.start()
        defer { redis.kill() }
        var servers: [ChorusProcess] = []
        defer { for s in servers { s.kill() } }
        for _ in 0..<3 {
            servers.append(
                try await E2E.server([
                    "--jwt-secret", E2E.secret, "--api-token", E2E.apiToken, "--threads", "1",
                    "--adapter", "redis", "--redis-url", redis.url, "--redis-request-timeout", "2000",
                ]))
        }
        servers[2].kill()
        let result = try await PythonClient.run(
            "cluster_scenarios.py",
            args: [
                "operations", "--redis", redis.url, "--url", servers[0].url, "--url", servers[1].url,
                "--secret", E2E.secret, "--api-token", E2E.apiToken,
            ],
            requiring: PythonClient.socketIO + ", redis, msgpack", timeout: .seconds(60))
        #expect(result.exitCode == 0 && result.stdout.contains("OK operations"), "\(result)")
    }
}

/// A loopback TCP listener that never accepts on its own nor answers: connections complete in the
/// kernel's backlog and then wait. `acceptAll` takes (and keeps open) those queued so far.
final class SilentListener {
    let fd: Int32
    let port: UInt16
    private var accepted: [Int32] = []

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        self.fd = fd
        guard fd >= 0 else { throw HarnessError("socket() failed: \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(fd, 128) == 0 else { throw HarnessError("bind/listen failed: \(errno)") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        port = UInt16(bigEndian: address.sin_port)
    }

    /// Connections accepted so far, in all.
    func acceptAll() -> Int {
        while true {
            let c = accept(fd, nil, nil)
            guard c >= 0 else { break }
            accepted.append(c)
        }
        return accepted.count
    }

    func close() {
        for c in accepted { Glibc.close(c) }
        Glibc.close(fd)
    }
}
