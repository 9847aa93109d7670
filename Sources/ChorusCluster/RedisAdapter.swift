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
import ChorusJSON
import ChorusLoop
import ChorusMsgPack
import ChorusRedis
import ChorusServer
import ChorusSocketIO
import Logging
import Synchronization

/// Which broadcast channels a node subscribes to (`--redis-subscription`).
public enum RedisSubscriptionMode: String, Sendable, CaseIterable {
    /// As socket.io-redis-adapter: `PSUBSCRIBE <key>#<nsp>#*`. Every node receives every
    /// broadcast, including those for rooms it has no member in (received, then skipped).
    case pattern
    /// `SUBSCRIBE <key>#<nsp>#` (broadcasts to the namespace or to several rooms) and
    /// `<key>#<nsp>#<room>#` for each room with a member on this node: subscribed when the room
    /// gets its first local member, unsubscribed when it loses its last, in batches on the
    /// adapter's loop. Socket-id rooms are rooms like the others (every socket is alone in the room
    /// named after its id), so a `to(socketId)` broadcast from any node or emitter, published on
    /// `<key>#<nsp>#<id>#`, reaches exactly the node holding that socket; the price is one channel
    /// per local socket on Redis and one SUBSCRIBE argument per connect (batched).
    /// A broadcast published in the instant between a room's first local join and Redis's
    /// confirmation of its channel is not received (the pattern mode has the same window for a
    /// broadcast already in flight when the join happens).
    case rooms
}

public struct RedisAdapterConfiguration: Sendable {
    public var url: RedisURL
    /// The channels' prefix (`--redis-key`), as the adapter's and the emitter's `key` option.
    public var key = "socket.io"
    /// Seconds a cluster-wide request waits for the other nodes (`--redis-request-timeout`).
    public var requestTimeout = 5.0
    /// Reconnect back-off, command time-out and the bounded queue of publishes while Redis is
    /// unreachable (`--redis-publish-queue`).
    public var client = RedisClientConfiguration()
    /// The server loop that drives the Redis connections.
    public var loopIndex = 0
    /// The broadcast channels subscribed to (`--redis-subscription`).
    public var subscription = RedisSubscriptionMode.pattern

    public init(url: RedisURL) { self.url = url }
}

/// What the adapter has done, for /api/v1/stats, /metrics and the tests.
public struct ClusterCounters: Sendable, Equatable {
    public var broadcastsPublished = 0
    public var broadcastsReceived = 0
    /// Delivered to this node's sockets (possibly to nobody if no member was left).
    public var broadcastsDelivered = 0
    /// This node's own, another namespace's, or for a room without local members: not decoded further.
    public var broadcastsSkipped = 0
    /// Of those skipped: on the channel of a room without a local member, received for nothing
    /// (what the `rooms` subscription mode avoids; a few still arrive just after a room emptied).
    public var broadcastsNotHeld = 0
    public var requestsPublished = 0
    public var requestsReceived = 0
    public var responsesPublished = 0
    public var responsesReceived = 0
    public var requestsTimedOut = 0
    /// Messages from Redis that could not be decoded (skipped).
    public var malformed = 0
    public var redisConnected = false
    /// From the publishing connection: publishes dropped because the queue was full while
    /// Redis was unreachable, and publishes waiting in it now.
    public var publishDrops = 0
    public var publishQueue = 0
    /// Channels and patterns the subscribing connection holds (in `rooms` mode, one per room
    /// with a local member, socket-id rooms included, plus the namespace and request/response
    /// channels).
    public var subscriptions = 0
    /// Logins to Redis after a lost connection or a failed attempt (publishing and subscribing
    /// connections together).
    public var reconnects = 0
    /// Cluster-wide requests that waited for other nodes (fetch, rooms, server-side emit with
    /// ack): time from publishing to the last answer or the timeout, in non-cumulative buckets
    /// (`requestSecondsBounds`, then +Inf), and the sum in nanoseconds.
    public var requestLatency = SIMD16<Int>()
    public var requestNanoseconds = 0

    /// Upper bounds of `requestLatency`'s buckets, in seconds: 0.5 ms ... 10 s.
    public static let requestSecondsBounds: [Double] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

    public init() {}

    mutating func recordRequest(nanoseconds: UInt64) {
        let seconds = Double(nanoseconds) / 1e9
        let index = Self.requestSecondsBounds.firstIndex { seconds <= $0 } ?? Self.requestSecondsBounds.count
        requestLatency[index] &+= 1
        requestNanoseconds &+= Int(nanoseconds)
    }

    public var json: JSONValue {
        [
            "broadcastsPublished": JSONValue(broadcastsPublished), "broadcastsReceived": JSONValue(broadcastsReceived),
            "broadcastsDelivered": JSONValue(broadcastsDelivered), "broadcastsSkipped": JSONValue(broadcastsSkipped), "broadcastsNotHeld": JSONValue(broadcastsNotHeld),
            "requestsPublished": JSONValue(requestsPublished), "requestsReceived": JSONValue(requestsReceived),
            "responsesPublished": JSONValue(responsesPublished), "responsesReceived": JSONValue(responsesReceived),
            "requestsTimedOut": JSONValue(requestsTimedOut), "malformed": JSONValue(malformed),
            "redisConnected": .bool(redisConnected), "publishDrops": JSONValue(publishDrops), "publishQueue": JSONValue(publishQueue),
            "subscriptions": JSONValue(subscriptions),
            "reconnects": JSONValue(reconnects),
        ]
    }
}

/// Unchecked Sendable: the fields set in `start` are written once, before any Redis callback or
/// other thread can use them; the rest is confined to the adapter's loop (public calls hop there
/// with `execute`), except `changedRooms` and `published`, which are Mutexes.
public final class RedisAdapter: SocketIOAdapter, @unchecked Sendable {
    public let configuration: RedisAdapterConfiguration
    /// This node's id on the wire (6 alphanumerics, as uid2(6) in the reference adapter).
    public let uid: String
    private let uidBytes: [UInt8]
    private let logger: Logger
    private let decoder = MsgPackDecoder(limits: .init(maxDepth: 64, maxContainerCount: 1 << 16))

    // Set once in `start` (main thread, before any Redis callback can run), read-only afterwards.
    private weak var io: SocketIOServer?
    private var loop: EventLoop?
    private var client: RedisClient?
    private var subscriber: RedisSubscriber?
    private var channelsByNamespace: [String: ClusterChannels] = [:]
    /// Subscribed channel/pattern bytes → namespace.
    private var patternNamespace: [[UInt8]: String] = [:]
    /// `rooms` mode: each namespace's broadcast channel prefix `<key>#<nsp>#`, to recognise its
    /// broadcasts among the plain messages without copying the channel.
    private var broadcastPrefixes: [(prefix: [UInt8], namespace: String)] = []
    private var requestNamespace: [[UInt8]: String] = [:]
    private var responseNamespace: [[UInt8]: String] = [:]

    // Loop-confined.
    private var pending: [String: PendingRequest] = [:]
    /// This node's broadcasts with acknowledgements awaiting the other nodes' counts and answers.
    private var ackRequests: [String: (clientCount: @Sendable (Int) -> Void, ack: @Sendable (JSONValue) -> Void)] = [:]
    private var counters = ClusterCounters()
    /// `rooms` mode: room keys whose occupancy changed, waiting for the adapter's loop (any thread
    /// appends; the first append of a batch schedules the reconciliation).
    private let changedRooms = Mutex<[String]>([])
    private var publishTimer: LoopTimer?
    /// The counters as of the adapter loop's last publication (once per second), for a scrape on
    /// any thread: one lock a second, nothing on the message path.
    private let published = Mutex(ClusterCounters())

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
        let client = RedisClient(url: configuration.url, loop: loop, configuration: configuration.client, logger: logger) { [weak self] state in
            self?.publisherState(state)
        }
        let subscriber = RedisSubscriber(url: configuration.url, loop: loop, configuration: configuration.client, logger: logger,
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
        logger.info("cluster adapter started", metadata: [
            "redis": "\(configuration.url)", "key": "\(configuration.key)", "uid": "\(uid)",
            "namespaces": "\(io.namespaceNames.joined(separator: ","))", "subscription": "\(configuration.subscription.rawValue)",
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

    private func countersOnLoop() -> ClusterCounters { counters.folding(client: client, subscriber: subscriber) }

    private func publishCountersPeriodically() {
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

    private func onLoop(_ body: @escaping @Sendable () -> Void) {
        guard let loop else { return }
        if loop.inEventLoop { body() } else { loop.execute(body) }
    }

    private func publisherState(_ state: RedisConnectionState) {
        switch state {
        case .connected:
            counters.redisConnected = true
            logger.info("connected to Redis", metadata: ["redis": "\(configuration.url)"])
        case .disconnected(let reason):
            counters.redisConnected = false
            logger.warning("Redis unreachable: local delivery continues; publishes wait in the bounded queue, requests answer with this node only",
                           metadata: ["reason": "\(reason)"])
        }
    }

    private func subscriberState(_ state: RedisConnectionState) {
        if case .connected = state { logger.info("subscribed to the cluster's channels") }
    }

    private func publish(_ channel: String, _ message: [UInt8]) {
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
        onLoop { [self] in
            publish(channel, bytes)
            counters.broadcastsPublished += 1
        }
    }

    public func addSockets(_ selector: SocketSelector, rooms: [String]) {
        publishRequest(selector.namespace, .remoteJoin(uid: uid, requestId: nil, .selector(cluster(selector), rooms: rooms)))
    }

    public func delSockets(_ selector: SocketSelector, rooms: [String]) {
        publishRequest(selector.namespace, .remoteLeave(uid: uid, requestId: nil, .selector(cluster(selector), rooms: rooms)))
    }

    public func disconnectSockets(_ selector: SocketSelector, close: Bool) {
        publishRequest(selector.namespace, .remoteDisconnect(uid: uid, requestId: nil, .selector(cluster(selector), close: close)))
    }

    public func fetchSockets(_ selector: SocketSelector, local: [SocketDescription],
                             completion: @escaping @Sendable (Result<[SocketDescription], AdapterError>) -> Void) {
        ask(selector.namespace, expectingFromOthers: true, accumulator: .sockets(local),
            make: { [uid] id in .remoteFetch(uid: uid, requestId: id, ClusterSelector(rooms: selector.rooms, except: selector.except)) },
            done: { completion($0.map { $0.sockets }) })
    }

    public func allRooms(namespace: String, local: Set<String>, completion: @escaping @Sendable (Result<Set<String>, AdapterError>) -> Void) {
        ask(namespace, expectingFromOthers: true, accumulator: .rooms(local),
            make: { [uid] id in .allRooms(uid: uid, requestId: id) },
            done: { completion($0.map { $0.rooms }) })
    }

    public func serverSideEmit(namespace: String, data: [JSONValue], ack: (@Sendable (Result<[JSONValue], AdapterError>) -> Void)?) {
        guard let ack else {
            publishRequest(namespace, .serverSideEmit(uid: uid, requestId: nil, data: data))
            return
        }
        ask(namespace, expectingFromOthers: true, accumulator: .responses([]),
            make: { [uid] id in .serverSideEmit(uid: uid, requestId: id, data: data) },
            done: { ack($0.map { $0.responses }) })
    }

    public func broadcastWithAck(_ broadcast: AdapterBroadcast, timeout: Double,
                                 clientCount: @escaping @Sendable (Int) -> Void, ack: @escaping @Sendable (JSONValue) -> Void) {
        guard let channels = channelsByNamespace[broadcast.namespace] else { return }
        onLoop { [self] in
            let requestId = Self.makeID() + Self.makeID()
            ackRequests[requestId] = (clientCount, ack)
            let request = ClusterRequest.broadcast(
                uid: uid, requestId: requestId, packet: ClusterPacket(data: broadcast.data, namespace: broadcast.namespace),
                selector: ClusterSelector(rooms: broadcast.rooms, except: broadcast.except),
                flags: ClusterFlags(.object(["timeout": MsgPackValue(json: .double((timeout * 1000).rounded()))])))
            publish(channels.request, request.encode())
            counters.requestsPublished += 1
            // Answers after the timeout have nobody to go to (as in the reference adapter).
            loop?.schedule(afterNanoseconds: UInt64(max(timeout, 0) * 1e9)) { [weak self] in self?.ackRequests[requestId] = nil }
        }
    }

    public func serverCount(completion: @escaping @Sendable (Result<Int, AdapterError>) -> Void) {
        onLoop { [self] in
            numSub(channelsByNamespace["/"]?.request ?? ClusterChannels(key: configuration.key, namespace: "/").request, completion)
        }
    }

    private func cluster(_ s: SocketSelector) -> ClusterSelector { ClusterSelector(rooms: s.rooms, except: s.except) }

    private func publishRequest(_ namespace: String, _ request: ClusterRequest) {
        guard let channels = channelsByNamespace[namespace] else { return }
        let bytes = request.encode()
        onLoop { [self] in
            publish(channels.request, bytes)
            counters.requestsPublished += 1
        }
    }

    /// `PUBSUB NUMSUB <request channel>`: how many nodes (this one included) listen.
    private func numSub(_ channel: String, _ completion: @escaping @Sendable (Result<Int, AdapterError>) -> Void) {
        guard let client else { return completion(.failure(.notRunning)) }
        client.numSub(channel, timeout: configuration.requestTimeout, completion)
    }

    /// A request every other node answers: counts the nodes, publishes, and completes once all
    /// answered or after the request timeout.
    private func ask(_ namespace: String, expectingFromOthers: Bool, accumulator: PendingRequest.Accumulator,
                     make: @escaping @Sendable (String) -> ClusterRequest,
                     done: @escaping @Sendable (Result<PendingRequest.Accumulator, AdapterError>) -> Void) {
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
                    let entry = PendingRequest(type: request.type, expected: others, accumulator: accumulator, done: done)
                    pending[requestId] = entry
                    entry.timer = loop?.schedule(afterNanoseconds: UInt64(configuration.requestTimeout * 1e9)) { [weak self] in
                        self?.expire(requestId)
                    }
                    publish(channels.request, request.encode())
                    counters.requestsPublished += 1
                }
            }
        }
    }

    private func expire(_ requestId: String) {
        guard let entry = pending.removeValue(forKey: requestId) else { return }
        counters.requestsTimedOut += 1
        counters.recordRequest(nanoseconds: monotonicNanoseconds() &- entry.publishedAt)
        logger.warning("cluster request timed out", metadata: [
            "type": "\(entry.type)", "received": "\(entry.received)", "expected": "\(entry.expected)",
        ])
        entry.done(.failure(.timeout(received: entry.received, expected: entry.expected)))
    }

    // MARK: Room subscriptions (`rooms` mode)

    private func roomOccupancyChanged(_ key: String) {
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
    private func reconcileRooms() {
        let keys = changedRooms.withLock { changed in
            defer { changed = [] }
            return changed
        }
        guard let io, let subscriber else { return }
        var subscribe: [[UInt8]] = [], unsubscribe: [[UInt8]] = []
        for key in Set(keys) {
            guard let channel = roomChannel(ofKey: key) else { continue }
            if io.rooms.members(of: key) > 0 { subscribe.append(channel) } else { unsubscribe.append(channel) }
        }
        if !subscribe.isEmpty { subscriber.changeOnLoop(subscribe, pattern: false, add: true) }
        if !unsubscribe.isEmpty { subscriber.changeOnLoop(unsubscribe, pattern: false, add: false) }
    }

    /// `<key>#<nsp>#<room>#` for a directory key `<nsp>#<room>`; nil for a namespace's own key
    /// (`<nsp>`, every socket of it) or a namespace the adapter does not serve.
    private func roomChannel(ofKey key: String) -> [UInt8]? {
        let utf8 = key.utf8
        for (_, namespace) in broadcastPrefixes {
            let ns = namespace.utf8
            guard utf8.count > ns.count, utf8.starts(with: ns), utf8[utf8.index(utf8.startIndex, offsetBy: ns.count)] == UInt8(ascii: "#"),
                  let channels = channelsByNamespace[namespace] else { continue }
            return Array(channels.broadcast(room: String(key.dropFirst(namespace.count + 1))).utf8)
        }
        return nil
    }

    // MARK: Incoming (loop thread)

    private func received(_ message: RedisPubSubMessage) {
        if let pattern = message.pattern {
            guard let namespace = patternNamespace[Array(pattern)] else { return }
            receivedBroadcast(namespace: namespace, channel: message.channel, payload: message.payload)
            return
        }
        if configuration.subscription == .rooms {
            for (prefix, namespace) in broadcastPrefixes where message.channel.starts(with: prefix) {
                receivedBroadcast(namespace: namespace, channel: message.channel, payload: message.payload)
                return
            }
        }
        let channel = Array(message.channel)
        if let namespace = requestNamespace[channel] {
            receivedRequest(namespace: namespace, payload: message.payload)
        } else if responseNamespace[channel] != nil {
            receivedResponse(payload: message.payload)
        }
    }

    private func receivedBroadcast(namespace: String, channel: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer) {
        counters.broadcastsReceived += 1
        guard let io, let channels = channelsByNamespace[namespace], let room = channels.room(ofBroadcastChannel: channel) else {
            counters.broadcastsSkipped += 1
            return
        }
        if ClusterBroadcast.isPublished(by: uidBytes, payload) {
            counters.broadcastsSkipped += 1
            return
        }
        // A room's own channel and no local member: nothing to decode (as the reference adapter).
        if !room.isEmpty && io.rooms.members(of: namespace + "#" + room) == 0 {
            counters.broadcastsSkipped += 1
            counters.broadcastsNotHeld += 1
            return
        }
        let broadcast: ClusterBroadcast
        do throws(ClusterWireError) {
            broadcast = try ClusterBroadcast.decode(payload, decoder: decoder)
        } catch {
            counters.malformed += 1
            logger.debug("malformed broadcast skipped", metadata: ["error": "\(error)"])
            return
        }
        guard broadcast.uid != uid, broadcast.packet.namespace == namespace, let event = broadcast.packet.event else {
            counters.broadcastsSkipped += 1
            return
        }
        counters.broadcastsDelivered += 1
        io.of(namespace).to(broadcast.selector.rooms).except(broadcast.selector.except).local
            .emit(event, Array(broadcast.packet.args))
    }

    private func receivedRequest(namespace: String, payload: UnsafeRawBufferPointer) {
        let request: ClusterRequest
        do throws(ClusterWireError) {
            request = try ClusterRequest.decode(payload, decoder: decoder)
        } catch {
            counters.malformed += 1
            logger.debug("malformed request skipped", metadata: ["error": "\(error)"])
            return
        }
        // Our own requests come back to us: the local part is already done.
        if request.uid == uid { return }
        if let id = request.requestId, pending[id] != nil || ackRequests[id] != nil { return }
        counters.requestsReceived += 1
        guard let io, let channels = channelsByNamespace[namespace] else { return }
        let ns = io.of(namespace)
        let respond: @Sendable (ClusterResponse) -> Void = { [weak self] response in
            guard let self else { return }
            let bytes = response.encode()
            onLoop { [self] in
                publish(channels.response, bytes)
                counters.responsesPublished += 1
            }
        }
        switch request {
        case .sockets(_, let requestId, let rooms):
            io.withLocalSockets(SocketSelector(namespace: namespace, rooms: rooms), { $0.id }) { ids in
                respond(.sockets(requestId: requestId, socketIds: ids))
            }
        case .allRooms(_, let requestId):
            respond(.allRooms(requestId: requestId, rooms: io.localRooms(namespace: namespace).sorted()))
        case .remoteJoin(_, let requestId, let target), .remoteLeave(_, let requestId, let target):
            let join = request.type == .remoteJoin
            switch target {
            case .selector(let s, let rooms):
                let selector = SocketSelector(namespace: namespace, rooms: s.rooms, except: s.except)
                if join { io.localSocketsJoin(selector, rooms: rooms) } else { io.localSocketsLeave(selector, rooms: rooms) }
            case .socket(let id, let room):
                io.withLocalSockets(SocketSelector(namespace: namespace, rooms: [id]), { socket -> Bool? in
                    if join { socket.join(room) } else { socket.leave(room) }
                    return true
                }) { found in
                    if let requestId, !found.isEmpty { respond(.done(requestId: requestId)) }
                }
            }
        case .remoteDisconnect(_, let requestId, let target):
            switch target {
            case .selector(let s, let close):
                io.localDisconnectSockets(SocketSelector(namespace: namespace, rooms: s.rooms, except: s.except), close: close)
            case .socket(let id, let close):
                io.withLocalSockets(SocketSelector(namespace: namespace, rooms: [id]), { socket -> Bool? in
                    socket.disconnect(close: close)
                    return true
                }) { found in
                    if let requestId, !found.isEmpty { respond(.done(requestId: requestId)) }
                }
            }
        case .remoteFetch(_, let requestId, let s):
            io.localSocketDescriptions(SocketSelector(namespace: namespace, rooms: s.rooms, except: s.except)) { sockets in
                respond(.fetch(requestId: requestId, sockets: sockets))
            }
        case .serverSideEmit(_, let requestId, let data):
            guard let requestId else {
                ns.receiveServerSideEmit(data, ack: nil)
                return
            }
            // The requester waits for one answer per node: a node without a handler for the event
            // answers null at once rather than leaving it to time out.
            guard let event = data.first?.stringValue, ns.hasServerSideHandler(event) else {
                respond(.serverSideEmit(requestId: requestId, data: .null))
                return
            }
            let once = AnswerOnce()
            ns.receiveServerSideEmit(data) { value in
                if once.claim() { respond(.serverSideEmit(requestId: requestId, data: value)) }
            }
        case .broadcast(_, let requestId, let packet, let s, let flags):
            guard let event = packet.event else { return }
            let args = Array(packet.args)
            let timeout = Double(flags.timeout ?? Int64(configuration.requestTimeout * 1000)) / 1000
            io.countEmit(namespace: namespace, event: event, loopIndex: io.webSocketServer?.currentLoopIndex)
            io.withLocalSockets(SocketSelector(namespace: namespace, rooms: s.rooms, except: s.except), { socket -> Bool? in
                socket.emit(event, args, timeout: timeout, counted: false) { result in
                    if case .success(let answer) = result {
                        respond(.broadcastAck(requestId: requestId, packet: answer.first ?? .null))
                    }
                }
                return true
            }) { reached in
                respond(.broadcastClientCount(requestId: requestId, clientCount: reached.count))
            }
        }
    }

    private func receivedResponse(payload: UnsafeRawBufferPointer) {
        let response: ClusterResponse?
        do throws(ClusterWireError) {
            response = try ClusterResponse.decode(payload, decoder: decoder) { [pending, ackRequests] id in
                ackRequests[id] != nil ? .broadcast : pending[id]?.type
            }
        } catch {
            counters.malformed += 1
            return
        }
        if let response, let waiting = ackRequests[response.requestId] {
            counters.responsesReceived += 1
            switch response {
            case .broadcastClientCount(_, let count): waiting.clientCount(count)
            case .broadcastAck(_, let value): waiting.ack(value)
            default: break
            }
            return
        }
        guard let response, let entry = pending[response.requestId] else { return }
        counters.responsesReceived += 1
        entry.received += 1
        switch (response, entry.accumulator) {
        case (.fetch(_, let sockets), .sockets(var all)):
            all += sockets
            entry.accumulator = .sockets(all)
        case (.allRooms(_, let rooms), .rooms(var all)):
            all.formUnion(rooms)
            entry.accumulator = .rooms(all)
        case (.serverSideEmit(_, let data), .responses(var all)):
            all.append(data)
            entry.accumulator = .responses(all)
        default:
            break
        }
        if entry.received >= entry.expected {
            pending[response.requestId] = nil
            if let timer = entry.timer { loop?.cancel(timer) }
            counters.recordRequest(nanoseconds: monotonicNanoseconds() &- entry.publishedAt)
            entry.done(.success(entry.accumulator))
        }
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

    init(type: ClusterRequestType, expected: Int, accumulator: Accumulator,
         done: @escaping @Sendable (Result<Accumulator, AdapterError>) -> Void) {
        self.type = type
        self.expected = expected
        self.accumulator = accumulator
        self.done = done
    }
}

/// The first call wins (a server-side ack is answered once, from whatever thread calls it).
final class AnswerOnce: Sendable {
    private let claimed = Mutex(false)
    func claim() -> Bool { claimed.withLock { was in defer { was = true }; return !was } }
}
