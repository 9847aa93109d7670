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
public final class SocketIOServer: ServerApplication, @unchecked Sendable {
    public let configuration: SocketIOConfiguration
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
    public var adapter: any SocketIOAdapter = InMemoryAdapter()
    /// Each loop's event counters as published at its last tick (read by `eventCounters`).
    private let publishedCounters = Mutex<[Int: SocketIOEventCounters]>([:])
    /// Emits made off the loops (an API handler, a task): counted under a lock, once per emit call.
    private let foreignCounters = Mutex(SocketIOEventCounters())
    /// Event names the server emits that `eventCounters.eventsOut` counts by name; any other name
    /// counts as `SocketIOEventCounters.otherEvent`, so an emit API that takes any name cannot grow
    /// the label set. Set before the server starts.
    public var countedEmitEvents: Set<String> = []
    /// Non-Engine.IO HTTP routes (the application's API).
    public var httpHandler: (@Sendable (HTTPRequest, WebSocketServer) -> HTTPResponse?)?
    /// Routes answered later (cluster-wide queries): return true and call the responder once.
    public var deferredHTTPHandler: (@Sendable (HTTPRequest, @escaping @Sendable (HTTPResponse) -> Void) -> Bool)?
    /// The application's verdict on a non-Engine.IO request's head, before its body is read
    /// (`ServerApplication.respondBeforeBody`): nil to read the body, or the refusal.
    public var httpHeadHandler: (@Sendable (HTTPRequestHead) -> HTTPResponse?)?
    private let counters = Mutex<[String: Int]>([:])
    private let asyncMiddlewareRuns = Atomic<Int>(0)
    private let normalizedPath: String

    public init(configuration: SocketIOConfiguration = SocketIOConfiguration(), logger: Logger = Logger(label: "chorus.socketio")) {
        self.configuration = configuration
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

    /// The namespace `name` (created on first use; create them before the server starts).
    public func of(_ name: String) -> Namespace {
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

    static func engineError(_ code: Int, _ message: String, status: Int = 400) -> HTTPResponse {
        let body: JSONValue = ["code": JSONValue(code), "message": .string(message)]
        return HTTPResponse(status: status, headers: [("Content-Type", "application/json")], body: body.serialized)
    }

    /// What Engine.IO answers a request it cannot serve (same codes and messages).
    static func verify(_ head: HTTPRequestHead, isUpgrade: Bool) -> HTTPResponse? {
        let transport = head.queryValue("transport")
        guard transport == "websocket" else { return engineError(0, "Transport unknown") }
        if head.queryValue("sid") != nil { return engineError(1, "Session ID unknown") }
        guard head.method == "GET" else { return engineError(2, "Bad handshake method") }
        guard isUpgrade else { return engineError(3, "Bad request") }
        guard head.queryValue("EIO") == "4" else { return engineError(5, "Unsupported protocol version") }
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

    public func handleHTTPLater(_ request: HTTPRequest, server: WebSocketServer,
                                respond: @escaping @Sendable (HTTPResponse) -> Void) -> Bool {
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
        let open = EngineIOPacket.open(EngineIOHandshake(
            sid: session.sid, upgrades: [], pingInterval: Int(configuration.pingInterval * 1000),
            pingTimeout: Int(configuration.pingTimeout * 1000), maxPayload: configuration.maxPayload))
        if case .text(let bytes) = open.encode() { bytes.withUnsafeBytes { connection.send(.text, $0) } }
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
        for socket in session.sockets.values.sorted(by: { $0.namespace.name < $1.namespace.name }) where socket.connected {
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
    func runAsyncMiddleware(_ middleware: @escaping @Sendable (Handshake) async -> AsyncMiddlewareResult,
                            handshake: Handshake, connection id: ConnectionID, namespace name: String, ticket: UInt64) -> Task<Void, Never> {
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

/// A loop's sessions (confined to that loop's thread).
final class LoopSessions: @unchecked Sendable {
    private var sessions: [ObjectIdentifier: EngineSession] = [:]
    /// Plain counters of this loop's thread; `SocketIOServer.tick` publishes them.
    var counters = SocketIOEventCounters()

    func add(_ s: EngineSession) { sessions[ObjectIdentifier(s)] = s }
    func forEachSession(_ body: (EngineSession) -> Void) { for s in sessions.values { body(s) } }
    func remove(_ s: EngineSession) { sessions[ObjectIdentifier(s)] = nil }

    func tick(now: UInt64) {
        guard !sessions.isEmpty else { return }
        for session in Array(sessions.values) { session.tick(now: now) }
    }
}

/// A namespace CONNECT parked while an asynchronous middleware runs (loop-confined).
final class PendingConnect {
    let socket: Socket
    /// Tells this attempt from a later CONNECT to the same namespace.
    let ticket: UInt64
    /// The middleware after the one awaited.
    let resumeAt: Int
    /// Packets for the namespace received meanwhile, replayed after the CONNECT reply.
    var queued: [SessionInput]
    var queuedBytes: Int
    /// When the middleware has taken too long (nil: no limit).
    var deadline: UInt64?
    /// The middleware's task, cancelled at the deadline.
    var task: Task<Void, Never>?

    init(socket: Socket, ticket: UInt64, resumeAt: Int, queued: [SessionInput], queuedBytes: Int, deadline: UInt64?) {
        self.socket = socket
        self.ticket = ticket
        self.resumeAt = resumeAt
        self.queued = queued
        self.queuedBytes = queuedBytes
        self.deadline = deadline
    }
}

/// One Engine.IO connection and its sockets (one per namespace).
final class EngineSession {
    unowned let io: SocketIOServer
    // Strong: sockets retained by user closures stay safe after close (send on a closed connection is a no-op).
    let connection: Connection
    let sid = EngineIOSessionID.generate()
    let request: HTTPRequestHead
    var core: SessionCore
    var heartbeat: Heartbeat
    var now: UInt64
    var sockets: [String: Socket] = [:]
    /// CONNECTs awaiting an asynchronous middleware, by namespace.
    var pendingConnects: [String: PendingConnect] = [:]
    private var lastTicket: UInt64 = 0
    var connectDeadline: UInt64?
    var ackTimersArmed = false
    var closeReason: DisconnectReason?

    init(io: SocketIOServer, connection: Connection, request: HTTPRequestHead, now: UInt64) {
        self.io = io
        self.connection = connection
        self.request = request
        self.now = now
        let c = io.configuration
        core = SessionCore(maxPayload: c.maxPayload, maxAttachments: c.maxAttachments)
        heartbeat = Heartbeat(interval: UInt64(c.pingInterval * 1e9), timeout: UInt64(c.pingTimeout * 1e9), now: now)
        connectDeadline = c.connectTimeout > 0 ? now &+ UInt64(c.connectTimeout * 1e9) : nil
    }

    func send(_ packet: SocketIOPacket) {
        let (text, attachments) = packet.encode(engineIOPrefix: true)
        if attachments.isEmpty {
            text.withUnsafeBytes { connection.send(.text, $0) }
            return
        }
        // A binary packet is only meaningful whole: never split by the backpressure limit.
        let server = connection.server
        let frames = [text.withUnsafeBytes { server.makeFrame(.text, $0) }]
            + attachments.map { a in a.withUnsafeBytes { server.makeFrame(.binary, $0) } }
        connection.send(group: frames)
    }

    func sendRaw(_ bytes: [UInt8]) { bytes.withUnsafeBytes { connection.send(.text, $0) } }

    func armAckTimers() { ackTimersArmed = true }

    /// `size`: the bytes of the message the input came from (bounds what a parked CONNECT queues).
    func handle(_ input: SessionInput, size: Int = 0) {
        switch input {
        case .none:
            break
        case .pong:
            heartbeat.pongReceived(now: now)
        case .ping(let data):
            var out: [UInt8] = []
            EngineIOPacket.pong(data).encodeText(into: &out)
            sendRaw(out)
        case .close:
            close(reason: .forcedClose, code: .normalClosure)
        case .tooLarge:
            close(reason: .transportError, code: .messageTooBig)
        case .invalid(let why):
            io.logger.debug("closing connection", metadata: ["reason": "parse error", "detail": "\(why)"])
            close(reason: .parseError, code: .policyViolation)
        case .connect(let name, let auth):
            connect(namespace: name, auth: auth)
        case .disconnect(let name):
            if let socket = sockets[name] {
                removeSocket(socket, reason: .clientNamespaceDisconnect)
            } else if pendingConnects[name] != nil {
                // Leaving while the CONNECT is parked: the middleware's result will be dropped.
                pendingConnects[name] = nil
            } else {
                invalidState("DISCONNECT", name)
            }
        case .event(let name, let event, let args, let ackId):
            guard let socket = sockets[name], socket.connected else {
                if let pending = pendingConnects[name] {
                    queue(input, size: size, in: pending)
                } else {
                    invalidState("EVENT", name)
                }
                return
            }
            let ack = ackId.map { Ack(socket: socket, id: $0) }
            let counters = io.loopSessions[connection.loopIndex]
            if ackId != nil { counters.counters.acksRequested &+= 1 }
            if let handler = socket.handlers[event] ?? socket.namespace.eventHandlers[event] {
                // Only registered names are counted by name: a client cannot grow the label set.
                counters.counters.eventsIn[.init(namespace: name, event: event), default: 0] &+= 1
                handler(socket, args, ack)
            } else {
                counters.counters.eventsIn[.init(namespace: name, event: SocketIOEventCounters.otherEvent), default: 0] &+= 1
                socket.namespace.unknownEventHandler?(socket, event, args, ack)
            }
        case .ack(let name, let id, let args):
            guard let socket = sockets[name] else {
                invalidState("ACK", name)
                return
            }
            // An ack nobody waits for (late, or a made-up id) is ignored, as the reference does.
            guard let pending = socket.pendingAcks.removeValue(forKey: id) else { return }
            io.loopSessions[connection.loopIndex].counters.acksReceived &+= 1
            pending.callback(.success(args))
        }
    }

    /// A packet that is wrong for the namespace's state (socket.io's `Client.ondecoded`: anything
    /// but CONNECT for a namespace without a socket, a CONNECT for one with a socket): the
    /// reference closes the whole connection ("invalid state"), and so do we. The one extension:
    /// packets for a namespace whose CONNECT is parked on an asynchronous middleware are queued.
    private func invalidState(_ packet: String, _ namespace: String) {
        io.logger.debug("closing connection", metadata: ["reason": "invalid state", "packet": "\(packet)", "namespace": "\(namespace)"])
        close(reason: .forcedServerClose, code: .policyViolation)
    }

    private func connect(namespace name: String, auth: JSONValue?) {
        guard let namespace = io.namespace(name) else {
            send(.connectError(namespace: name, message: "Invalid namespace"))
            io.count("connect_error")
            io.count("connect_error:Invalid namespace")
            return
        }
        // Already connected: the reference closes the connection. Being connected (parked on an
        // asynchronous middleware): the duplicate is ignored.
        if sockets[name] != nil {
            invalidState("CONNECT", name)
            return
        }
        if pendingConnects[name] != nil { return }
        let handshake = Handshake(
            request: request, address: connection.remoteAddress.description, auth: auth ?? .object([:]),
            issued: wallClockMilliseconds())
        if let recovery = namespace.recovery {
            // `{"pid":..., "offset":...}` from a client that had a session: restored if still known.
            if let pid = auth?["pid"]?.stringValue, let offset = auth?["offset"]?.stringValue,
               case .success(let saved) = recovery.check(pid: pid, offset: offset, now: monotonicNanoseconds()) {
                let socket = Socket(id: saved.sid, namespace: namespace, handshake: handshake, session: self, pid: saved.pid)
                socket.data = saved.data
                socket.restoreOffset = offset
                if recovery.configuration.skipMiddlewares {
                    admit(socket, replaying: [])
                } else {
                    runMiddleware(socket, from: 0, queued: [], queuedBytes: 0)
                }
                return
            }
            let socket = Socket(id: EngineIOSessionID.generate(), namespace: namespace, handshake: handshake, session: self,
                                pid: EngineIOSessionID.generate())
            runMiddleware(socket, from: 0, queued: [], queuedBytes: 0)
            return
        }
        let socket = Socket(id: EngineIOSessionID.generate(), namespace: namespace, handshake: handshake, session: self)
        runMiddleware(socket, from: 0, queued: [], queuedBytes: 0)
    }

    /// Runs the namespace's middleware from `index`: synchronous ones inline, then either parks
    /// the CONNECT at an asynchronous one, or refuses, or admits the socket.
    private func runMiddleware(_ socket: Socket, from index: Int, queued: [SessionInput], queuedBytes: Int) {
        let middlewares = socket.namespace.middlewares
        var i = index
        while i < middlewares.count {
            switch middlewares[i] {
            case .sync(let middleware):
                if case .reject(let message, let data) = middleware(socket) {
                    refuse(socket.namespace.name, message: message, data: data)
                    return
                }
            case .async(let middleware):
                guard connection.isOpen else { return }
                lastTicket &+= 1
                let name = socket.namespace.name
                let timeout = io.configuration.middlewareTimeout
                let pending = PendingConnect(
                    socket: socket, ticket: lastTicket, resumeAt: i + 1, queued: queued, queuedBytes: queuedBytes,
                    deadline: timeout > 0 ? now &+ UInt64(timeout * 1e9) : nil)
                pendingConnects[name] = pending
                pending.task = io.runAsyncMiddleware(
                    middleware, handshake: socket.handshake, connection: connection.id, namespace: name, ticket: lastTicket)
                return
            }
            i += 1
        }
        admit(socket, replaying: queued)
    }

    /// Refuses the CONNECTs whose asynchronous middleware passed `middlewareTimeout`: a middleware
    /// that never finishes must not hold the namespace (and its queued packets) until the
    /// connection's own timeout.
    private func expireMiddlewares(now: UInt64) {
        for (name, pending) in pendingConnects {
            guard let deadline = pending.deadline, now >= deadline else { continue }
            pendingConnects[name] = nil
            pending.task?.cancel()
            io.count("middleware_timeout")
            refuse(name, message: "middleware timeout", data: nil)
        }
    }

    private func refuse(_ name: String, message: String, data: JSONValue?) {
        send(.connectError(namespace: name, message: message, data: data))
        io.count("connect_error")
        // The middleware's message is the reason (the application's own, bounded set of strings).
        io.count("connect_error:" + String(message.prefix(64)))
    }

    /// An asynchronous middleware's result, back on the loop thread.
    func resumeConnect(namespace name: String, ticket: UInt64, result: AsyncMiddlewareResult) {
        guard let pending = pendingConnects[name], pending.ticket == ticket else {
            io.count("connect_abandoned")
            return
        }
        pendingConnects[name] = nil
        guard connection.isOpen else { return }
        switch result {
        case .reject(let message, let data):
            refuse(name, message: message, data: data)
        case .accept(let data):
            if let data { pending.socket.data = data }
            runMiddleware(pending.socket, from: pending.resumeAt, queued: pending.queued, queuedBytes: pending.queuedBytes)
        }
    }

    /// Keeps a packet for a parked CONNECT, within bounds; beyond them the connection is closed.
    private func queue(_ input: SessionInput, size: Int, in pending: PendingConnect) {
        let limits = io.configuration
        guard pending.queued.count < limits.maxPendingPackets, pending.queuedBytes + size <= limits.maxPayload else {
            io.logger.debug("closing connection", metadata: ["reason": "too many packets before the namespace CONNECT completed"])
            close(reason: .transportError, code: .policyViolation)
            return
        }
        pending.queued.append(input)
        pending.queuedBytes += size
    }

    /// Admits a socket: joins its rooms (`rooms`: a restored socket's), sends the events it missed
    /// (`missed`, a restored socket's), then the CONNECT reply, then runs the connection handlers.
    private func admit(_ socket: Socket, replaying queued: [SessionInput], rooms: [String] = [], missed: [[OutgoingFrame]] = []) {
        if socket.restoreOffset != nil {
            restore(socket, replaying: queued)
            return
        }
        let name = socket.namespace.name
        let namespace = socket.namespace
        guard connection.isOpen else { return }
        if sockets.isEmpty {
            // The first namespace joined: the client has passed its middleware, full-size messages.
            connection.incomingMessageLimit = nil
        }
        connectDeadline = nil
        sockets[name] = socket
        socket.connected = true
        for key in [name, SocketIOServer.roomKey(name, socket.id)] {
            connection.join(key)
            io.rooms.join(key, connection.id)
        }
        for room in rooms { socket.join(room) }
        // Past the backpressure limit: a replay is all or nothing (a gap would go unnoticed), and
        // the CONNECT reply behind it must not be the one frame the limit refuses.
        for frames in missed { connection.sendPastLimit(frames) }
        let reply = SocketIOPacket.connected(namespace: name, sid: socket.id, pid: socket.pid)
        if missed.isEmpty {
            send(reply)
        } else {
            let (text, _) = reply.encode(engineIOPrefix: true)
            connection.sendPastLimit([text.withUnsafeBytes { connection.server.makeFrame(.text, $0) }])
        }
        io.count("connect")
        for handler in namespace.connectionHandlers {
            guard socket.connected else { break }
            handler(socket)
        }
        for input in queued { handle(input) }
    }

    // MARK: Connection state recovery

    /// Takes the saved session and the events it missed (RecoveryLog.restore), and finishes on this
    /// loop behind every event numbered before: those still queued here reach the socket live once
    /// it is in its rooms, those already delivered are replayed, none twice. Packets the client
    /// sends meanwhile wait as for a parked CONNECT. If the session is gone by now (taken by another
    /// connection, expired, its events dropped), the client gets a fresh one instead.
    private func restore(_ socket: Socket, replaying queued: [SessionInput]) {
        guard let recovery = socket.namespace.recovery, let offset = socket.restoreOffset, let pid = socket.pid else { return }
        socket.restoreOffset = nil
        let name = socket.namespace.name
        guard connection.isOpen else { return }
        lastTicket &+= 1
        let ticket = lastTicket
        pendingConnects[name] = PendingConnect(socket: socket, ticket: ticket, resumeAt: Int.max, queued: queued, queuedBytes: 0, deadline: nil)
        let server = connection.server
        let loop = connection.loopIndex
        let session = UncheckedSession(value: self)
        let refusal = recovery.restore(pid: pid, offset: offset, now: monotonicNanoseconds()) { saved, missed in
            server.execute(onLoop: loop) {
                session.value.finishRestore(name: name, ticket: ticket, saved: saved, missed: missed)
            }
        }
        guard let refusal else { return }
        pendingConnects[name] = nil
        io.logger.debug("session not recovered", metadata: ["reason": "\(refusal)", "namespace": "\(name)"])
        let fresh = Socket(id: EngineIOSessionID.generate(), namespace: socket.namespace, handshake: socket.handshake, session: self,
                           pid: EngineIOSessionID.generate())
        if recovery.configuration.skipMiddlewares {
            runMiddleware(fresh, from: 0, queued: queued, queuedBytes: 0)
        } else {
            fresh.data = socket.data
            admit(fresh, replaying: queued)
        }
    }

    private func finishRestore(name: String, ticket: UInt64, saved: SavedSession, missed: [[OutgoingFrame]]) {
        guard let pending = pendingConnects[name], pending.ticket == ticket, connection.isOpen else {
            if pendingConnects[name]?.ticket == ticket { pendingConnects[name] = nil }
            // The client left meanwhile: its session stays restorable.
            io.namespace(name)?.recovery?.persist(saved)
            return
        }
        pendingConnects[name] = nil
        let socket = pending.socket
        socket.recovered = true
        io.count("connect_recovered")
        admit(socket, replaying: pending.queued, rooms: saved.rooms, missed: missed)
    }

    func removeSocket(_ socket: Socket, reason: DisconnectReason) {
        guard sockets[socket.namespace.name] === socket else { return }
        sockets[socket.namespace.name] = nil
        socket.didDisconnect(reason: reason)
    }

    /// Closes the connection; the sockets see `reason`.
    func close(reason: DisconnectReason, code: WebSocketCloseCode = .normalClosure) {
        if closeReason == nil { closeReason = reason }
        teardown(reason: reason)
        connection.close(code: code, reason: reason.rawValue)
    }

    func teardown(reason: DisconnectReason) {
        pendingConnects.removeAll()
        let all = sockets.values.sorted { $0.namespace.name < $1.namespace.name }
        sockets.removeAll()
        for socket in all { socket.didDisconnect(reason: reason) }
    }

    func tick(now: UInt64) {
        self.now = now
        guard connection.isOpen else { return }
        switch heartbeat.tick(now: now) {
        case .none: break
        case .sendPing: sendRaw(EngineIOPacket.pingFrame)
        case .timeout:
            close(reason: .pingTimeout, code: .goingAway)
            return
        }
        if let deadline = connectDeadline, now >= deadline {
            close(reason: .transportClose, code: .policyViolation)
            return
        }
        if !pendingConnects.isEmpty { expireMiddlewares(now: now) }
        if ackTimersArmed {
            var any = false
            for socket in Array(sockets.values) {
                socket.expireAcks(now: now)
                any = any || !socket.pendingAcks.isEmpty
            }
            ackTimersArmed = any
        }
    }
}

/// A session handed to its own loop's task queue (used only on that loop).
private struct UncheckedSession: @unchecked Sendable { let value: EngineSession }

/// Wall-clock milliseconds since 1970 (a handshake's `issued`).
func wallClockMilliseconds() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}

/// A completion-style adapter call as an async one.
func withAdapterResult<T: Sendable>(_ body: (@escaping @Sendable (Result<T, AdapterError>) -> Void) -> Void) async throws(AdapterError) -> T {
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
