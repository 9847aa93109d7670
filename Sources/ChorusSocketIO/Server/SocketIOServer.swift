import ChorusJSON
import ChorusLoop
import ChorusServer
import ChorusWebSocket
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

public struct SocketIOConfiguration: Sendable {
    /// The Engine.IO endpoint (`/socket.io/`); with or without the trailing slash.
    public var path = "/socket.io/"
    /// Seconds between server pings (Engine.IO `pingInterval`).
    public var pingInterval = 25.0
    /// Seconds the client has to answer a ping (Engine.IO `pingTimeout`).
    public var pingTimeout = 20.0
    /// Largest message in bytes (Engine.IO `maxPayload`); larger ones close the connection (1009).
    public var maxPayload = 1_000_000
    /// Seconds a client has to connect to a namespace after the Engine.IO handshake.
    public var connectTimeout = 45.0
    /// Binary attachments per packet at most.
    public var maxAttachments = 10
    /// Packets a client may send to a namespace whose CONNECT awaits an asynchronous middleware
    /// (`Namespace.use(async:)`); they are replayed once it is accepted. Beyond this count, or
    /// beyond maxPayload bytes in all, the connection is closed (1008, "transport error").
    public var maxPendingPackets = 16
    /// Seconds an asynchronous connection middleware (`Namespace.use(async:)`) may take; beyond,
    /// the CONNECT is refused with CONNECT_ERROR "middleware timeout" and the middleware's task is
    /// cancelled (its late result is dropped). 0: no limit.
    public var middlewareTimeout = 10.0
    /// Largest message a client may send before its first namespace CONNECT succeeds (0: maxPayload):
    /// enough for a CONNECT carrying a token, far less than a message an unauthenticated client
    /// could otherwise make the server assemble. Beyond it: 1009.
    public var maxPayloadBeforeConnect = 16 * 1024
    /// Connection state recovery (Socket.IO's `connectionStateRecovery`): nil is off, and then no
    /// offset or `pid` is on the wire.
    public var recovery: RecoveryConfiguration?

    public init() {}

    /// The WebSocket layer's message limit to configure (`ServerConfiguration.maxMessageSize`):
    /// maxPayload itself. The reader cuts a larger message with 1009 before buffering it, and the
    /// session learns from `Connection.serverCloseCode` that this was a "transport error".
    public var webSocketMessageLimit: Int { maxPayload }

    /// Timers the server's tick must resolve (`ServerConfiguration.applicationTimeouts`).
    public var timeouts: [Double] { [pingInterval, pingTimeout, middlewareTimeout] }
}

/// Engine.IO v4 / Socket.IO v5 over the WebSocket server (WebSocket transport only).
/// Unchecked Sendable: `adapter` and `socketDataDecoder` are set before the server starts and only read
/// afterwards; the namespace table, counters and the server reference are behind Mutexes; sessions
/// are per loop (`loopSessions[i]`, touched only by loop i's thread).
public final class SocketIOServer: ServerApplication, @unchecked Sendable {
    public let configuration: SocketIOConfiguration
    /// What each session's decoding state starts as: sessions copy it, and so share its options.
    let sessionCoreTemplate: SessionCore
    /// Every session's ping interval and timeout (nanoseconds).
    let heartbeatTiming: Heartbeat.Timing
    public let logger: Logger
    /// Process-wide room membership (for recipient counts).
    public let rooms = RoomDirectory()
    /// Namespaces by name. `of(_:)` may run on any thread (an emit from an API handler reaches
    /// it) while loops look namespaces up at CONNECT, so the table has a lock; it is taken per
    /// CONNECT and per emit call, never per recipient.
    private let namespaces = Mutex<[String: Namespace]>([:])
    private let serverBox = Mutex<WebSocketServer?>(nil)
    /// Per loop, the sessions it owns (touched only by that loop's thread).
    let loopSessions: [LoopSessions]
    /// What a broadcast and the cluster-wide operations reach beyond this process. Set it before
    /// the server starts (`InMemoryAdapter`: this process only; ChorusCluster's `RedisAdapter`:
    /// every node on one Redis).
    @exclusivity(unchecked) public var adapter: any SocketIOAdapter = InMemoryAdapter()
    /// Turns `socket.data` kept by a cluster store (JSON, see `SocketDataRepresentable`) back into
    /// the application's object when another node's session is restored here. Set it before start.
    @exclusivity(unchecked) public var socketDataDecoder: (@Sendable (JSONValue) -> AnyObject?)?
    /// The adapter, if recovery is on and the adapter keeps recovery's events and sessions for the
    /// whole cluster (then the namespaces' logs only count).
    var clusterRecovery: (any ClusterRecoveryAdapter)? {
        configuration.recovery == nil ? nil : adapter as? any ClusterRecoveryAdapter
    }
    /// Each loop's event counters as published at its last tick (read by `eventCounters`).
    private let publishedCounters = Mutex<[Int: SocketIOEventCounters]>([:])
    /// Emits made off the loops (an API handler, a task): counted under a lock, once per emit call.
    private let foreignCounters = Mutex(SocketIOEventCounters())
    /// Event names the server emits that `eventCounters.eventsOut` counts by name; any other name
    /// counts as `SocketIOEventCounters.otherEvent`, so an emit API that takes any name cannot grow
    /// the label set. Set before the server starts.
    @exclusivity(unchecked) public var countedEmitEvents: Set<String> = []
    /// Non-Engine.IO HTTP routes (the application's API).
    @exclusivity(unchecked) public var httpHandler: (@Sendable (HTTPRequest, WebSocketServer) -> HTTPResponse?)?
    /// Routes answered later (cluster-wide queries): return true and call the responder once.
    @exclusivity(unchecked) public var deferredHTTPHandler:
        (@Sendable (HTTPRequest, @escaping @Sendable (HTTPResponse) -> Void) -> Bool)?
    /// The application's verdict on a non-Engine.IO request's head, before its body is read
    /// (`ServerApplication.respondBeforeBody`): nil to read the body, or the refusal.
    @exclusivity(unchecked) public var httpHeadHandler: (@Sendable (HTTPRequestHead) -> HTTPResponse?)?
    private let counters = Mutex<[String: Int]>([:])
    private let asyncMiddlewareRuns = Atomic<Int>(0)
    private let normalizedPath: String

    public init(
        configuration: SocketIOConfiguration = SocketIOConfiguration(),
        logger: Logger = Logger(label: "chorus.socketio")
    ) {
        self.configuration = configuration
        self.sessionCoreTemplate = SessionCore(
            maxPayload: configuration.maxPayload, maxAttachments: configuration.maxAttachments)
        self.heartbeatTiming = Heartbeat.Timing(
            interval: UInt64(configuration.pingInterval * 1e9), timeout: UInt64(configuration.pingTimeout * 1e9))
        self.logger = logger
        self.loopSessions = (0..<256).map { _ in LoopSessions() }
        var path = configuration.path
        if !path.hasPrefix("/") { path = "/" + path }
        while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
        normalizedPath = path
        namespaces.withLock { $0["/"] = Namespace(name: "/", io: self) }
    }

    /// The main namespace.
    public var sockets: Namespace { of("/") }

    /// The namespace `name` (created on first use; create them before the server starts). A name
    /// holds no '#': a room's key is `<namespace>#<room>`, and a namespace's keys are told from
    /// another's by what precedes their first '#'.
    public func of(_ name: String) -> Namespace {
        precondition(!name.utf8.contains(UInt8(ascii: "#")), "a namespace name cannot contain '#': \(name)")
        let key = name.hasPrefix("/") ? name : "/" + name
        return namespaces.withLock { table in
            if let ns = table[key] { return ns }
            let ns = Namespace(name: key, io: self)
            table[key] = ns
            return ns
        }
    }

    public func to(_ rooms: String...) -> BroadcastOperator { sockets.to(rooms) }

    public var webSocketServer: WebSocketServer? { serverBox.withLock { $0 } }

    static func roomKey(_ namespace: String, _ room: String) -> String { namespace + "#" + room }

    /// Counters: disconnect reasons ("disconnect:<reason>"), "connect", "connect_error",
    /// "connect_abandoned" (an asynchronous middleware finished after the client left the
    /// namespace, or after its timeout; its result was dropped) and "middleware_timeout".
    public var stats: [String: Int] { counters.withLock { $0 } }

    /// Asynchronous middleware runs in flight (tasks started and not finished), all loops.
    public var asyncMiddlewaresInFlight: Int { asyncMiddlewareRuns.load(ordering: .relaxed) }

    func count(_ key: String) { counters.withLock { $0[key, default: 0] += 1 } }
    func recordDisconnect(_ reason: DisconnectReason) { count("disconnect:" + reason.rawValue) }

    // MARK: ServerApplication

    public func serverDidStart(_ server: WebSocketServer) {
        serverBox.withLock { $0 = server }
        adapter.start(io: self, server: server)
    }

    /// The namespaces' names (the adapter subscribes to each one's channels).
    public var namespaceNames: [String] { namespaces.withLock { $0.keys.sorted() } }

    /// Counts the nodes of the cluster, this one included (1 without a cluster adapter).
    public func serverCount(_ completion: @escaping @Sendable (Result<Int, AdapterError>) -> Void) {
        adapter.serverCount(completion: completion)
    }

    public func serverCount() async throws(AdapterError) -> Int {
        try await withAdapterResult { serverCount($0) }
    }

    private func isEnginePath(_ path: String) -> Bool {
        var p = Substring(path)
        while p.count > 1 && p.hasSuffix("/") { p.removeLast() }
        return p == normalizedPath
    }

    /// What Engine.IO answers a request it cannot serve (same codes and messages).
    static func verify(_ head: HTTPRequestHead, isUpgrade: Bool) -> HTTPResponse? {
        let transport = head.queryValue("transport")
        guard transport == "websocket" else { return EngineIOHandshakeError.unknownTransport.response }
        if head.queryValue("sid") != nil { return EngineIOHandshakeError.unknownSessionID.response }
        guard head.method == "GET" else { return EngineIOHandshakeError.badHandshakeMethod.response }
        guard isUpgrade else { return EngineIOHandshakeError.badRequest.response }
        guard head.queryValue("EIO") == "4" else { return EngineIOHandshakeError.unsupportedProtocolVersion.response }
        return nil
    }

    public func respondBeforeBody(_ head: HTTPRequestHead, remoteAddress: SocketAddress) -> HTTPResponse? {
        // Engine.IO's answers depend on the head alone.
        if isEnginePath(head.path) {
            if head.method == "OPTIONS" { return HTTPResponse(status: 204) }
            return Self.verify(head, isUpgrade: false)
        }
        guard httpHandler != nil else { return .webSocketEndpointNotFound }
        return httpHeadHandler?(head)
    }

    public func handleHTTP(_ request: HTTPRequest, server: WebSocketServer) -> HTTPResponse? {
        if isEnginePath(request.head.path) {
            if request.head.method == "OPTIONS" { return HTTPResponse(status: 204) }
            return Self.verify(request.head, isUpgrade: false)
        }
        return httpHandler?(request, server)
    }

    public func handleHTTPLater(
        _ request: HTTPRequest, server: WebSocketServer,
        respond: @escaping @Sendable (HTTPResponse) -> Void
    ) -> Bool {
        if isEnginePath(request.head.path) { return false }
        return deferredHTTPHandler?(request, respond) ?? false
    }

    /// Whether an adapter other than the in-memory one reaches other nodes.
    public var isClustered: Bool { !(adapter is InMemoryAdapter) }

    public func shouldUpgrade(_ head: HTTPRequestHead, remoteAddress: SocketAddress) -> UpgradeDecision {
        guard isEnginePath(head.path) else { return .reject(.text(404, "not found\n")) }
        if let error = Self.verify(head, isUpgrade: true) { return .reject(error) }
        return .accept
    }

    public func connectionOpened(_ connection: Connection, request: HTTPRequestHead) {
        let sessions = loopSessions[connection.loopIndex]
        let now = monotonicNanoseconds()
        let session = EngineSession(io: self, connection: connection, request: request, now: now)
        connection.userData = session
        sessions.add(session)
        if configuration.maxPayloadBeforeConnect > 0 {
            connection.incomingMessageLimit = configuration.maxPayloadBeforeConnect
        }
        let open = EngineIOPacket.open(
            EngineIOHandshake(
                sid: session.sid, upgrades: [], pingInterval: Int(configuration.pingInterval * 1000),
                pingTimeout: Int(configuration.pingTimeout * 1000), maxPayload: configuration.maxPayload))
        if case .text(let bytes) = open.encode() { connection.send(.text, bytes) }
    }

    public func connection(_ connection: Connection, received message: WebSocketMessage) {
        guard let session = connection.userData as? EngineSession else { return }
        session.now = monotonicNanoseconds()
        let input: SessionInput
        let size: Int
        switch message {
        case .text(let bytes): input = session.core.receive(text: bytes); size = bytes.count
        case .binary(let bytes): input = session.core.receive(binary: bytes); size = bytes.count
        }
        session.handle(input, size: size)
    }

    public func connectionClosed(_ connection: Connection, code: WebSocketCloseCode?) {
        guard let session = connection.userData as? EngineSession else { return }
        let reason: DisconnectReason
        if let r = session.closeReason {
            reason = r
        } else if let sent = connection.serverCloseCode, sent != .goingAway {
            // The server failed the WebSocket (1009 too big, 1002/1007 protocol, 1008 backpressure).
            reason = .transportError
        } else if let code, code == .messageTooBig || code == .protocolError || code == .invalidPayloadData {
            reason = .transportError
        } else {
            reason = .transportClose
        }
        session.teardown(reason: reason)
        loopSessions[connection.loopIndex].remove(session)
        connection.userData = nil
    }

    /// Messages dropped for the connection's rate limit (`--rate-limit-policy drop`): each of its
    /// sockets gets an `error` event `{"error": "rate limit exceeded", "dropped": n}` (at most once a
    /// second), so a client learns why its events went unanswered.
    public func connectionRateLimited(_ connection: Connection, dropped: Int) {
        guard let session = connection.userData as? EngineSession else { return }
        for socket in session.sockets.values.sorted(by: { $0.namespace.name < $1.namespace.name })
        where socket.connected {
            socket.emit("error", ["error": "rate limit exceeded", "dropped": JSONValue(dropped)])
        }
    }

    public func tick(loopIndex: Int, now: UInt64) {
        loopSessions[loopIndex].tick(now: now)
        // Published once per tick, not per event: a scrape sees counts at most one tick old.
        let counters = loopSessions[loopIndex].counters
        publishedCounters.withLock { $0[loopIndex] = counters }
    }

    /// Events, acks and their counts, summed over loops (as of each loop's last timer tick).
    public var eventCounters: SocketIOEventCounters {
        var total = foreignCounters.withLock { $0 }
        publishedCounters.withLock { all in
            for counters in all.values { total.add(counters) }
        }
        return total
    }

    /// Counts one emit call of `event` (not one per recipient): in `loopIndex`'s plain counters,
    /// or (nil: off the loops) under the foreign counters' lock. `loopIndex` must be the calling
    /// thread's own loop (`WebSocketServer.currentLoopIndex`, or a loop-confined connection's
    /// `loopIndex`): those counters are that thread's alone.
    public func countEmit(namespace: String, event: String, loopIndex: Int?) {
        let key = SocketIOEventCounters.EventKey(
            namespace: namespace, event: countedEmitEvents.contains(event) ? event : SocketIOEventCounters.otherEvent)
        if let loopIndex {
            loopSessions[loopIndex].counters.eventsOut[key, default: 0] &+= 1
        } else {
            foreignCounters.withLock { $0.eventsOut[key, default: 0] &+= 1 }
        }
    }

    // MARK: Dispatch (loop thread)

    func namespace(_ name: String) -> Namespace? { namespaces.withLock { $0[name] } }

    /// Runs an asynchronous middleware in a task (global executor, off the loop threads); its
    /// result hops back to the connection's loop, if the connection still exists. The task holds
    /// no session or socket: a connection that closes meanwhile is freed as usual.
    func runAsyncMiddleware(
        _ middleware: @escaping @Sendable (Handshake) async -> AsyncMiddlewareResult,
        handshake: Handshake, connection id: ConnectionID, namespace name: String, ticket: UInt64
    ) -> Task<Void, Never> {
        asyncMiddlewareRuns.add(1, ordering: .relaxed)
        return Task { [self] in
            let result = await middleware(handshake)
            webSocketServer?.withConnection(id) { connection in
                guard let session = connection.userData as? EngineSession else { return }
                session.resumeConnect(namespace: name, ticket: ticket, result: result)
            }
            asyncMiddlewareRuns.subtract(1, ordering: .relaxed)
        }
    }

    public func hasNamespace(_ name: String) -> Bool { namespaces.withLock { $0[name] != nil } }
}

/// Wall-clock milliseconds since 1970 (a handshake's `issued`).
func wallClockMilliseconds() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}

/// A completion-style adapter call as an async one.
func withAdapterResult<T: Sendable>(_ body: (@escaping @Sendable (Result<T, AdapterError>) -> Void) -> Void)
    async throws(AdapterError) -> T
{
    let result: Result<T, AdapterError> = await withCheckedContinuation { continuation in
        body { continuation.resume(returning: $0) }
    }
    return try result.get()
}

/// Socket.IO traffic counted per loop in plain integers (published at each tick).
public struct SocketIOEventCounters: Sendable {
    public struct EventKey: Hashable, Sendable {
        public var namespace: String
        public var event: String
    }

    /// The label of events no handler is registered for.
    public static let otherEvent = "other"

    /// Events received, by namespace and registered event name (others as `otherEvent`).
    public var eventsIn: [EventKey: Int] = [:]
    /// Emit calls, by namespace and event name (`SocketIOServer.countedEmitEvents`, others as
    /// `otherEvent`): a broadcast counts once however many sockets it reaches.
    public var eventsOut: [EventKey: Int] = [:]
    /// Events received that asked for an ack; acks received for the server's own emits.
    public var acksRequested = 0
    public var acksReceived = 0

    public init() {}

    public mutating func add(_ other: SocketIOEventCounters) {
        for (key, count) in other.eventsIn { eventsIn[key, default: 0] += count }
        for (key, count) in other.eventsOut { eventsOut[key, default: 0] += count }
        acksRequested += other.acksRequested
        acksReceived += other.acksReceived
    }
}
