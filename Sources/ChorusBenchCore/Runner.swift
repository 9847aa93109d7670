// The load generator's two runs (`FanoutRunner`, `ConnectRunner`) and what they share: the fleet
// of worker loops, progress lines, the result records and their JSON. Over the ~400-line guide
// by a little: the two runs are short and read best beside the fleet they drive.

import CZlib
import ChorusLoop
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

public struct BenchError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

/// The figures of one fanout run.
public struct FanoutResult: Sendable {
    public var plan: LoadPlan
    public var stats: WorkerStats
    public var ledger: DeliveryLedger
    public var openReceivers: Int
    public var openPublishers: Int
    public var measuredSeconds: Double
    public var generatorCPUSeconds: Double
    public var serverCPUSeconds: Double?
    public var closedDuringRun: Int

    public var deliveriesPerSecond: Double { Double(stats.receivedInWindow) / measuredSeconds }
    public var messagesPerSecond: Double { Double(ledger.sentInWindow) / measuredSeconds }
    public var payloadMBps: Double { Double(stats.payloadBytes) / measuredSeconds / 1e6 }
    public var wireMBps: Double { Double(stats.wireBytes) / measuredSeconds / 1e6 }
    public var serverMicrosPerDelivery: Double? {
        guard let s = serverCPUSeconds, stats.receivedInWindow > 0 else { return nil }
        return s * 1e6 / Double(stats.receivedInWindow)
    }
    public var missedRatio: Double { ledger.expected == 0 ? 0 : Double(ledger.missed) / Double(ledger.expected) }
    public var errors: Int {
        stats.protocolErrors + stats.connectFailures + stats.handshakeFailures + stats.serverCloses + stats.disconnects
    }

    public func table() -> String {
        let l = stats.latency
        func f(_ v: Double, _ d: Int = 1) -> String { format(v, decimals: d) }
        var lines: [String] = []
        let mode = plan.window > 0 ? "window \(plan.window)" : "rate \(f(plan.rate, 0))/s"
        lines.append(
            "\(plan.modeName)  \(openReceivers) receivers, \(openPublishers) publishers, \(plan.size) B, \(mode), deflate \(plan.deflate ? "offered (\(stats.deflateAccepted) accepted)" : "off"), \(plan.threads) thread(s), \(f(measuredSeconds)) s measured"
        )
        lines.append("  messages sent        \(ledger.sentInWindow)  (\(f(messagesPerSecond, 0))/s)")
        lines.append("  deliveries           \(stats.receivedInWindow)  (\(f(deliveriesPerSecond, 0))/s)")
        lines.append(
            "  payload / wire       \(f(payloadMBps, 2)) MB/s / \(f(wireMBps, 2)) MB/s  (\(stats.compressedMessages) compressed)"
        )
        lines.append(
            "  latency µs           p50 \(f(l.percentileMicros(50))) p90 \(f(l.percentileMicros(90))) p99 \(f(l.percentileMicros(99))) p99.9 \(f(l.percentileMicros(99.9))) max \(f(l.maxMicros))"
        )
        for (i, n) in stats.latencyByServer.enumerated() {
            lines.append(
                "  server \(i + 1) µs          p50 \(f(n.percentileMicros(50))) p90 \(f(n.percentileMicros(90))) p99 \(f(n.percentileMicros(99))) p99.9 \(f(n.percentileMicros(99.9))) max \(f(n.maxMicros))  (\(n.count) deliveries)"
            )
        }
        lines.append(
            "  missed deliveries    \(ledger.missed) of \(ledger.expected) (\(f(missedRatio * 100, 4)) %)\(ledger.surplus > 0 ? ", surplus \(ledger.surplus)" : "")"
        )
        lines.append(
            "  errors               protocol \(stats.protocolErrors), connect \(stats.connectFailures), handshake \(stats.handshakeFailures), server closes \(stats.serverCloses), disconnects \(stats.disconnects), stalls \(stats.stalls)"
        )
        lines.append(
            "  generator CPU        \(f(generatorCPUSeconds, 2)) s (\(f(generatorCPUSeconds / measuredSeconds * 100, 0)) % of one core)"
        )
        if let s = serverCPUSeconds {
            lines.append(
                "  server CPU           \(f(s, 2)) s (\(f(s / measuredSeconds * 100, 0)) % of one core), \(f(serverMicrosPerDelivery ?? 0, 3)) µs per delivery"
            )
        }
        if let e = stats.firstError { lines.append("  first error          \(e)") }
        return lines.joined(separator: "\n")
    }

    public func json() -> String {
        let l = stats.latency
        var o = JSONObject()
        o.add("mode", plan.modeName);
        o.add("url", "ws://\(plan.url.host):\(plan.url.port)\(plan.socketIO?.path ?? plan.url.path)")
        o.add("receivers", openReceivers); o.add("publishers", openPublishers); o.add("size", plan.size)
        o.add("window", plan.window); o.add("rate", plan.rate); o.add("deflate", plan.deflate)
        o.add("deflate_accepted", stats.deflateAccepted); o.add("threads", plan.threads)
        o.add("measured_s", measuredSeconds); o.add("messages_sent", Int(ledger.sentInWindow))
        o.add("messages_per_s", messagesPerSecond); o.add("deliveries", Int(stats.receivedInWindow))
        o.add("deliveries_per_s", deliveriesPerSecond); o.add("payload_MBps", payloadMBps); o.add("wire_MBps", wireMBps)
        o.add("compressed_messages", Int(stats.compressedMessages))
        o.add("latency_us_p50", l.percentileMicros(50)); o.add("latency_us_p90", l.percentileMicros(90))
        o.add("latency_us_p99", l.percentileMicros(99)); o.add("latency_us_p999", l.percentileMicros(99.9))
        o.add("latency_us_max", l.maxMicros); o.add("latency_us_mean", l.meanMicros)
        for (i, n) in stats.latencyByServer.enumerated() {
            o.add("server\(i + 1)_latency_us_p50", n.percentileMicros(50));
            o.add("server\(i + 1)_latency_us_p99", n.percentileMicros(99))
            o.add("server\(i + 1)_deliveries", Int(n.count))
        }
        o.add("expected_deliveries", Int(ledger.expected)); o.add("missed", Int(ledger.missed));
        o.add("surplus", Int(ledger.surplus))
        o.add("protocol_errors", stats.protocolErrors); o.add("connect_failures", stats.connectFailures)
        o.add("handshake_failures", stats.handshakeFailures); o.add("server_closes", stats.serverCloses)
        o.add("disconnects", stats.disconnects); o.add("stalls", stats.stalls)
        o.add("generator_cpu_s", generatorCPUSeconds)
        if let s = serverCPUSeconds { o.add("server_cpu_s", s) }
        if let u = serverMicrosPerDelivery { o.add("server_cpu_us_per_delivery", u) }
        if let e = stats.firstError { o.add("first_error", e) }
        return o.string
    }
}

public func format(_ v: Double, decimals: Int) -> String {
    if !v.isFinite { return "nan" }
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let r = (abs(v) * scale).rounded()
    let whole = Int(r / scale)
    var s = (v < 0 && r > 0 ? "-" : "") + String(whole)
    if decimals > 0 {
        let frac = Int(r - Double(whole) * scale)
        var fs = String(frac)
        while fs.count < decimals { fs = "0" + fs }
        s += "." + fs
    }
    return s
}

/// Minimal JSON object writer (one line).
public struct JSONObject {
    var parts: [String] = []
    public init() {}
    static func quote(_ s: String) -> String {
        var out = "\""
        for ch in s.unicodeScalars {
            switch ch {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default:
                if ch.value < 0x20 {
                    out += "\\u00" + (ch.value < 16 ? "0" : "") + String(ch.value, radix: 16)
                } else {
                    out.unicodeScalars.append(ch)
                }
            }
        }
        return out + "\""
    }
    public mutating func add(_ k: String, _ v: String) { parts.append("\(Self.quote(k)):\(Self.quote(v))") }
    public mutating func add(_ k: String, _ v: Int) { parts.append("\(Self.quote(k)):\(v)") }
    public mutating func add(_ k: String, _ v: Bool) { parts.append("\(Self.quote(k)):\(v)") }
    public mutating func add(_ k: String, _ v: Double) {
        parts.append("\(Self.quote(k)):\(v.isFinite ? format(v, decimals: 3) : "null")")
    }
    public var string: String { "{" + parts.joined(separator: ",") + "}" }
}

func sleepSeconds(_ s: Double) {
    guard s > 0 else { return }
    var ts = timespec(tv_sec: Int(s), tv_nsec: Int((s - Double(Int(s))) * 1e9))
    var rem = timespec()
    while nanosleep(&ts, &rem) != 0 && errno == EINTR { ts = rem }
}

func sleepUntil(_ t: UInt64) {
    let now = monotonicNanoseconds()
    if t > now { sleepSeconds(Double(t - now) / 1e9) }
}

func log(_ s: String) {
    var line = s + "\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

/// Builds the workers and their connections (publishers first, spread round-robin) and starts them.
final class Fleet {
    let control = RunControl()
    @exclusivity(unchecked) var workers: [Worker] = []
    @exclusivity(unchecked) var threads: [LoopThread] = []

    init(plan: LoadPlan, total: Int, publishers: Int) throws {
        let servers = try ([plan.url] + plan.alsoURLs).map { url throws(IOError) in
            try SocketAddress(host: url.host, port: url.port)
        }
        let sources = try plan.sourceAddresses.map { host throws(IOError) in try SocketAddress(host: host, port: 0) }
        for i in 0..<plan.threads {
            workers.append(
                try Worker(
                    index: i, plan: plan, control: control, servers: servers, sources: sources,
                    share: 1.0 / Double(plan.threads)))
        }
        control.publisherHomes = []
        for g in 0..<total {
            let w = workers[g % plan.threads]
            let role: Role = g < publishers ? .publisher(g) : .receiver
            let c = Connection(index: w.conns.count, id: g, role: role)
            w.conns.append(c)
            if g < publishers {
                w.publishers.append(c)
                control.publisherHomes.append((w, c))
            }
        }
    }

    func start() {
        control.connectStart = monotonicNanoseconds()
        for w in workers {
            threads.append(
                LoopThread(name: "bench-\(w.loop.index)") {
                    do { try w.loop.run(delegate: w) } catch { log("chorus-bench: loop failed: \(error)") }
                })
        }
    }

    var opened: Int { workers.reduce(0) { $0 + $1.progress.opened.load(ordering: .relaxed) } }
    var failed: Int { workers.reduce(0) { $0 + $1.progress.failed.load(ordering: .relaxed) } }
    var openedPublishers: Int { workers.reduce(0) { $0 + $1.progress.openedPublishers.load(ordering: .relaxed) } }
    var closed: Int { workers.reduce(0) { $0 + $1.progress.closed.load(ordering: .relaxed) } }

    var received: UInt64 { workers.reduce(0) { $0 + $1.progress.received.load(ordering: .relaxed) } }
    /// The highest of the workers' p99s (exact with one generator thread), in microseconds.
    var p99Micros: Double {
        Double(workers.map { $0.progress.p99Nanoseconds.load(ordering: .relaxed) }.max() ?? 0) / 1000
    }

    /// Waits until every connection is open or failed, or the timeout; prints progress to stderr
    /// (or on the progress line, when there is one).
    func waitForConnections(total: Int, timeout: Double, quiet: Bool, progress: ProgressReporter? = nil) -> UInt64 {
        let deadline = monotonicNanoseconds() + UInt64(timeout * 1e9)
        var lastLog = monotonicNanoseconds()
        while opened + failed < total && monotonicNanoseconds() < deadline {
            sleepSeconds(0.01)
            if let progress {
                progress.tick(self, total: total)
            } else if !quiet && monotonicNanoseconds() - lastLog > 1_000_000_000 {
                lastLog = monotonicNanoseconds()
                log("chorus-bench: \(opened) open, \(failed) failed of \(total)")
            }
        }
        return monotonicNanoseconds()
    }

    /// Sleeps until `deadline`, updating the progress line (if any) on the way.
    func sleep(until deadline: UInt64, total: Int, progress: ProgressReporter?) {
        guard let progress else { return sleepUntil(deadline) }
        while monotonicNanoseconds() < deadline {
            progress.tick(self, total: total)
            sleepSeconds(min(0.05, Double(deadline &- monotonicNanoseconds()) / 1e9))
        }
    }

    func stop() -> WorkerStats {
        for w in workers { w.loop.stop() }
        for t in threads { t.join() }
        var total = WorkerStats()
        for w in workers {
            w.abortAll()
            total.merge(w.stats)
        }
        return total
    }

    func openCount(publishers: Bool) -> Int {
        workers.reduce(0) { acc, w in acc + w.conns.filter { $0.ready && $0.isPublisher == publishers }.count }
    }
}

/// Writes the progress line once a second to `write` (the run's terminal), from the thread that
/// coordinates the run.
public final class ProgressReporter {
    @exclusivity(unchecked) private var line = ProgressLine()
    @exclusivity(unchecked) private var nextAt: UInt64 = 0
    private let write: (String) -> Void

    public init(write: @escaping (String) -> Void) { self.write = write }

    func tick(_ fleet: Fleet, total: Int) {
        let now = monotonicNanoseconds()
        guard now >= nextAt else { return }
        nextAt = now + 1_000_000_000
        write(
            line.update(
                now: now, opened: fleet.opened, total: total, received: fleet.received, p99Micros: fleet.p99Micros))
    }

    func finish() { write(line.clear()) }
}

public enum FanoutRunner {
    /// `progress`: where the once-a-second progress line goes (nil: none, as in `--json` mode or
    /// when standard output is not a terminal).
    public static func run(_ plan: LoadPlan, serverPID: Int32?, quiet: Bool = false, progress: ProgressReporter? = nil)
        throws -> FanoutResult
    {
        ResourceLimits.raiseOpenFileLimit()
        let total = plan.receivers + plan.publishers
        let fleet = try Fleet(plan: plan, total: total, publishers: plan.publishers)
        fleet.start()
        defer { progress?.finish() }
        _ = fleet.waitForConnections(total: total, timeout: plan.connectTimeout, quiet: quiet, progress: progress)
        // Connection state is read from this thread only as a count published by the loops.
        let openedAll = fleet.opened
        let failedAll = fleet.failed
        if !quiet && progress == nil { log("chorus-bench: \(openedAll) connections open, \(failedAll) failed") }
        let openPublishers = fleet.openedPublishers
        let openReceivers = openedAll - openPublishers
        guard openReceivers > 0, openPublishers > 0 else {
            let stats = fleet.stop()
            throw BenchError(
                "could not open connections: \(openedAll) open, \(failedAll) failed; first error: \(stats.firstError ?? "none")"
            )
        }
        let control = fleet.control
        let now = monotonicNanoseconds()
        control.sendStart = now + 5_000_000
        control.window = MeasureWindow(
            start: control.sendStart + UInt64(plan.warmup * 1e9),
            end: control.sendStart + UInt64((plan.warmup + plan.duration) * 1e9))
        if plan.window > 0 {
            control.tracker = WindowTracker(publishers: plan.publishers, receivers: openReceivers, window: plan.window)
        }
        control.go.store(true, ordering: .releasing)

        fleet.sleep(until: control.window.start, total: total, progress: progress)
        let cpu0 = ProcessStats.selfCPUSeconds()
        let server0 = serverPID.flatMap { ProcessStats.cpuSeconds(pid: $0) }
        let closed0 = fleet.closed
        fleet.sleep(until: control.window.end, total: total, progress: progress)
        let cpu1 = ProcessStats.selfCPUSeconds()
        let server1 = serverPID.flatMap { ProcessStats.cpuSeconds(pid: $0) }

        // Drain: let in-flight messages of the measured window arrive.
        // Ends when everything arrived, or nothing arrived for `drain` seconds (then the rest is
        // missed), or after 60 s at most: late messages are not counted as missed while they flow.
        let hardEnd = monotonicNanoseconds() + 60_000_000_000
        var lastGot: UInt64 = 0
        var lastProgress = monotonicNanoseconds()
        sleepSeconds(0.02)
        while monotonicNanoseconds() < hardEnd {
            let sent = fleet.workers.reduce(UInt64(0)) { $0 + $1.progress.sentInWindow.load(ordering: .relaxed) }
            let got = fleet.workers.reduce(UInt64(0)) { $0 + $1.progress.receivedInWindow.load(ordering: .relaxed) }
            if got >= sent * UInt64(openReceivers) { break }
            let now = monotonicNanoseconds()
            if got != lastGot { lastGot = got; lastProgress = now }
            if now - lastProgress > UInt64(plan.drain * 1e9) { break }
            sleepSeconds(0.02)
        }
        let closedDuring = fleet.closed - closed0
        let stats = fleet.stop()
        var ledger = DeliveryLedger(receivers: openReceivers)
        ledger.sentInWindow = stats.sentInWindow
        ledger.receivedInWindow = stats.receivedInWindow
        var serverCPU: Double?
        if let a = server0, let b = server1 { serverCPU = b - a }
        return FanoutResult(
            plan: plan, stats: stats, ledger: ledger, openReceivers: openReceivers,
            openPublishers: openPublishers, measuredSeconds: Double(control.window.end - control.window.start) / 1e9,
            generatorCPUSeconds: cpu1 - cpu0, serverCPUSeconds: serverCPU, closedDuringRun: closedDuring)
    }
}

/// The figures of one connect run.
public struct ConnectResult: Sendable {
    public var url: WebSocketURL
    public var requested: Int
    public var opened: Int
    public var stats: WorkerStats
    public var seconds: Double
    public var rssBefore: Int?
    public var rssAfter: Int?
    public var closedDuringHold: Int
    public var hold: Double

    public var connectionsPerSecond: Double { seconds > 0 ? Double(opened) / seconds : 0 }
    public var failures: Int { requested - opened }
    public var rssPerConnection: Double? {
        guard let a = rssBefore, let b = rssAfter, opened > 0 else { return nil }
        return Double(b - a) / Double(opened)
    }

    public func table() -> String {
        func f(_ v: Double, _ d: Int = 1) -> String { format(v, decimals: d) }
        let h = stats.handshakeLatency
        var lines = [
            "connect  \(opened) of \(requested) open in \(f(seconds, 2)) s (\(f(connectionsPerSecond, 0))/s), held \(f(hold)) s, \(closedDuringHold) closed while held"
        ]
        lines.append(
            "  failures             \(failures) (connect \(stats.connectFailures), handshake \(stats.handshakeFailures))"
        )
        lines.append(
            "  connect+upgrade µs   p50 \(f(h.percentileMicros(50))) p99 \(f(h.percentileMicros(99))) max \(f(h.maxMicros))"
        )
        if let a = rssBefore, let b = rssAfter {
            lines.append(
                "  server RSS           \(f(Double(a) / 1048576, 1)) MiB -> \(f(Double(b) / 1048576, 1)) MiB, \(f(rssPerConnection ?? 0, 0)) B per connection"
            )
        }
        if let e = stats.firstError { lines.append("  first error          \(e)") }
        return lines.joined(separator: "\n")
    }

    public func json() -> String {
        var o = JSONObject()
        o.add("mode", "connect"); o.add("requested", requested); o.add("opened", opened); o.add("failures", failures)
        o.add("seconds", seconds); o.add("connections_per_s", connectionsPerSecond); o.add("hold_s", hold)
        o.add("closed_during_hold", closedDuringHold)
        o.add("handshake_us_p50", stats.handshakeLatency.percentileMicros(50))
        o.add("handshake_us_p99", stats.handshakeLatency.percentileMicros(99))
        if let a = rssBefore { o.add("server_rss_before", a) }
        if let b = rssAfter { o.add("server_rss_after", b) }
        if let r = rssPerConnection { o.add("server_rss_per_connection", r) }
        if let e = stats.firstError { o.add("first_error", e) }
        return o.string
    }
}

public enum ConnectRunner {
    public static func run(
        url: WebSocketURL, connections: Int, rate: Double, hold: Double, threads: Int, sourceAddresses: [String],
        deflate: Bool, timeout: Double, serverPID: Int32?, quiet: Bool = false
    ) throws -> ConnectResult {
        ResourceLimits.raiseOpenFileLimit()
        let plan = LoadPlan(
            url: url, receivers: connections, publishers: 0, size: 64, duration: 0, warmup: 0,
            threads: threads, deflate: deflate, sourceAddresses: sourceAddresses,
            connectRate: rate, connectTimeout: timeout)
        let rssBefore = serverPID.flatMap { ProcessStats.rssBytes(pid: $0) }
        let fleet = try Fleet(plan: plan, total: connections, publishers: 0)
        let start = monotonicNanoseconds()
        fleet.start()
        let end = fleet.waitForConnections(total: connections, timeout: timeout, quiet: quiet)
        let opened = fleet.opened
        let closed0 = fleet.closed
        sleepSeconds(hold)
        let rssAfter = serverPID.flatMap { ProcessStats.rssBytes(pid: $0) }
        let closedDuring = fleet.closed - closed0
        let stats = fleet.stop()
        return ConnectResult(
            url: url, requested: connections, opened: opened, stats: stats,
            seconds: Double(end - start) / 1e9, rssBefore: rssBefore, rssAfter: rssAfter,
            closedDuringHold: closedDuring, hold: hold)
    }
}
