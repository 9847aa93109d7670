// The Socket.IO Redis adapter (socket.io-redis-adapter 8.x protocol) for a SocketIOServer.
//
// One publishing connection and one subscribing connection, both driven by one of the server's
// event loops (loop 0). Everything the adapter keeps (pending requests, counters) is confined to
// that loop's thread: public calls from other threads hop there with `execute`, and Redis's
// callbacks already run there. An incoming broadcast is decoded once and emitted with the `local`
// flag from that loop, so it is framed once, delivered to the loop's own members at once and
// forwarded to the other loops in one batch, exactly as a local emit is.
//
// Subscriptions (`RedisSubscriptionMode`): as the reference adapter, the pattern `<key>#<nsp>#*`
// (every broadcast of the namespace reaches every node, which drops those for rooms it does not
// hold); or only the channels of the rooms this node holds, kept in step with the server's
// `RoomDirectory` on the adapter's loop. Publishing is the same in both modes, so nodes of either
// mode, Node.js nodes and emitters share one Redis.
//
// Over the ~400-line guide by a little: the adapter's loop-confined state and its outgoing side;
// what arrives from Redis is in RedisAdapter+Incoming.swift.
import ChorusJSON
import ChorusLoop
import ChorusMsgPack
import ChorusRedis
import ChorusServer
import ChorusSocketIO
import Logging
import Synchronization

/// Unchecked Sendable: the fields set in `start` are written once, before any Redis callback or
/// other thread can use them; the rest is confined to the adapter's loop (public calls hop there
/// with `execute`), except `changedRooms` and `published`, which are Mutexes.
public final class RedisAdapter: SocketIOAdapter, @unchecked Sendable {
    public let configuration: RedisAdapterConfiguration
    /// This node's id on the wire (6 alphanumerics, as uid2(6) in the reference adapter).
    public let uid: String
    let uidBytes: [UInt8]
    let logger: Logger
    let decoder = MsgPackDecoder(limits: .init(maxDepth: 64, maxContainerCount: 1 << 16))

    // Set once in `start` (main thread, before any Redis callback can run), read-only afterwards.
    weak var io: SocketIOServer?
    var loop: EventLoop?
    var client: RedisClient?
    var subscriber: RedisSubscriber?
    var channelsByNamespace: [String: ClusterChannels] = [:]
    /// Subscribed channel/pattern bytes → namespace.
    var patternNamespace: [[UInt8]: String] = [:]
    /// `rooms` mode: each namespace's broadcast channel prefix `<key>#<nsp>#`, to recognise its
    /// broadcasts among the plain messages without copying the channel.
    var broadcastPrefixes: [(prefix: [UInt8], namespace: String)] = []
    var requestNamespace: [[UInt8]: String] = [:]
    var responseNamespace: [[UInt8]: String] = [:]

    // Loop-confined.
    var pending: [String: PendingRequest] = [:]
    /// This node's broadcasts with acknowledgements awaiting the other nodes' counts and answers.
    var ackRequests: [String: (clientCount: @Sendable (Int) -> Void, ack: @Sendable (JSONValue) -> Void)] = [:]
    var counters = ClusterCounters()
    /// `rooms` mode: room keys whose occupancy changed, waiting for the adapter's loop (any thread
    /// appends; the first append of a batch schedules the reconciliation).
    let changedRooms = Mutex<[String]>([])
    var publishTimer: LoopTimer?
    /// The counters as of the adapter loop's last publication (once per second), for a scrape on
    /// any thread: one lock a second, nothing on the message path.
    let published = Mutex(ClusterCounters())

    /// How often the loop copies its counters to `publishedCounters`.
    static let publishIntervalNanoseconds: UInt64 = 1_000_000_000

    public init(configuration: RedisAdapterConfiguration, logger: Logger = Logger(label: "chorus.cluster")) {
        self.configuration = configuration
        self.logger = logger
        uid = Self.makeID()
        uidBytes = Array(uid.utf8)
    }

    static func makeID() -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".utf8)
        var rng = SystemRandomNumberGenerator()
        return String(decoding: (0..<6).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }, as: UTF8.self)
    }

    // MARK: Lifecycle

    public func start(io: SocketIOServer, server: WebSocketServer) {
        self.io = io
        let loop = server.eventLoop(min(configuration.loopIndex, server.loopCount - 1))
        self.loop = loop
        for name in io.namespaceNames {
            let c = ClusterChannels(key: configuration.key, namespace: name)
            channelsByNamespace[name] = c
            patternNamespace[Array(c.broadcastPattern.utf8)] = name
            requestNamespace[Array(c.request.utf8)] = name
            responseNamespace[Array(c.response.utf8)] = name
            responseNamespace[Array(c.response(uid: uid).utf8)] = name
            broadcastPrefixes.append((Array(c.broadcast.utf8), name))
        }
        // The longest prefix first: a namespace whose name extends another's is matched as itself.
        broadcastPrefixes.sort { $0.prefix.count > $1.prefix.count }
        let client = RedisClient(
            url: configuration.url, loop: loop, configuration: configuration.client, logger: logger
        ) { [weak self] state in
            self?.publisherState(state)
        }
        let subscriber = RedisSubscriber(
            url: configuration.url, loop: loop, configuration: configuration.client, logger: logger,
            onMessage: { [weak self] message in self?.received(message) },
            onStateChange: { [weak self] state in self?.subscriberState(state) })
        self.client = client
        self.subscriber = subscriber
        switch configuration.subscription {
        case .pattern:
            subscriber.psubscribe(Array(patternNamespace.keys))
        case .rooms:
            // Rooms joined from now on are reported by the directory; rooms that already have
            // members (none, normally, when the adapter starts with the server) are taken now.
            io.rooms.observeOccupancy { [weak self] key in self?.roomOccupancyChanged(key) }
            subscriber.subscribe(broadcastPrefixes.map(\.prefix))
            for name in io.namespaceNames {
                for room in io.localRooms(namespace: name) { roomOccupancyChanged(name + "#" + room) }
            }
        }
        subscriber.subscribe(Array(requestNamespace.keys) + Array(responseNamespace.keys))
        client.start()
        subscriber.start()
        onLoop { [weak self] in self?.publishCountersPeriodically() }
        logger.info(
            "cluster adapter started",
            metadata: [
                "redis": "\(configuration.url)", "key": "\(configuration.key)", "uid": "\(uid)",
                "namespaces": "\(io.namespaceNames.joined(separator: ","))",
                "subscription": "\(configuration.subscription.rawValue)",
            ])
    }

    public func stop() {
        if configuration.subscription == .rooms { io?.rooms.observeOccupancy(nil) }
        onLoop { [weak self] in
            guard let self, let timer = publishTimer else { return }
            loop?.cancel(timer)
            publishTimer = nil
        }
        subscriber?.stop()
        client?.stop()
    }

    /// The counters, read on the adapter's loop.
    public func counters(_ body: @escaping @Sendable (ClusterCounters) -> Void) {
        onLoop { [self] in body(countersOnLoop()) }
    }

    /// The counters as the adapter's loop last published them (at most a second old). Safe from
    /// any thread: this is what a /metrics scrape reads, so a scrape never waits for that loop.
    public var publishedCounters: ClusterCounters { published.withLock { $0 } }

    func countersOnLoop() -> ClusterCounters { counters.folding(client: client, subscriber: subscriber) }

    func publishCountersPeriodically() {
        let snapshot = countersOnLoop()
        published.withLock { $0 = snapshot }
        publishTimer = loop?.schedule(afterNanoseconds: Self.publishIntervalNanoseconds) { [weak self] in
            self?.publishCountersPeriodically()
        }
    }

    /// `{"uid", "servers" (PUBSUB NUMSUB, null if Redis did not answer), counters...}`.
    public func stats(_ completion: @escaping @Sendable (JSONValue?) -> Void) {
        counters { [self, uid] c in
            @Sendable func answer(_ servers: Int?) {
                var o: JSONObject = ["uid": .string(uid), "servers": servers.map { JSONValue($0) } ?? .null]
                if case .object(let fields) = c.json { for (k, v) in fields { o[k] = v } }
                completion(.object(o))
            }
            // Disconnected, NUMSUB would only wait in the offline queue: no count.
            guard c.redisConnected else { return answer(nil) }
            serverCount { answer(try? $0.get()) }
        }
    }

    func onLoop(_ body: @escaping @Sendable () -> Void) {
        loop?.runOrExecute(body)
    }

    /// Queued on the adapter's loop behind every task already there, even from that loop: what
    /// is published keeps the order in which it was emitted across loops. Run inline on the
    /// adapter's loop, an emit there overtook one another loop had queued a moment before (an
    /// HTTP API emit answered 202 on loop 1, then the client's next one on loop 0: the second
    /// got the lower stream id; StreamsRecoveryE2ETests caught it).
    func onLoopInOrder(_ body: @escaping @Sendable () -> Void) {
        loop?.execute(body)
    }

    func publisherState(_ state: RedisConnectionState) {
        switch state {
        case .connected:
            counters.redisConnected = true
            logger.info("connected to Redis", metadata: ["redis": "\(configuration.url)"])
        case .disconnected(let reason):
            counters.redisConnected = false
            logger.warning(
                "Redis unreachable: local delivery continues; publishes wait in the bounded queue, requests answer with this node only",
                metadata: ["reason": "\(reason)"])
        }
    }

    func subscriberState(_ state: RedisConnectionState) {
        if case .connected = state { logger.info("subscribed to the cluster's channels") }
    }

    func publish(_ channel: String, _ message: [UInt8]) {
        client?.publish(channel: Array(channel.utf8), message: message)
    }

    // MARK: Outgoing (any thread)

    public func broadcast(_ broadcast: AdapterBroadcast) {
        guard let channels = channelsByNamespace[broadcast.namespace] else { return }
        let message = ClusterBroadcast(
            uid: uid, packet: ClusterPacket(data: broadcast.data, namespace: broadcast.namespace),
            selector: ClusterSelector(rooms: broadcast.rooms, except: broadcast.except))
        // Encoded on the caller's thread; one hop to the Redis loop publishes and counts it.
        let channel = channels.broadcastChannel(rooms: broadcast.rooms)
        let bytes = message.encode()
        onLoopInOrder { [self] in
            publish(channel, bytes)
            counters.broadcastsPublished += 1
        }
    }

    public func addSockets(_ selector: SocketSelector, rooms: [String]) {
        publishRequest(
            selector.namespace, .remoteJoin(uid: uid, requestId: nil, .selector(cluster(selector), rooms: rooms)))
    }

    public func delSockets(_ selector: SocketSelector, rooms: [String]) {
        publishRequest(
            selector.namespace, .remoteLeave(uid: uid, requestId: nil, .selector(cluster(selector), rooms: rooms)))
    }

    public func disconnectSockets(_ selector: SocketSelector, close: Bool) {
        publishRequest(
            selector.namespace, .remoteDisconnect(uid: uid, requestId: nil, .selector(cluster(selector), close: close)))
    }

    public func fetchSockets(
        _ selector: SocketSelector, local: [SocketDescription],
        completion: @escaping @Sendable (Result<[SocketDescription], AdapterError>) -> Void
    ) {
        ask(
            selector.namespace, expectingFromOthers: true, accumulator: .sockets(local),
            make: { [uid] id in
                .remoteFetch(uid: uid, requestId: id, ClusterSelector(rooms: selector.rooms, except: selector.except))
            },
            done: { completion($0.map { $0.sockets }) })
    }

    public func allRooms(
        namespace: String, local: Set<String>,
        completion: @escaping @Sendable (Result<Set<String>, AdapterError>) -> Void
    ) {
        ask(
            namespace, expectingFromOthers: true, accumulator: .rooms(local),
            make: { [uid] id in .allRooms(uid: uid, requestId: id) },
            done: { completion($0.map { $0.rooms }) })
    }

    public func serverSideEmit(
        namespace: String, data: [JSONValue], ack: (@Sendable (Result<[JSONValue], AdapterError>) -> Void)?
    ) {
        guard let ack else {
            publishRequest(namespace, .serverSideEmit(uid: uid, requestId: nil, data: data))
            return
        }
        ask(
            namespace, expectingFromOthers: true, accumulator: .responses([]),
            make: { [uid] id in .serverSideEmit(uid: uid, requestId: id, data: data) },
            done: { ack($0.map { $0.responses }) })
    }

    public func broadcastWithAck(
        _ broadcast: AdapterBroadcast, timeout: Double,
        clientCount: @escaping @Sendable (Int) -> Void, ack: @escaping @Sendable (JSONValue) -> Void
    ) {
        guard let channels = channelsByNamespace[broadcast.namespace] else { return }
        onLoop { [self] in
            let requestId = Self.makeID() + Self.makeID()
            ackRequests[requestId] = (clientCount, ack)
            let request = ClusterRequest.broadcast(
                uid: uid, requestId: requestId,
                packet: ClusterPacket(data: broadcast.data, namespace: broadcast.namespace),
                selector: ClusterSelector(rooms: broadcast.rooms, except: broadcast.except),
                flags: ClusterFlags(.object(["timeout": MsgPackValue(json: .double((timeout * 1000).rounded()))])))
            publish(channels.request, request.encode())
            counters.requestsPublished += 1
            // Answers after the timeout have nobody to go to (as in the reference adapter).
            loop?.schedule(afterNanoseconds: UInt64(max(timeout, 0) * 1e9)) { [weak self] in
                self?.ackRequests[requestId] = nil
            }
        }
    }

    public func serverCount(completion: @escaping @Sendable (Result<Int, AdapterError>) -> Void) {
        onLoop { [self] in
            numSub(
                channelsByNamespace["/"]?.request ?? ClusterChannels(key: configuration.key, namespace: "/").request,
                completion)
        }
    }

    func cluster(_ s: SocketSelector) -> ClusterSelector { ClusterSelector(rooms: s.rooms, except: s.except) }

    func publishRequest(_ namespace: String, _ request: ClusterRequest) {
        guard let channels = channelsByNamespace[namespace] else { return }
        let bytes = request.encode()
        onLoop { [self] in
            publish(channels.request, bytes)
            counters.requestsPublished += 1
        }
    }

    /// `PUBSUB NUMSUB <request channel>`: how many nodes (this one included) listen.
    func numSub(_ channel: String, _ completion: @escaping @Sendable (Result<Int, AdapterError>) -> Void) {
        guard let client else { return completion(.failure(.notRunning)) }
        client.numSub(channel, timeout: configuration.requestTimeout, completion)
    }

    /// A request every other node answers: counts the nodes, publishes, and completes once all
    /// answered or after the request timeout.
    func ask(
        _ namespace: String, expectingFromOthers: Bool, accumulator: PendingRequest.Accumulator,
        make: @escaping @Sendable (String) -> ClusterRequest,
        done: @escaping @Sendable (Result<PendingRequest.Accumulator, AdapterError>) -> Void
    ) {
        onLoop { [self] in
            guard let channels = channelsByNamespace[namespace] else { return done(.success(accumulator)) }
            numSub(channels.request) { [self] result in
                // The reply runs on the loop.
                switch result {
                case .failure(let error): done(.failure(error))
                case .success(let nodes):
                    let others = nodes - 1
                    guard others > 0 else { return done(.success(accumulator)) }
                    let requestId = Self.makeID() + Self.makeID()
                    let request = make(requestId)
                    let entry = PendingRequest(
                        type: request.type, expected: others, accumulator: accumulator, done: done)
                    pending[requestId] = entry
                    entry.timer = loop?.schedule(afterNanoseconds: UInt64(configuration.requestTimeout * 1e9)) {
                        [weak self] in
                        self?.expire(requestId)
                    }
                    publish(channels.request, request.encode())
                    counters.requestsPublished += 1
                }
            }
        }
    }

    func expire(_ requestId: String) {
        guard let entry = pending.removeValue(forKey: requestId) else { return }
        counters.requestsTimedOut += 1
        counters.recordRequest(nanoseconds: monotonicNanoseconds() &- entry.publishedAt)
        logger.warning(
            "cluster request timed out",
            metadata: [
                "type": "\(entry.type)", "received": "\(entry.received)", "expected": "\(entry.expected)",
            ])
        entry.done(.failure(.timeout(received: entry.received, expected: entry.expected)))
    }

    // MARK: Room subscriptions (`rooms` mode)

    func roomOccupancyChanged(_ key: String) {
        let first = changedRooms.withLock { changed in
            changed.append(key)
            return changed.count == 1
        }
        // Always a task, even on the adapter's own loop: the joins and leaves of a burst of
        // connects (each socket joins its own id's room) become one SUBSCRIBE per batch.
        if first { loop?.execute { [weak self] in self?.reconcileRooms() } }
    }

    /// Subscribes the channels of the changed rooms that have local members now and unsubscribes
    /// those of the rooms that have none: the directory's present state decides, whatever order
    /// the changes were reported in. The subscriber ignores channels already in the state asked.
    func reconcileRooms() {
        let keys = changedRooms.withLock { changed in
            defer { changed = [] }
            return changed
        }
        guard let io, let subscriber else { return }
        var subscribe: [[UInt8]] = []
        var unsubscribe: [[UInt8]] = []
        for key in Set(keys) {
            guard let channel = roomChannel(ofKey: key) else { continue }
            if io.rooms.members(of: key) > 0 { subscribe.append(channel) } else { unsubscribe.append(channel) }
        }
        if !subscribe.isEmpty { subscriber.changeOnLoop(subscribe, pattern: false, add: true) }
        if !unsubscribe.isEmpty { subscriber.changeOnLoop(unsubscribe, pattern: false, add: false) }
    }

    /// `<key>#<nsp>#<room>#` for a directory key `<nsp>#<room>`; nil for a namespace's own key
    /// (`<nsp>`, every socket of it) or a namespace the adapter does not serve.
    func roomChannel(ofKey key: String) -> [UInt8]? {
        let utf8 = key.utf8
        for (_, namespace) in broadcastPrefixes {
            let ns = namespace.utf8
            guard utf8.count > ns.count, utf8.starts(with: ns),
                utf8[utf8.index(utf8.startIndex, offsetBy: ns.count)] == UInt8(ascii: "#"),
                let channels = channelsByNamespace[namespace]
            else { continue }
            return Array(channels.broadcast(room: String(key.dropFirst(namespace.count + 1))).utf8)
        }
        return nil
    }

}

/// A request this node waits on (adapter loop only).
final class PendingRequest {
    enum Accumulator: Sendable {
        case sockets([SocketDescription])
        case rooms(Set<String>)
        case responses([JSONValue])

        var sockets: [SocketDescription] { if case .sockets(let s) = self { return s }; return [] }
        var rooms: Set<String> { if case .rooms(let r) = self { return r }; return [] }
        var responses: [JSONValue] { if case .responses(let r) = self { return r }; return [] }
    }

    let type: ClusterRequestType
    let expected: Int
    var received = 0
    var accumulator: Accumulator
    var timer: LoopTimer?
    /// When the request went to Redis (monotonic), for the request latency histogram.
    let publishedAt = monotonicNanoseconds()
    let done: @Sendable (Result<Accumulator, AdapterError>) -> Void

    init(
        type: ClusterRequestType, expected: Int, accumulator: Accumulator,
        done: @escaping @Sendable (Result<Accumulator, AdapterError>) -> Void
    ) {
        self.type = type
        self.expected = expected
        self.accumulator = accumulator
        self.done = done
    }
}

/// The first call wins (a server-side ack is answered once, from whatever thread calls it).
final class AnswerOnce: Sendable {
    let claimed = Mutex(false)
    func claim() -> Bool {
        claimed.withLock { was in
            defer { was = true }; return !was
        }
    }
}
