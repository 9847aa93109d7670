import ChorusTestSupport
import Foundation
import Testing

/// `/metrics` of the real binary, parsed by the Prometheus project's Python parser
/// (Tests/clients/metrics_check.py): 401 without the token, values that move while Socket.IO
/// clients chat, and the token-less `--metrics-port` listener.
@Suite("Metrics end to end") struct MetricsE2ETests {
    @Test("/metrics parses with prometheus_client and moves with traffic; --metrics-port needs no token")
    func metricsEndToEnd() async throws {
        let server = try await E2E.server([
            "--jwt-secret", E2E.secret, "--api-token", E2E.apiToken, "--threads", "2", "--metrics-port", "0",
        ])
        defer { server.kill() }
        let line = try await server.child.waitForLine(timeout: .seconds(5)) { $0.hasPrefix("chorus: metrics on ") }
        let metricsPort = try #require(line.split(separator: ":").last.map(String.init))
        let result = try await PythonClient.run(
            "metrics_check.py",
            args: [
                "--url", server.url, "--token", E2E.apiToken, "--secret", E2E.secret,
                "--metrics-url", "http://127.0.0.1:\(metricsPort)",
            ],
            requiring: PythonClient.socketIO + ", prometheus_client", timeout: .seconds(60))
        #expect(result.exitCode == 0 && result.stdout.contains("OK metrics"), "\(result)\n\(server.diagnostics)")
    }

    @Test("--metrics-token opens /metrics too (beside the API token)")
    func metricsToken() async throws {
        let server = try await E2E.server([
            "--jwt-secret", E2E.secret, "--api-token", E2E.apiToken, "--metrics-token", "scraper-token",
        ])
        defer { server.kill() }
        let tcp = try RawTCPConnection(port: server.port)
        try tcp.send(
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer scraper-token\r\n\r\n")
        let answer = String(decoding: try tcp.readToEOF(), as: UTF8.self)
        #expect(
            answer.hasPrefix("HTTP/1.1 200") && answer.contains("# TYPE chorus_connections gauge"),
            "\(answer.prefix(300))")
    }
}

/// `--log-format json` of the real binary: one JSON object per line, and a flood of bad clients
/// logs at most the rate limiter's burst of the same line.
@Suite("JSON logs end to end") struct JSONLogE2ETests {
    @Test("every stderr line is a JSON object; 30 bad clients give only the first 10 'closing connection' lines")
    func jsonLogsAreRateLimited() async throws {
        let server = try await ChorusProcess.start(
            app: "realtime", ["--auth", "none", "--log-format", "json", "--log-level", "debug"])
        defer { server.kill() }
        for _ in 0..<30 {
            let client = try BlockingWebSocketClient(
                port: Int(server.port), path: "/socket.io/?EIO=4&transport=websocket")
            _ = try client.receiveText()  // the Engine.IO open packet
            try client.send(text: "x")  // not an Engine.IO packet: the server closes with 1008
            _ = try client.receiveClose()
        }
        server.terminate()
        _ = try await server.waitForExit(timeout: .seconds(10))
        let lines = server.stderr.split(separator: "\n").map(String.init)
        #expect(lines.count >= 3)
        var closing = 0
        for line in lines {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(
                object?["timestamp"] is String && object?["level"] is String && object?["label"] is String
                    && object?["metadata"] is [String: Any], "\(line)")
            if object?["message"] as? String == "closing connection" { closing += 1 }
        }
        #expect(closing == 10, "\(server.stderr)")
    }
}

/// The observing flags at their edges: bad values are refused at start with the flag's name.
@Suite("Observing flags") struct ObservingFlagTests {
    @Test(
        "--metrics-port outside 0...65535 and an unknown --log-format are refused",
        arguments: [
            (["--metrics-port", "65536"], "--metrics-port"),
            (["--metrics-port", "-1"], "metrics-port"),
            (["--log-format", "xml"], "log-format"),
        ])
    func refused(_ flags: [String], _ mentioned: String) async throws {
        let child = try ChildProcess(
            executable: ChorusProcess.binary,
            arguments: ["serve", "--app", "echo", "--port", "0"] + flags)
        let status = try await child.waitForExit(timeout: .seconds(20))
        #expect(status != 0)
        #expect(child.stderr.text.contains(mentioned), "\(child.diagnostics)")
    }

    @Test("--metrics-host binds the metrics listener where asked")
    func metricsHost() async throws {
        let server = try await ChorusProcess.start(app: "echo", ["--metrics-port", "0", "--metrics-host", "127.0.0.2"])
        defer { server.kill() }
        let line = try await server.child.waitForLine(timeout: .seconds(5)) { $0.hasPrefix("chorus: metrics on ") }
        #expect(line.hasPrefix("chorus: metrics on 127.0.0.2:"), "\(line)")
        let port = try #require(UInt16(line.split(separator: ":").last.map(String.init) ?? ""))
        let tcp = try RawTCPConnection(port: port, host: "127.0.0.2")
        try tcp.send("GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        let answer = String(decoding: try tcp.readToEOF(), as: UTF8.self)
        #expect(answer.hasPrefix("HTTP/1.1 200") && answer.contains("# TYPE chorus_connections gauge"))
    }
}

/// `chorus_adapter_*` of two real `--adapter redis` nodes on one real redis-server: the adapter's
/// loop publishes its counters once a second, and a scrape reads them.
@Suite("Adapter metrics end to end", .serialized) struct AdapterMetricsE2ETests {
    /// One HTTP request to `server`'s main port with the API token; the whole answer.
    static func request(_ server: ChorusProcess, _ method: String, _ path: String, body: String? = nil) throws -> String
    {
        let tcp = try RawTCPConnection(port: server.port)
        var head =
            "\(method) \(path) HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer \(E2E.apiToken)\r\n"
        if let body { head += "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n" }
        try tcp.send(head + "\r\n" + (body ?? ""))
        return String(decoding: try tcp.readToEOF(), as: UTF8.self)
    }

    /// The unlabelled samples of `/metrics` whose name starts with `chorus_adapter_`.
    static func adapterSamples(_ server: ChorusProcess) throws -> [String: Double] {
        var samples: [String: Double] = [:]
        for line in try request(server, "GET", "/metrics").split(separator: "\n")
        where line.hasPrefix("chorus_adapter_") {
            let parts = line.split(separator: " ")
            if parts.count == 2, let value = Double(parts[1]) { samples[String(parts[0])] = value }
        }
        return samples
    }

    /// Scrapes until `predicate` holds (the adapter publishes once a second); the last scrape otherwise.
    static func waitFor(
        _ server: ChorusProcess, _ what: String,
        _ predicate: ([String: Double]) -> Bool
    ) async throws -> [String: Double] {
        var last: [String: Double] = [:]
        for _ in 0..<100 {
            last = try adapterSamples(server)
            if predicate(last) { return last }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw HarnessError("timed out waiting for \(what): \(last.sorted { $0.key < $1.key })\n\(server.diagnostics)")
    }

    @Test(
        "publishes, receives, requests with their latency, and reconnects move; absent without the adapter",
        .timeLimit(.minutes(2)))
    func adapterCountersMove() async throws {
        let redis = try await RedisServerProcess.start()
        defer { redis.kill() }
        let arguments = [
            "--jwt-secret", E2E.secret, "--api-token", E2E.apiToken, "--threads", "2",
            "--adapter", "redis", "--redis-url", redis.url,
        ]
        let a = try await E2E.server(arguments)
        defer { a.kill() }
        let b = try await E2E.server(arguments)
        defer { b.kill() }
        for node in [a, b] {
            _ = try await Self.waitFor(node, "Redis to connect") { $0["chorus_adapter_redis_connected"] == 1 }
        }
        let a0 = try Self.adapterSamples(a)
        let b0 = try Self.adapterSamples(b)
        #expect(a0["chorus_adapter_reconnects_total"] == 0 && a0["chorus_adapter_publish_queue"] == 0)

        // An emit to the whole namespace on A goes through Redis to B; a fetch of the sockets asks B.
        let emitted = try Self.request(a, "POST", "/api/v1/emit", body: #"{"event":"project:update","data":{"n":1}}"#)
        #expect(emitted.hasPrefix("HTTP/1.1 202"), "\(emitted)")
        let fetched = try Self.request(a, "GET", "/api/v1/sockets")
        #expect(fetched.hasPrefix("HTTP/1.1 200"), "\(fetched)")

        let a1 = try await Self.waitFor(a, "A's publish and request") {
            $0["chorus_adapter_broadcasts_published_total", default: 0]
                >= (a0["chorus_adapter_broadcasts_published_total"] ?? 0) + 1
                && $0["chorus_adapter_requests_published_total", default: 0]
                    >= (a0["chorus_adapter_requests_published_total"] ?? 0) + 1
                && $0["chorus_adapter_responses_received_total", default: 0]
                    >= (a0["chorus_adapter_responses_received_total"] ?? 0) + 1
                && $0["chorus_adapter_request_seconds_count", default: 0]
                    >= (a0["chorus_adapter_request_seconds_count"] ?? 0) + 1
        }
        // The request took some time, and less than the request timeout.
        #expect(
            (a1["chorus_adapter_request_seconds_sum"] ?? 0) > 0 && (a1["chorus_adapter_request_seconds_sum"] ?? 99) < 5)
        #expect(a1["chorus_adapter_requests_timed_out_total"] == 0)
        _ = try await Self.waitFor(b, "B's receive and answer") {
            $0["chorus_adapter_broadcasts_received_total", default: 0]
                >= (b0["chorus_adapter_broadcasts_received_total"] ?? 0) + 1
                && $0["chorus_adapter_broadcasts_delivered_total", default: 0]
                    >= (b0["chorus_adapter_broadcasts_delivered_total"] ?? 0) + 1
                && $0["chorus_adapter_requests_received_total", default: 0]
                    >= (b0["chorus_adapter_requests_received_total"] ?? 0) + 1
                && $0["chorus_adapter_responses_published_total", default: 0]
                    >= (b0["chorus_adapter_responses_published_total"] ?? 0) + 1
        }

        // Redis crashes and comes back: the gauge drops, then both connections log in again.
        redis.kill()
        _ = try await Self.waitFor(a, "the disconnection") { $0["chorus_adapter_redis_connected"] == 0 }
        try await redis.restart()
        _ = try await Self.waitFor(a, "the reconnection") {
            $0["chorus_adapter_redis_connected"] == 1 && $0["chorus_adapter_reconnects_total", default: 0] >= 2
        }

        // Without a cluster adapter there is nothing to report.
        let single = try await E2E.server(["--jwt-secret", E2E.secret, "--api-token", E2E.apiToken])
        defer { single.kill() }
        #expect(try Self.adapterSamples(single).isEmpty)
    }
}
