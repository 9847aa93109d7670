import ChorusCluster
import ChorusJSON
import ChorusLoop
import ChorusServer
import ChorusSocketIO
import ChorusWebSocket
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The operator's routes on the main port, answered before the application's:
///
///     GET /metrics              Prometheus text (Authorization: Bearer <--metrics-token or --api-token>)
///     GET /dashboard            the live dashboard page (public: it holds no data; it asks for the token)
///     GET /api/v1/dashboard     the page's JSON, polled about once per second (same token)
///
/// With neither token configured, /metrics and the dashboard's JSON answer 401: they are only open
/// on the separate `--metrics-port` listener (`MetricsEndpoint`).
public final class OperatorRoutes: Sendable {
    public let collector: MetricsCollector
    private let tokens: [[UInt8]]
    /// The adapter that connects this server to others ("memory": none, this process only).
    public let adapter: String
    /// The largest rooms, refreshed by each dashboard poll from the loops (one poll behind).
    private let rooms = Mutex<[(name: String, members: Int)]>([])
    private let startedAt = monotonicNanoseconds()

    public static let metricsPath = "/metrics"
    public static let dashboardPath = "/dashboard"
    public static let dashboardDataPath = "/api/v1/dashboard"

    /// `tokens`: the bearer tokens accepted (empty strings and nils are ignored).
    public init(collector: MetricsCollector, tokens: [String?], adapter: String = "memory") {
        self.collector = collector
        self.tokens = tokens.compactMap { $0 }.filter { !$0.isEmpty }.map { Array($0.utf8) }
        self.adapter = adapter
    }

    /// For `WebSocketServer.operatorRoutes`: nil for any other path.
    public func handle(_ request: HTTPRequest) -> HTTPResponse? {
        switch request.head.path {
        case Self.metricsPath:
            guard request.head.method == "GET" else { return Self.methodNotAllowed }
            guard authorized(request.head) else { return Self.unauthorized }
            return Self.metricsResponse(collector)
        case Self.dashboardPath, Self.dashboardPath + "/":
            guard request.head.method == "GET" else { return Self.methodNotAllowed }
            return HTTPResponse(
                status: 200,
                headers: [
                    ("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store"),
                    // Everything is inline; nothing may be fetched from elsewhere.
                    (
                        "Content-Security-Policy",
                        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; connect-src 'self'"
                    ),
                ], body: Array(DashboardPage.html.utf8))
        case Self.dashboardDataPath:
            guard request.head.method == "GET" else { return Self.methodNotAllowed }
            guard authorized(request.head) else { return Self.unauthorized }
            return HTTPResponse(
                status: 200, headers: [("Content-Type", "application/json"), ("Cache-Control", "no-store")],
                body: dashboardData().serialized)
        default:
            return nil
        }
    }

    static func metricsResponse(_ collector: MetricsCollector) -> HTTPResponse {
        HTTPResponse(status: 200, headers: [("Content-Type", MetricsCollector.contentType)], body: collector.render())
    }

    static let unauthorized = HTTPResponse(
        status: 401, headers: [("Content-Type", "application/json"), ("WWW-Authenticate", "Bearer")],
        body: Array(#"{"error":"unauthorized"}"#.utf8))
    static let methodNotAllowed = HTTPResponse(
        status: 405, headers: [("Content-Type", "application/json"), ("Allow", "GET")],
        body: Array(#"{"error":"method not allowed"}"#.utf8))

    func authorized(_ head: HTTPRequestHead) -> Bool {
        guard !tokens.isEmpty, let header = head.value(of: "authorization") else { return false }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return false }
        var given = Substring(parts[1])
        while given.last == " " || given.last == "\t" { given.removeLast() }
        let bytes = Array(given.utf8)
        // Every token is compared whole, whichever matches: the time does not tell which.
        var match = false
        for token in tokens { match = Self.constantTimeEquals(bytes, token) || match }
        return match
    }

    static func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var diff = UInt8(a.count == b.count ? 0 : 1)
        for i in 0..<max(a.count, b.count) {
            diff |= (i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 0)
        }
        return diff == 0
    }

    /// What the dashboard shows: totals (the page turns them into rates), per-loop counters, the
    /// largest rooms, Socket.IO sockets, the process.
    func dashboardData() -> JSONValue {
        let server = collector.server
        server.largestRooms(limit: 10) { [self] top in rooms.withLock { $0 = top } }
        let t = server.stats
        let process = ProcessMetrics.read()
        var loops: [JSONValue] = []
        for (i, loop) in server.statsPerLoop.enumerated() {
            loops.append([
                "loop": JSONValue(i), "connections": JSONValue(loop.connections),
                "busySeconds": .double(Double(loop.busyNanoseconds) / 1e9), "iterations": JSONValue(loop.iterations),
            ])
        }
        let roomList: [JSONValue] = rooms.withLock { $0 }.map {
            ["name": .string($0.name), "members": JSONValue($0.members)]
        }
        var namespaces = JSONObject()
        if let io = collector.socketIO {
            for ns in io.namespaceNames { namespaces[ns] = JSONValue(io.of(ns).socketCount) }
        }
        let o: JSONObject = [
            "uptimeSeconds": .double(Double(monotonicNanoseconds() - startedAt) / 1e9),
            "connections": JSONValue(t.connections),
            "accepted": JSONValue(t.accepted),
            "messagesIn": JSONValue(t.messagesIn),
            "deliveries": JSONValue(t.deliveries),
            "broadcasts": JSONValue(t.broadcasts),
            "bytesIn": JSONValue(t.bytesIn),
            "bytesOut": JSONValue(t.bytesOut),
            "dropped": JSONValue(t.dropped),
            "backpressureClosed": JSONValue(t.backpressureClosed),
            "queuedBytes": JSONValue(t.queuedBytes),
            "queuedBytesHighWater": JSONValue(t.queuedBytesHighWater),
            "compressionIn": JSONValue(t.compressionBytesIn),
            "compressionOut": JSONValue(t.compressionBytesOut),
            "rooms": .array(roomList),
            "roomCount": JSONValue(t.rooms),
            "loops": .array(loops),
            "socketio": .object(namespaces),
            "adapter": .string(adapter),
            // The Redis adapter's counters as its loop last published them; null without one.
            "cluster": collector.cluster.map { $0().json } ?? .null,
            "process": [
                "rssBytes": JSONValue(process.residentMemoryBytes), "openFDs": JSONValue(process.openFDs),
                "cpuSeconds": .double(process.cpuSeconds),
            ],
        ]
        return .object(o)
    }
}
