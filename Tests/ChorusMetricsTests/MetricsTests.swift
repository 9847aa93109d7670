import ChorusLoop
import ChorusMetrics
import ChorusServer
import ChorusTestSupport
import Foundation
import Glibc
import Logging
import Synchronization
import Testing

@testable import ChorusCluster

/// An in-process broadcast server with the operator routes, as `chorus serve` wires them.
private func startObservedServer(threads: Int = 2, token: String = "secret") throws -> (
    WebSocketServer, MetricsCollector
) {
    var config = ServerConfiguration()
    config.host = "127.0.0.1"
    config.port = 0
    config.threads = threads
    config.shutdownDrain = 1
    let server = WebSocketServer(configuration: config, application: BroadcastApplication())
    let collector = MetricsCollector(server: server, factory: ChorusPrometheusFactory())
    let routes = OperatorRoutes(collector: collector, tokens: [token])
    server.operatorRoutes = { request, _ in routes.handle(request) }
    try server.start()
    return (server, collector)
}

/// The value of an unlabelled sample (or one with exactly `labels`) in Prometheus text.
private func sample(_ text: String, _ name: String, _ labels: String = "") -> Double? {
    let prefix = labels.isEmpty ? name + " " : name + "{" + labels + "} "
    for line in text.split(separator: "\n") where line.hasPrefix(prefix) {
        return Double(line.dropFirst(prefix.count))
    }
    return nil
}

private func get(_ port: Int, _ path: String, token: String?) throws -> String {
    let tcp = try RawTCPConnection(port: UInt16(port))
    var request = "GET \(path) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    if let token { request += "Authorization: Bearer \(token)\r\n" }
    try tcp.send(request + "\r\n")
    return String(decoding: try tcp.readToEOF(), as: UTF8.self)
}

@Suite("Metrics") struct MetricsTests {
    @Test("counters move with traffic: connections, messages, deliveries, bytes, broadcasts, fan-out")
    func countersMove() async throws {
        let (server, collector) = try startObservedServer()
        defer { server.shutdown() }
        let before = String(decoding: collector.render(), as: UTF8.self)
        #expect(sample(before, "chorus_connections") == 0)
        let clients = try (0..<3).map { _ in try BlockingWebSocketClient(port: server.port) }
        try clients[0].send(text: "hello")
        for c in clients { #expect(try await c.text() == "hello") }
        // Loops publish at the end of each iteration; wait for the last delivery to be counted.
        var text = ""
        for _ in 0..<100 {
            text = String(decoding: collector.render(), as: UTF8.self)
            // Both loops too: the one without recipients counts the broadcast when its forwarded copy arrives.
            if sample(text, "chorus_deliveries_total") ?? 0 >= 3 && sample(text, "chorus_sent_bytes_total") ?? 0 > 0
                && sample(text, "chorus_broadcasts_total") ?? 0 >= 2
            {
                break
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(sample(text, "chorus_connections") == 3)
        #expect(sample(text, "chorus_connections_accepted_total") == 3)
        #expect(sample(text, "chorus_messages_received_total") == 1)
        #expect(sample(text, "chorus_received_payload_bytes_total") == 5)
        #expect(sample(text, "chorus_deliveries_total") == 3)
        #expect(sample(text, "chorus_broadcasts_total") == 2)  // one per loop
        #expect(sample(text, "chorus_broadcast_recipients_sum") == 3)
        #expect(sample(text, "chorus_broadcast_recipients_count") == 2)
        #expect((sample(text, "chorus_received_bytes_total") ?? 0) > 0)
        #expect(sample(text, "chorus_loops") == 2)
        #expect((sample(text, "chorus_loop_iterations_total", "loop=\"0\"") ?? 0) > 0)
        #expect(sample(text, "chorus_loop_cpu_seconds_total", "loop=\"1\"") != nil)
        #expect((sample(text, "process_resident_memory_bytes") ?? 0) > 1_000_000)
        #expect((sample(text, "process_open_fds") ?? 0) > 3)
        #expect((sample(text, "process_start_time_seconds") ?? 0) > 1_600_000_000)
        #expect(text.contains("# HELP chorus_deliveries_total Messages queued to a recipient"))
        #expect(text.contains("# TYPE chorus_loop_iteration_seconds histogram"))
        // Counters are deltas on top of what was handed over before: a second scrape does not double them.
        let again = String(decoding: collector.render(), as: UTF8.self)
        #expect(sample(again, "chorus_deliveries_total") == 3)

        for c in clients { c.closeNow() }
        for _ in 0..<100 {
            text = String(decoding: collector.render(), as: UTF8.self)
            if sample(text, "chorus_connections") == 0 { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(sample(text, "chorus_connections") == 0)
        #expect(sample(text, "chorus_connections_closed_total", "code=\"1000\"") == 3)
        #expect(sample(text, "chorus_connections_closed_by_total", "initiator=\"peer\"") == 3)
    }

    @Test("every catalogued chorus metric appears with HELP and TYPE")
    func everyMetricAppears() throws {
        let (server, collector) = try startObservedServer(threads: 1)
        defer { server.shutdown() }
        let text = String(decoding: collector.render(), as: UTF8.self)
        // Socket.IO, JWT and adapter metrics need their part (tested below and end to end).
        for entry in MetricCatalog.entries
        where !entry.name.hasPrefix("chorus_socketio") && !entry.name.hasPrefix("chorus_adapter")
            && entry.name != "chorus_jwt_failures_total"
        {
            #expect(text.contains("# HELP \(entry.name) "), "\(entry.name)")
            #expect(text.contains("# TYPE \(entry.name) \(entry.kind.rawValue)"), "\(entry.name)")
        }
    }

    @Test(
        "the cluster adapter's counters: every chorus_adapter_* metric, the latency histogram, the dashboard's cluster object"
    )
    func adapterCounters() throws {
        var config = ServerConfiguration()
        config.host = "127.0.0.1"
        config.port = 0
        config.threads = 1
        config.shutdownDrain = 1
        let server = WebSocketServer(configuration: config, application: BroadcastApplication())
        var counters = ClusterCounters()
        counters.redisConnected = true
        counters.broadcastsPublished = 7
        counters.broadcastsReceived = 9
        counters.reconnects = 2
        counters.publishQueue = 3
        counters.recordRequest(nanoseconds: 700_000)  // 0.7 ms: the 1 ms bucket
        counters.recordRequest(nanoseconds: 3_000_000_000)  // 3 s: the 5 s bucket
        counters.recordRequest(nanoseconds: 60_000_000_000)  // 60 s: +Inf
        let published = counters
        let collector = MetricsCollector(server: server, cluster: { published }, factory: ChorusPrometheusFactory())
        let routes = OperatorRoutes(collector: collector, tokens: ["secret"], adapter: "redis")
        server.operatorRoutes = { request, _ in routes.handle(request) }
        try server.start()
        defer { server.shutdown() }
        let text = String(decoding: collector.render(), as: UTF8.self)
        for entry in MetricCatalog.entries where entry.name.hasPrefix("chorus_adapter") {
            #expect(text.contains("# TYPE \(entry.name) \(entry.kind.rawValue)"), "\(entry.name)")
        }
        #expect(sample(text, "chorus_adapter_redis_connected") == 1)
        #expect(sample(text, "chorus_adapter_broadcasts_published_total") == 7)
        #expect(sample(text, "chorus_adapter_broadcasts_received_total") == 9)
        #expect(sample(text, "chorus_adapter_reconnects_total") == 2)
        #expect(sample(text, "chorus_adapter_publish_queue") == 3)
        #expect(sample(text, "chorus_adapter_request_seconds_bucket", "le=\"0.0005\"") == 0)
        #expect(sample(text, "chorus_adapter_request_seconds_bucket", "le=\"0.001\"") == 1)
        #expect(sample(text, "chorus_adapter_request_seconds_bucket", "le=\"2.5\"") == 1)
        #expect(sample(text, "chorus_adapter_request_seconds_bucket", "le=\"5\"") == 2)
        #expect(sample(text, "chorus_adapter_request_seconds_bucket", "le=\"10\"") == 2)
        #expect(sample(text, "chorus_adapter_request_seconds_bucket", "le=\"+Inf\"") == 3)
        #expect(sample(text, "chorus_adapter_request_seconds_count") == 3)
        #expect(sample(text, "chorus_adapter_request_seconds_sum") == 63.0007)
        let data = try get(server.port, "/api/v1/dashboard", token: "secret")
        #expect(
            data.contains("\"adapter\":\"redis\"") && data.contains("\"redisConnected\":true")
                && data.contains("\"reconnects\":2"))
    }

    @Test("/metrics on the main port: 401 without the token or with a wrong one, 200 with it")
    func metricsNeedsToken() throws {
        let (server, _) = try startObservedServer(threads: 1)
        defer { server.shutdown() }
        #expect(try get(server.port, "/metrics", token: nil).hasPrefix("HTTP/1.1 401"))
        #expect(try get(server.port, "/metrics", token: "secreT").hasPrefix("HTTP/1.1 401"))
        let ok = try get(server.port, "/metrics", token: "secret")
        #expect(ok.hasPrefix("HTTP/1.1 200"))
        #expect(ok.contains("Content-Type: text/plain; version=0.0.4"))
        #expect(ok.contains("chorus_connections "))
        #expect(try get(server.port, "/api/v1/dashboard", token: nil).hasPrefix("HTTP/1.1 401"))
        let data = try get(server.port, "/api/v1/dashboard", token: "secret")
        #expect(data.hasPrefix("HTTP/1.1 200") && data.contains("\"adapter\":\"memory\""))
        // The page itself holds no data: it is served without the token.
        let page = try get(server.port, "/dashboard", token: nil)
        #expect(page.hasPrefix("HTTP/1.1 200") && page.contains("<form id=\"login\""))
    }

    @Test("refused handshakes are counted by status")
    func refusedHandshakes() async throws {
        let (server, collector) = try startObservedServer(threads: 1)
        defer { server.shutdown() }
        let tcp = try RawTCPConnection(port: UInt16(server.port))
        // An upgrade without Sec-WebSocket-Key: 400.
        try tcp.send(
            "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        let answer = String(decoding: try tcp.readToEOF(), as: UTF8.self)
        #expect(answer.hasPrefix("HTTP/1.1 400"))
        var text = ""
        for _ in 0..<100 {
            text = String(decoding: collector.render(), as: UTF8.self)
            if sample(text, "chorus_handshakes_failed_total", "status=\"400\"") == 1 { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(sample(text, "chorus_handshakes_failed_total", "status=\"400\"") == 1)
    }
}

@Suite("Stats buckets") struct StatsBucketTests {
    @Test("events per iteration: powers of two, 1025 and more in +Inf")
    func eventsBuckets() {
        typealias H = ServerStats.Histograms
        #expect(H.eventsIndex(0) == 0 && H.eventsIndex(1) == 0)
        #expect(H.eventsIndex(2) == 1 && H.eventsIndex(3) == 2 && H.eventsIndex(4) == 2 && H.eventsIndex(5) == 3)
        #expect(H.eventsIndex(1024) == 10 && H.eventsIndex(1025) == 11)
        for n in 1...2000 {
            let i = H.eventsIndex(n)
            #expect(i == H.eventsBounds.count || n <= H.eventsBounds[i])
            #expect(i == 0 || n > H.eventsBounds[i - 1])
        }
    }

    @Test("fan-out: 0, 1, then powers of four, beyond 65536 in +Inf")
    func fanoutBuckets() {
        typealias H = ServerStats.Histograms
        for n in 0...70_000 {
            let i = H.fanoutIndex(n)
            #expect(i == H.fanoutBounds.count || n <= H.fanoutBounds[i])
            #expect(i == 0 || n > H.fanoutBounds[i - 1])
        }
    }

    @Test("iteration time: each duration in the first bucket that holds it")
    func iterationTimeBuckets() {
        typealias H = ServerStats.Histograms
        #expect(H.iterationTimeIndex(0) == 0)
        #expect(H.iterationTimeIndex(10_000) == 0 && H.iterationTimeIndex(10_001) == 1)
        #expect(H.iterationTimeIndex(2_000_000_000) == H.iterationTimeBounds.count)
    }

    @Test("close codes: the listed ones apart, the rest as other")
    func closeCodes() {
        typealias C = ServerStats.CloseCodes
        for (i, code) in C.codes.enumerated() { #expect(C.index(code) == i) }
        #expect(C.index(1004) == C.other && C.index(4000) == C.other && C.index(1012) == C.other)
    }
}

@Suite("Logs") struct LogTests {
    @Test("the rate limiter lets a burst through, counts the rest, and reports the count on the next line")
    func rateLimiter() {
        let limiter = LogRateLimiter(burst: 3, intervalSeconds: 10)
        let t0: UInt64 = 1_000_000_000
        #expect(limiter.admit("bad client", now: t0) == 0)
        #expect(limiter.admit("bad client", now: t0 + 1) == 0)
        #expect(limiter.admit("bad client", now: t0 + 2) == 0)
        for i in 0..<100 { #expect(limiter.admit("bad client", now: t0 + 3 + UInt64(i)) == nil) }
        // Another message has its own window.
        #expect(limiter.admit("token refused", now: t0 + 200) == 0)
        // A new window: the line goes out carrying the count of those held back.
        #expect(limiter.admit("bad client", now: t0 + 10_000_000_000) == 100)
        #expect(limiter.admit("bad client", now: t0 + 10_000_000_001) == 0)
    }

    @Test("JSON lines: timestamp, level, label, message, metadata; rate-limited with a suppressed count")
    func jsonLines() throws {
        let lines = Mutex<[String]>([])
        let json = JSONLogHandler(label: "chorus.test") { bytes in
            lines.withLock { $0.append(String(decoding: bytes, as: UTF8.self)) }
        }
        let limiter = LogRateLimiter(burst: 2, intervalSeconds: 3600)
        let logger = Logger(label: "chorus.test") { _ in RateLimitedLogHandler(json, limiter: limiter) }
        for i in 0..<5 { logger.info("token refused", metadata: ["address": "10.0.0.\(i)"]) }
        let out = lines.withLock { $0 }
        #expect(out.count == 2)
        let first = try #require(out.first)
        #expect(first.hasSuffix("}\n") && !first.dropLast().contains("\n"))
        #expect(first.contains(#""level":"info""#) && first.contains(#""label":"chorus.test""#))
        #expect(first.contains(#""message":"token refused""#) && first.contains(#""metadata":{"address":"10.0.0.0"}"#))
        #expect(
            first.range(of: #""timestamp":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z""#, options: .regularExpression)
                != nil)
    }
}
