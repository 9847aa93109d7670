import ChorusCluster
import ChorusServer
import ChorusSocketIO
import CoreMetrics
import Prometheus
import Synchronization

/// Hands the loops' plain counters to swift-metrics when asked (on each scrape): counters as the
/// increase since the last call, gauges as values. The hot path never sees swift-metrics: the loops
/// only bump their own integers (`ServerStats`), and this runs on the scraping thread.
///
/// The three histograms are counted by the loops in fixed buckets already; swift-metrics has no
/// way to hand over bucket counts (only one observation at a time), so they are written into the
/// Prometheus text directly, beside the registry's output (`PrometheusText`).
public final class MetricsCollector: Sendable {
    public let server: WebSocketServer
    public let socketIO: SocketIOServer?
    /// Refused JWTs by reason (the realtime application's), if any.
    private let jwtFailures: (@Sendable () -> [String: Int])?
    /// The cluster adapter's counters (`RedisAdapter.publishedCounters`), with `--adapter redis`.
    public let cluster: (@Sendable () -> ClusterCounters)?
    private let factory: any MetricsFactory
    /// The registry `render()` writes, when the factory is swift-prometheus' (`ChorusPrometheusFactory`).
    private let registry: PrometheusCollectorRegistry?
    private let state: Mutex<State>

    public init(
        server: WebSocketServer, socketIO: SocketIOServer? = nil, jwtFailures: (@Sendable () -> [String: Int])? = nil,
        cluster: (@Sendable () -> ClusterCounters)? = nil, factory: any MetricsFactory
    ) {
        self.server = server
        self.socketIO = socketIO
        self.jwtFailures = jwtFailures
        self.cluster = cluster
        self.factory = factory
        registry = (factory as? ChorusPrometheusFactory)?.registry
        state = Mutex(State(factory: factory))
    }

    /// Pushes the current values into swift-metrics. Safe from any thread (serialised).
    public func update() {
        let total = server.stats
        let perLoop = server.statsPerLoop
        let sio = socketIO.map { io in
            (io.stats, io.eventCounters, io.namespaceNames.map { ns in (ns, io.of(ns).socketCount) })
        }
        let recovery =
            socketIO.map { io in io.namespaceNames.compactMap { ns in io.of(ns).recoveryCounters.map { (ns, $0) } } }
            ?? []
        let jwt = jwtFailures?() ?? [:]
        let adapter = cluster?()
        let process = ProcessMetrics.read()
        state.withLock { w in
            let t = total
            w.gauge("chorus_connections", t.connections)
            w.gauge("chorus_loops", perLoop.count)
            w.gauge("chorus_rooms", t.rooms)
            w.gauge("chorus_queued_bytes", t.queuedBytes)
            w.gauge("chorus_queued_bytes_high_water", t.queuedBytesHighWater)
            w.count("chorus_connections_accepted_total", t.accepted)
            w.count("chorus_connections_refused_total", t.refused)
            w.count("chorus_protocol_errors_total", t.protocolErrors)
            w.count("chorus_messages_received_total", t.messagesIn)
            w.count("chorus_received_bytes_total", t.bytesIn)
            w.count("chorus_received_payload_bytes_total", t.payloadBytesIn)
            w.count("chorus_deliveries_total", t.deliveries)
            w.count("chorus_sent_bytes_total", t.bytesOut)
            w.count("chorus_broadcasts_total", t.broadcasts)
            w.count("chorus_backpressure_dropped_total", t.dropped)
            w.count("chorus_backpressure_closed_total", t.backpressureClosed)
            w.count("chorus_loop_queue_dropped_total", t.loopQueueDropped)
            w.count("chorus_loop_queue_closed_total", t.loopQueueClosed)
            w.count("chorus_compression_input_bytes_total", t.compressionBytesIn)
            w.count("chorus_compression_output_bytes_total", t.compressionBytesOut)
            w.seconds("chorus_compression_seconds_total", Double(t.compressionNanoseconds) / 1e9)
            for (i, code) in ServerStats.CloseCodes.codes.enumerated() {
                w.count("chorus_connections_closed_total", t.closesByCode[i], ["code": String(code)])
            }
            w.count("chorus_connections_closed_total", t.closesByCode[ServerStats.CloseCodes.other], ["code": "other"])
            for (i, initiator) in ["server", "peer", "none"].enumerated() {
                w.count("chorus_connections_closed_by_total", t.closesByInitiator[i], ["initiator": initiator])
            }
            for (i, status) in ServerStats.FailureStatuses.statuses.enumerated() {
                w.count("chorus_handshakes_failed_total", t.handshakesFailed[i], ["status": String(status)])
            }
            w.count(
                "chorus_handshakes_failed_total", t.handshakesFailed[ServerStats.FailureStatuses.other],
                ["status": "other"])
            for (i, loop) in perLoop.enumerated() {
                w.gauge("chorus_loop_connections", loop.connections, ["loop": String(i)])
                w.count("chorus_loop_iterations_total", loop.iterations, ["loop": String(i)])
                w.seconds("chorus_loop_busy_seconds_total", Double(loop.busyNanoseconds) / 1e9, ["loop": String(i)])
                w.seconds(
                    "chorus_loop_cpu_seconds_total", ProcessMetrics.threadCPUSeconds(loop.threadID), ["loop": String(i)]
                )
            }
            if case let (counts, events, sockets)? = sio {
                for (ns, n) in sockets { w.gauge("chorus_socketio_sockets", n, ["namespace": ns]) }
                for (key, n) in events.eventsIn.sorted(by: {
                    ($0.key.namespace, $0.key.event) < ($1.key.namespace, $1.key.event)
                }) {
                    w.count(
                        "chorus_socketio_events_received_total", n, ["namespace": key.namespace, "event": key.event])
                }
                for (key, n) in events.eventsOut.sorted(by: {
                    ($0.key.namespace, $0.key.event) < ($1.key.namespace, $1.key.event)
                }) {
                    w.count("chorus_socketio_events_sent_total", n, ["namespace": key.namespace, "event": key.event])
                }
                w.count("chorus_socketio_acks_requested_total", events.acksRequested)
                w.count("chorus_socketio_acks_received_total", events.acksReceived)
                w.count("chorus_socketio_connects_total", counts["connect"] ?? 0)
                for (key, n) in counts.sorted(by: { $0.key < $1.key }) {
                    if key.hasPrefix("connect_error:") {
                        w.count(
                            "chorus_socketio_connect_errors_total", n,
                            ["reason": String(key.dropFirst("connect_error:".count))])
                    } else if key.hasPrefix("disconnect:") {
                        w.count(
                            "chorus_socketio_disconnects_total", n,
                            ["reason": String(key.dropFirst("disconnect:".count))])
                    }
                }
            }
            for (ns, r) in recovery {
                w.count("chorus_socketio_recovered_total", r.recovered, ["namespace": ns])
                w.count("chorus_socketio_recovery_replayed_total", r.replayed, ["namespace": ns])
                for (reason, n) in [
                    ("unknown_session", r.unknownSession), ("expired", r.expired), ("offset_gone", r.offsetGone),
                    ("unavailable", r.unavailable),
                ] {
                    w.count("chorus_socketio_recovery_refused_total", n, ["namespace": ns, "reason": reason])
                }
                w.gauge("chorus_socketio_recovery_sessions", r.sessions, ["namespace": ns])
                w.gauge("chorus_socketio_recovery_log_bytes", r.bytes, ["namespace": ns])
                w.count(
                    "chorus_socketio_recovery_evicted_total", r.entriesEvicted, ["namespace": ns, "what": "entries"])
                w.count(
                    "chorus_socketio_recovery_evicted_total", r.sessionsEvicted, ["namespace": ns, "what": "sessions"])
            }
            if jwtFailures != nil {
                for (reason, n) in jwt.sorted(by: { $0.key < $1.key }) {
                    w.count("chorus_jwt_failures_total", n, ["reason": reason])
                }
            }
            if let a = adapter {
                w.gauge("chorus_adapter_redis_connected", a.redisConnected ? 1 : 0)
                w.count("chorus_adapter_broadcasts_published_total", a.broadcastsPublished)
                w.count("chorus_adapter_broadcasts_received_total", a.broadcastsReceived)
                w.count("chorus_adapter_broadcasts_delivered_total", a.broadcastsDelivered)
                w.count("chorus_adapter_requests_published_total", a.requestsPublished)
                w.count("chorus_adapter_requests_received_total", a.requestsReceived)
                w.count("chorus_adapter_responses_published_total", a.responsesPublished)
                w.count("chorus_adapter_responses_received_total", a.responsesReceived)
                w.count("chorus_adapter_requests_timed_out_total", a.requestsTimedOut)
                w.count("chorus_adapter_malformed_total", a.malformed)
                w.count("chorus_adapter_reconnects_total", a.reconnects)
                w.count("chorus_adapter_publish_drops_total", a.publishDrops)
                w.gauge("chorus_adapter_publish_queue", a.publishQueue)
            }
            w.gauge("process_resident_memory_bytes", process.residentMemoryBytes)
            w.gauge("process_virtual_memory_bytes", process.virtualMemoryBytes)
            w.gauge("process_open_fds", process.openFDs)
            w.gauge("process_max_fds", process.maxFDs)
            w.seconds("process_cpu_seconds_total", process.cpuSeconds)
            w.gauge("process_start_time_seconds", process.startTimeSeconds)
        }
    }

    /// `update()`, then the Prometheus text format 0.0.4: the registry's metrics and the histograms.
    public func render() -> [UInt8] {
        update()
        var out: [UInt8] = []
        registry?.emit(into: &out)
        let t = server.stats
        PrometheusText.histogram(
            into: &out, MetricCatalog.entry("chorus_loop_events_per_iteration"),
            bounds: ServerStats.Histograms.eventsBounds.map(Double.init),
            buckets: t.eventsPerIteration, sum: Double(t.events))
        PrometheusText.histogram(
            into: &out, MetricCatalog.entry("chorus_loop_iteration_seconds"),
            bounds: ServerStats.Histograms.iterationTimeBounds.map { Double($0) / 1e9 },
            buckets: t.iterationTime, sum: Double(t.busyNanoseconds) / 1e9)
        PrometheusText.histogram(
            into: &out, MetricCatalog.entry("chorus_broadcast_recipients"),
            bounds: ServerStats.Histograms.fanoutBounds.map(Double.init),
            buckets: t.fanout, sum: Double(t.broadcastRecipients))
        if let a = cluster?() {
            PrometheusText.histogram(
                into: &out, MetricCatalog.entry("chorus_adapter_request_seconds"),
                bounds: ClusterCounters.requestSecondsBounds,
                buckets: a.requestLatency, sum: Double(a.requestNanoseconds) / 1e9)
        }
        return out
    }

    /// The content type of `render()`'s output.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"
}

/// Turns totals into swift-metrics calls: a counter gets the increase since the last update, a
/// gauge its value. Handles are made on first use and kept (one per name and label set).
/// Unchecked Sendable: only ever used inside the collector's `Mutex` (swift-metrics handles are not
/// all declared Sendable).
private struct State: @unchecked Sendable {
    let factory: any MetricsFactory
    var lastCounts: [String: Double] = [:]
    var counters: [String: CoreMetrics.Counter] = [:]
    var floatCounters: [String: FloatingPointCounter] = [:]
    var gauges: [String: CoreMetrics.Gauge] = [:]

    init(factory: any MetricsFactory) { self.factory = factory }

    private static func key(_ name: String, _ labels: KeyValuePairs<String, String>) -> String {
        labels.reduce(name) { $0 + "|" + $1.key + "=" + $1.value }
    }

    mutating func count(_ name: String, _ total: Int, _ labels: KeyValuePairs<String, String> = [:]) {
        let key = Self.key(name, labels)
        let counter =
            counters[key]
            ?? {
                let c = CoreMetrics.Counter(
                    label: name, dimensions: labels.map { ($0.key, $0.value) }, factory: factory)
                counters[key] = c
                return c
            }()
        let delta = Double(total) - (lastCounts[key] ?? 0)
        if delta > 0 { counter.increment(by: Int64(delta)) }
        lastCounts[key] = Double(total)
    }

    mutating func seconds(_ name: String, _ total: Double, _ labels: KeyValuePairs<String, String> = [:]) {
        let key = Self.key(name, labels)
        let counter =
            floatCounters[key]
            ?? {
                let c = FloatingPointCounter(
                    label: name, dimensions: labels.map { ($0.key, $0.value) }, factory: factory)
                floatCounters[key] = c
                return c
            }()
        let delta = total - (lastCounts[key] ?? 0)
        if delta > 0 { counter.increment(by: delta) }
        lastCounts[key] = total
    }

    mutating func gauge(_ name: String, _ value: some BinaryInteger, _ labels: KeyValuePairs<String, String> = [:]) {
        gauge(name, Double(value), labels)
    }

    mutating func gauge(_ name: String, _ value: Double, _ labels: KeyValuePairs<String, String> = [:]) {
        let key = Self.key(name, labels)
        let gauge =
            gauges[key]
            ?? {
                let g = CoreMetrics.Gauge(label: name, dimensions: labels.map { ($0.key, $0.value) }, factory: factory)
                gauges[key] = g
                return g
            }()
        gauge.record(value)
    }
}
