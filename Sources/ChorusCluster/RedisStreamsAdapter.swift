// The Socket.IO Redis Streams adapter (socket.io-redis-streams-adapter 0.3.x protocol, see
// StreamsWire.swift) for a SocketIOServer: nodes share rooms through one Redis stream, and
// connection state recovery works across nodes. A replayable event's offset is its stream entry
// id, the same on every node, and a session a node keeps (`sio:session:<pid>`) can be restored
// by any node, Chorus or Node.js, with the events it missed read back from the stream.
//
// Three connections, all driven by one server loop (the adapter's): one for commands (XADD, SET,
// GETDEL, XRANGE, PUBLISH, PUBSUB), one that blocks in XREAD, one subscribed to the namespaces'
// request and response channels. Everything the adapter keeps is confined to that loop.
//
// Order. This node's own broadcast is delivered here when Redis answered its XADD (with the id);
// the others' when the reader reads them. Both hand the event to every loop's task queue from the
// adapter's loop, so each loop sees them in the order the adapter dispatched them. A restore
// replays exactly the events this node had dispatched before it finished (those read by the
// reader, `lastRead`, and its own answered ones not yet read back, `ownAhead`); later ones reach
// the socket live because the restore's finish is queued on its loop before them.
import ChorusJSON
import ChorusLoop
import ChorusMsgPack
import ChorusRedis
import ChorusServer
import ChorusSocketIO
import Logging
import Synchronization

public struct RedisStreamsAdapterConfiguration: Sendable {
    public var url: RedisURL
    /// The stream's name and the pub/sub channels' prefix (`--redis-key`; the reference's
    /// `streamName` and `channelPrefix`, both "socket.io" by default).
    public var key = "socket.io"
    /// `MAXLEN ~` of each XADD (`--redis-stream-max-len`, the reference's `maxLen`): the stream,
    /// and so the events a recovery can replay, is trimmed to about this many entries.
    public var maxLength = 10_000
    /// Entries per XREAD, and how long one blocks (the reference's `readCount`, `blockTimeInMs`).
    public var readCount = 100
    public var blockMilliseconds = 5_000
    /// The reference's `sessionKeyPrefix`.
    public var sessionKeyPrefix = "sio:session:"
    /// Seconds a cluster-wide request waits for the other nodes (`--redis-request-timeout`).
    public var requestTimeout = 5.0
    public var client = RedisClientConfiguration()
    /// The server loop that drives the Redis connections.
    public var loopIndex = 0

    public init(url: RedisURL) { self.url = url }
}

/// Unchecked Sendable: as `RedisAdapter`: set once in `start`, then confined to the adapter's loop
/// (every public call hops there), except `published` (a Mutex).
public final class RedisStreamsAdapter: ClusterRecoveryAdapter, ClusterCountersSource, @unchecked Sendable {
    public let configuration: RedisStreamsAdapterConfiguration
    /// This node's id on the wire (16 hex digits, as socket.io-adapter's `randomId()`).
    public let uid: String
    private let logger: Logger
    private let decoder = MsgPackDecoder(limits: .init(maxDepth: 64, maxContainerCount: 1 << 16))
    private let streamName: [UInt8]
    private let maxLengthArgument: [UInt8]

    // Set once in `start` (before any Redis callback can run), read-only afterwards.
    private weak var io: SocketIOServer?
    private var loop: EventLoop?
    private var client: RedisClient?
    private var reader: RedisClient?
    private var subscriber: RedisSubscriber?
    private var namespaces: Set<String> = []
    /// Subscribed channel → namespace (each namespace's public and private channels).
    private var channelNamespace: [[UInt8]: String] = [:]
    /// Offsets are added (and sessions kept) only with recovery on, as the reference.
    private var recoveryOn = false
    private var windowMilliseconds = 120_000

    // Loop-confined.
    /// The id the next XREAD reads after (nil until the stream's end was asked at start).
    private var readAfter: String?
    private var lastRead = StreamID.zero
    private var polling = false
    private var stopped = false
    private var readerConnected = false
    /// This node's own entries delivered here (XADD answered) and not yet read back by the
    /// reader, in id order; `ownAheadHead` is the first live one.
    private var ownAhead: [StreamID] = []
    private var ownAheadHead = 0
    /// The newest own entry dropped from `ownAhead` for room, until the reader has read it.
    private var ownAheadForgottenThrough: StreamID?
    private var pending: [String: PendingRequest] = [:]
    private var ackRequests: [String: (clientCount: @Sendable (Int) -> Void, ack: @Sendable (JSONValue) -> Void)] = [:]
    private var counters = ClusterCounters()
    private var streamCounters = StreamCounters()
    private var publishTimer: LoopTimer?
    private let published = Mutex(ClusterCounters())

    /// Rounds of XRANGE a restore makes at most while the reader is ahead of what it read (the
    /// reference's `RESTORE_SESSION_MAX_XRANGE_CALLS`).
    static let maxRestoreRanges = 100
    /// Own entries remembered ahead of the reader (16 bytes each).
    static let maxOwnAhead = 1 << 20

    public init(configuration: RedisStreamsAdapterConfiguration, logger: Logger = Logger(label: "chorus.cluster")) {
        self.configuration = configuration
        self.logger = logger
        var rng = SystemRandomNumberGenerator()
        uid = (0..<8).map { _ in String(UInt8.random(in: 0...255, using: &rng), radix: 16).leftPadded(to: 2) }.joined()
        streamName = Array(configuration.key.utf8)
        maxLengthArgument = Array(String(configuration.maxLength).utf8)
    }

    func publicChannel(_ namespace: String) -> String { configuration.key + "#" + namespace + "#" }
    func privateChannel(_ namespace: String, uid: String) -> String { publicChannel(namespace) + uid + "#" }

    // MARK: Lifecycle

    public func start(io: SocketIOServer, server: WebSocketServer) {
        self.io = io
        let loop = server.eventLoop(min(configuration.loopIndex, server.loopCount - 1))
        self.loop = loop
        if let recovery = io.configuration.recovery {
            recoveryOn = true
            windowMilliseconds = max(1, Int((recovery.window * 1000).rounded()))
        }
        namespaces = Set(io.namespaceNames)
        for name in namespaces {
            channelNamespace[Array(publicChannel(name).utf8)] = name
            channelNamespace[Array(privateChannel(name, uid: uid).utf8)] = name
        }
        client = RedisClient(url: configuration.url, loop: loop, configuration: configuration.client, logger: logger) { [weak self] state in
            self?.clientState(state)
        }
        reader = RedisClient(url: configuration.url, loop: loop, configuration: configuration.client, logger: logger) { [weak self] state in
            self?.readerState(state)
        }
        subscriber = RedisSubscriber(url: configuration.url, loop: loop, configuration: configuration.client, logger: logger,
                                     onMessage: { [weak self] message in self?.received(message) },
                                     onStateChange: { _ in })
        subscriber?.subscribe(Array(channelNamespace.keys))
        client?.start()
        reader?.start()
        subscriber?.start()
        onLoop { [weak self] in self?.publishCountersPeriodically() }
        logger.info("cluster adapter started", metadata: [
            "adapter": "redis-streams", "redis": "\(configuration.url)", "stream": "\(configuration.key)", "uid": "\(uid)",
            "namespaces": "\(namespaces.sorted().joined(separator: ","))", "recovery": "\(recoveryOn)",
        ])
    }

    public func stop() {
        onLoop { [weak self] in
            guard let self else { return }
            stopped = true
            if let timer = publishTimer { loop?.cancel(timer) }
            publishTimer = nil
        }
        subscriber?.stop()
        reader?.stop()
        client?.stop()
    }

    private func onLoop(_ body: @escaping @Sendable () -> Void) {
        guard let loop else { return }
        if loop.inEventLoop { body() } else { loop.execute(body) }
    }

    private func clientState(_ state: RedisConnectionState) {
        switch state {
        case .connected:
            counters.redisConnected = true
            logger.info("connected to Redis", metadata: ["redis": "\(configuration.url)"])
        case .disconnected(let reason):
            counters.redisConnected = false
            logger.warning("Redis unreachable: local delivery continues without offsets; entries wait in the bounded queue",
                           metadata: ["reason": "\(reason)"])
        }
    }

    private func readerState(_ state: RedisConnectionState) {
        switch state {
        case .connected:
            readerConnected = true
            poll()
        case .disconnected:
            readerConnected = false
        }
    }

    // MARK: Counters

    /// The counters as the adapter's loop last published them (at most a second old).
    public var publishedCounters: ClusterCounters { published.withLock { $0 } }

    private func countersOnLoop() -> ClusterCounters {
        counters.folding(client: client, subscriber: subscriber, others: reader.map { [$0] } ?? [])
    }

    private func publishCountersPeriodically() {
        let snapshot = countersOnLoop()
        published.withLock { $0 = snapshot }
        publishTimer = loop?.schedule(afterNanoseconds: RedisAdapter.publishIntervalNanoseconds) { [weak self] in
            self?.publishCountersPeriodically()
        }
    }

    public func stats(_ completion: @escaping @Sendable (JSONValue?) -> Void) {
        onLoop { [self] in
            let c = countersOnLoop()
            var o: JSONObject = ["adapter": "redis-streams", "uid": .string(uid), "stream": .string(configuration.key),
                                 "lastRead": .string(lastRead.description), "readerConnected": .bool(readerConnected),
                                 // Connected and placed at the stream's end: entries from now on are read.
                                 "readerReady": .bool(readerConnected && readAfter != nil)]
            if case .object(let fields) = c.json { for (k, v) in fields { o[k] = v } }
            if case .object(let fields) = streamCounters.json { for (k, v) in fields { o[k] = v } }
            guard c.redisConnected else { return completion(.object(o)) }
            let fields = o
            serverCountOnLoop { result in
                var o = fields
                o["servers"] = (try? result.get()).map { JSONValue($0) } ?? .null
                completion(.object(o))
            }
        }
    }

    // MARK: The stream: publishing

    private func xadd(_ message: StreamMessage, reply: ((Result<RedisValue, RedisError>) -> Void)? = nil) {
        guard let client else { reply?(.failure(.stopped)); return }
        let argv: [[UInt8]] = [Array("XADD".utf8), streamName, Array("MAXLEN".utf8), Array("~".utf8), maxLengthArgument, Array("*".utf8)]
            + message.streamFields
        streamCounters.entriesPublished += 1
        client.commandOnLoop(argv) { [self] result in
            if case .failure(let error) = result {
                streamCounters.publishFailures += 1
                logger.debug("XADD failed", metadata: ["error": "\(error)"])
            }
            reply?(result)
        }
    }

    public func broadcast(_ broadcast: AdapterBroadcast) {
        let message = StreamMessage(uid: uid, nsp: broadcast.namespace, type: .broadcast, data: Self.broadcastData(broadcast))
        onLoop { [self] in
            counters.broadcastsPublished += 1
            xadd(message)
        }
    }

    public func publishReplayable(_ broadcast: AdapterBroadcast, deliver: @escaping @Sendable (String?) -> Void) {
        let message = StreamMessage(uid: uid, nsp: broadcast.namespace, type: .broadcast, data: Self.broadcastData(broadcast))
        onLoop { [self] in
            counters.broadcastsPublished += 1
            guard let client, client.isConnectedOnLoop else {
                // Redis unreachable: waiting for it would hold every emit here. Delivered now
                // without an offset (the client's offset stays where it was), published when Redis
                // is back (within the bounded queue).
                streamCounters.deliveredWithoutOffset += 1
                deliver(nil)
                xadd(message)
                return
            }
            xadd(message) { [self] result in
                guard case .success(let value) = result, let text = value.bytes.map({ String(decoding: $0, as: UTF8.self) }),
                      let id = StreamID(text) else {
                    streamCounters.deliveredWithoutOffset += 1
                    return deliver(nil)
                }
                if id > lastRead { noteOwnAhead(id) }
                deliver(text)
            }
        }
    }

    /// Bounded: while the reader is cut off from Redis and this node keeps publishing, the list
    /// would grow without end. Beyond the bound the oldest are forgotten, and restores are
    /// refused (`unavailable`: they could not tell those events apart) until the reader has
    /// caught up with every one of them.
    private func noteOwnAhead(_ id: StreamID) {
        ownAhead.append(id)
        if ownAhead.count - ownAheadHead > Self.maxOwnAhead {
            ownAheadForgottenThrough = ownAhead[ownAheadHead]
            ownAheadHead += 1
        }
    }

    static func broadcastData(_ b: AdapterBroadcast) -> JSONValue {
        StreamBroadcast(event: b.data.first?.stringValue ?? "", args: Array(b.data.dropFirst()),
                        options: StreamOptions(rooms: b.rooms, except: b.except)).json
    }

    public func addSockets(_ selector: SocketSelector, rooms: [String]) {
        publishOperation(.socketsJoin, selector, ["rooms": .array(rooms.map(JSONValue.string))])
    }

    public func delSockets(_ selector: SocketSelector, rooms: [String]) {
        publishOperation(.socketsLeave, selector, ["rooms": .array(rooms.map(JSONValue.string))])
    }

    public func disconnectSockets(_ selector: SocketSelector, close: Bool) {
        publishOperation(.disconnectSockets, selector, ["close": .bool(close)])
    }

    private func publishOperation(_ type: StreamMessageType, _ selector: SocketSelector, _ fields: JSONObject) {
        var data = fields
        data["opts"] = StreamOptions(rooms: selector.rooms, except: selector.except).json
        let message = StreamMessage(uid: uid, nsp: selector.namespace, type: type, data: .object(data))
        onLoop { [self] in
            counters.requestsPublished += 1
            xadd(message)
        }
    }

    // MARK: The stream: reading

    /// One XREAD at a time, from where the last one ended, while the reader is connected.
    private func poll() {
        guard !polling, !stopped, readerConnected, let reader else { return }
        polling = true
        guard let after = readAfter else {
            // Where the stream ends now: entries from here on are this node's to read. (The
            // reference starts at `$` until the first entry arrives, and misses what is added
            // between two empty reads; the id avoids that.)
            reader.commandOnLoop([Array("XREVRANGE".utf8), streamName, Array("+".utf8), Array("-".utf8), Array("COUNT".utf8), Array("1".utf8)]) { [self] result in
                polling = false
                switch result {
                case .success(let value):
                    let last = value.array?.first?.array?.first?.bytes.map { String(decoding: $0, as: UTF8.self) } ?? "0-0"
                    readAfter = last
                    lastRead = StreamID(last) ?? .zero
                    poll()
                case .failure:
                    retryPollLater()
                }
            }
            return
        }
        let block = configuration.blockMilliseconds
        reader.commandOnLoop([Array("XREAD".utf8), Array("BLOCK".utf8), Array(String(block).utf8), Array("COUNT".utf8),
                              Array(String(configuration.readCount).utf8), Array("STREAMS".utf8), streamName, Array(after.utf8)],
                             timeout: .milliseconds(Int64(block) + Int64(configuration.requestTimeout * 1000))) { [self] result in
            polling = false
            switch result {
            case .success(let value):
                // nil: the block time passed with nothing new.
                if let streams = value.array, let entries = streams.first?.array?.dropFirst().first?.array {
                    for entry in entries { read(entry) }
                }
                poll()
            case .failure(let error):
                if case .disconnected = error { return }  // polled again once reconnected
                logger.debug("XREAD failed", metadata: ["error": "\(error)"])
                retryPollLater()
            }
        }
    }

    private func retryPollLater() {
        loop?.schedule(afterNanoseconds: 100_000_000) { [weak self] in self?.poll() }
    }

    /// One entry `[id, [field, value, ...]]` read from the stream.
    private func read(_ entry: RedisValue) {
        guard let parts = entry.array, parts.count == 2, let idBytes = parts[0].bytes else {
            counters.malformed += 1
            return
        }
        let idText = String(decoding: idBytes, as: UTF8.self)
        guard let id = StreamID(idText) else {
            counters.malformed += 1
            return
        }
        readAfter = idText
        lastRead = max(lastRead, id)
        while ownAheadHead < ownAhead.count && ownAhead[ownAheadHead] <= lastRead { ownAheadHead += 1 }
        if let forgotten = ownAheadForgottenThrough, forgotten <= lastRead { ownAheadForgottenThrough = nil }
        if ownAheadHead > 64 && ownAheadHead * 2 >= ownAhead.count {
            ownAhead.removeFirst(ownAheadHead)
            ownAheadHead = 0
        }
        streamCounters.entriesRead += 1
        guard let message = StreamMessage(streamFields: Self.fields(parts[1]), decoder: decoder) else {
            counters.malformed += 1
            return
        }
        // Our own: delivered here already, when XADD answered.
        guard message.uid != uid, namespaces.contains(message.nsp) else {
            if message.kind == .broadcast { counters.broadcastsSkipped += 1 }
            return
        }
        handle(message, offset: idText)
    }

    static func fields(_ value: RedisValue) -> [String: [UInt8]] {
        guard let flat = value.array else { return [:] }
        var fields: [String: [UInt8]] = [:]
        var i = 0
        while i + 1 < flat.count {
            if let k = flat[i].bytes, let v = flat[i + 1].bytes { fields[String(decoding: k, as: UTF8.self)] = v }
            i += 2
        }
        return fields
    }

    // MARK: Pub/sub: requests and responses

    private func received(_ message: RedisPubSubMessage) {
        guard let namespace = channelNamespace[Array(message.channel)] else { return }
        guard let decoded = StreamMessage(pubSubPayload: message.payload, decoder: decoder) else {
            counters.malformed += 1
            return
        }
        guard decoded.uid != uid, decoded.nsp == namespace else { return }
        handle(decoded, offset: nil)
    }

    /// A message from another node: from the stream (`offset`: its entry id) or pub/sub.
    private func handle(_ message: StreamMessage, offset: String?) {
        guard let io, let kind = message.kind else { return }
        let namespace = message.nsp
        switch kind {
        case .broadcast:
            guard let b = StreamBroadcast(json: message.data) else {
                counters.malformed += 1
                return
            }
            if let requestId = b.requestId {
                broadcastWithAckReceived(b, requestId: requestId, from: message.uid, namespace: namespace)
                return
            }
            counters.broadcastsReceived += 1
            let keys = b.options.rooms.map { namespace + "#" + $0 }
            if !keys.isEmpty && !keys.contains(where: { io.rooms.members(of: $0) > 0 }) {
                counters.broadcastsSkipped += 1
                counters.broadcastsNotHeld += 1
                return
            }
            counters.broadcastsDelivered += 1
            io.of(namespace).to(b.options.rooms).except(b.options.except)
                .deliverFromCluster(b.event, b.args, offset: recoveryOn && b.isReplayable ? offset : nil)
        case .socketsJoin, .socketsLeave, .disconnectSockets:
            guard let options = StreamOptions(json: message.data?["opts"]) else {
                counters.malformed += 1
                return
            }
            counters.requestsReceived += 1
            let selector = SocketSelector(namespace: namespace, rooms: options.rooms, except: options.except)
            let rooms = message.data?["rooms"]?.arrayValue?.compactMap(\.stringValue) ?? []
            switch kind {
            case .socketsJoin: io.localSocketsJoin(selector, rooms: rooms)
            case .socketsLeave: io.localSocketsLeave(selector, rooms: rooms)
            default: io.localDisconnectSockets(selector, close: message.data?["close"]?.boolValue ?? false)
            }
        case .fetchSockets:
            guard let requestId = message.data?["requestId"]?.stringValue, let options = StreamOptions(json: message.data?["opts"]) else {
                counters.malformed += 1
                return
            }
            counters.requestsReceived += 1
            let respond = responder(to: message.uid, namespace: namespace)
            io.localSocketDescriptions(SocketSelector(namespace: namespace, rooms: options.rooms, except: options.except)) { sockets in
                respond(.fetchSocketsResponse, ["requestId": .string(requestId), "sockets": .array(sockets.map(\.json))])
            }
        case .serverSideEmit:
            guard let packet = message.data?["packet"]?.arrayValue else {
                counters.malformed += 1
                return
            }
            counters.requestsReceived += 1
            let ns = io.of(namespace)
            guard let requestId = message.data?["requestId"]?.stringValue else {
                ns.receiveServerSideEmit(packet, ack: nil)
                return
            }
            let respond = responder(to: message.uid, namespace: namespace)
            // The requester waits for one answer per node: without a handler, null at once.
            guard let event = packet.first?.stringValue, ns.hasServerSideHandler(event) else {
                respond(.serverSideEmitResponse, ["requestId": .string(requestId), "packet": .null])
                return
            }
            let once = AnswerOnce()
            ns.receiveServerSideEmit(packet) { value in
                if once.claim() { respond(.serverSideEmitResponse, ["requestId": .string(requestId), "packet": value]) }
            }
        case .fetchSocketsResponse, .serverSideEmitResponse, .broadcastClientCount, .broadcastAck:
            responseReceived(kind, message.data)
        case .initialHeartbeat, .heartbeat, .adapterClose:
            break
        }
    }

    private func broadcastWithAckReceived(_ b: StreamBroadcast, requestId: String, from requester: String, namespace: String) {
        guard let io else { return }
        counters.requestsReceived += 1
        let respond = responder(to: requester, namespace: namespace)
        let timeout = Double(b.options.flags["timeout"]?.intValue ?? Int(configuration.requestTimeout * 1000)) / 1000
        let (event, args) = (b.event, b.args)
        io.countEmit(namespace: namespace, event: event, loopIndex: io.webSocketServer?.currentLoopIndex)
        io.withLocalSockets(SocketSelector(namespace: namespace, rooms: b.options.rooms, except: b.options.except), { socket -> Bool? in
            socket.emit(event, args, timeout: timeout, counted: false) { result in
                if case .success(let answer) = result {
                    respond(.broadcastAck, ["requestId": .string(requestId), "packet": answer.first ?? .null])
                }
            }
            return true
        }) { reached in
            respond(.broadcastClientCount, ["requestId": .string(requestId), "clientCount": JSONValue(reached.count)])
        }
    }

    /// Publishes a response on the requester's own channel (from any thread).
    private func responder(to requester: String, namespace: String) -> @Sendable (StreamMessageType, JSONObject) -> Void {
        let channel = Array(privateChannel(namespace, uid: requester).utf8)
        let uid = uid
        return { [weak self] type, data in
            let payload = StreamMessage(uid: uid, nsp: namespace, type: type, data: .object(data)).pubSubPayload
            self?.onLoop { [weak self] in
                guard let self else { return }
                client?.publish(channel: channel, message: payload)
                counters.responsesPublished += 1
            }
        }
    }

    private func responseReceived(_ kind: StreamMessageType, _ data: JSONValue?) {
        guard let requestId = data?["requestId"]?.stringValue else {
            counters.malformed += 1
            return
        }
        if let waiting = ackRequests[requestId] {
            counters.responsesReceived += 1
            if kind == .broadcastClientCount { waiting.clientCount(data?["clientCount"]?.intValue ?? 0) }
            if kind == .broadcastAck { waiting.ack(data?["packet"] ?? .null) }
            return
        }
        guard let entry = pending[requestId] else { return }
        counters.responsesReceived += 1
        entry.received += 1
        switch (kind, entry.accumulator) {
        case (.fetchSocketsResponse, .sockets(var all)):
            for socket in data?["sockets"]?.arrayValue ?? [] {
                if let description = try? SocketDescription(json: socket) { all.append(description) }
            }
            entry.accumulator = .sockets(all)
        case (.serverSideEmitResponse, .responses(var all)):
            all.append(data?["packet"] ?? .null)
            entry.accumulator = .responses(all)
        default:
            break
        }
        if entry.received >= entry.expected {
            pending[requestId] = nil
            if let timer = entry.timer { loop?.cancel(timer) }
            counters.recordRequest(nanoseconds: monotonicNanoseconds() &- entry.publishedAt)
            entry.done(.success(entry.accumulator))
        }
    }

    // MARK: Requests to the other nodes

    public func fetchSockets(_ selector: SocketSelector, local: [SocketDescription],
                             completion: @escaping @Sendable (Result<[SocketDescription], AdapterError>) -> Void) {
        ask(selector.namespace, type: .remoteFetch, accumulator: .sockets(local),
            make: { id in
                StreamMessage(uid: self.uid, nsp: selector.namespace, type: .fetchSockets,
                              data: ["opts": StreamOptions(rooms: selector.rooms, except: selector.except).json, "requestId": .string(id)])
            },
            done: { completion($0.map { $0.sockets }) })
    }

    /// socket.io-adapter's `ClusterAdapter` has no cluster-wide room list: this node's rooms (a
    /// Node.js node with the Redis Streams adapter answers the same).
    public func allRooms(namespace: String, local: Set<String>, completion: @escaping @Sendable (Result<Set<String>, AdapterError>) -> Void) {
        completion(.success(local))
    }

    public func serverSideEmit(namespace: String, data: [JSONValue], ack: (@Sendable (Result<[JSONValue], AdapterError>) -> Void)?) {
        guard let ack else {
            let message = StreamMessage(uid: uid, nsp: namespace, type: .serverSideEmit, data: ["packet": .array(data)])
            onLoop { [self] in publishRequest(message) }
            return
        }
        ask(namespace, type: .serverSideEmit, accumulator: .responses([]),
            make: { id in StreamMessage(uid: self.uid, nsp: namespace, type: .serverSideEmit, data: ["packet": .array(data), "requestId": .string(id)]) },
            done: { ack($0.map { $0.responses }) })
    }

    public func broadcastWithAck(_ broadcast: AdapterBroadcast, timeout: Double,
                                 clientCount: @escaping @Sendable (Int) -> Void, ack: @escaping @Sendable (JSONValue) -> Void) {
        onLoop { [self] in
            let requestId = Self.requestID()
            ackRequests[requestId] = (clientCount, ack)
            let b = StreamBroadcast(event: broadcast.data.first?.stringValue ?? "", args: Array(broadcast.data.dropFirst()),
                                    options: StreamOptions(rooms: broadcast.rooms, except: broadcast.except,
                                                           flags: ["timeout": JSONValue(Int((timeout * 1000).rounded()))]),
                                    requestId: requestId)
            publishRequest(StreamMessage(uid: uid, nsp: broadcast.namespace, type: .broadcast, data: b.json))
            loop?.schedule(afterNanoseconds: UInt64(max(timeout, 0) * 1e9)) { [weak self] in self?.ackRequests[requestId] = nil }
        }
    }

    public func serverCount(completion: @escaping @Sendable (Result<Int, AdapterError>) -> Void) {
        onLoop { [self] in serverCountOnLoop(completion) }
    }

    /// `PUBSUB NUMSUB <prefix>#/#`: the nodes subscribed to the main namespace's channel.
    private func serverCountOnLoop(namespace: String = "/", _ completion: @escaping @Sendable (Result<Int, AdapterError>) -> Void) {
        guard let client else { return completion(.failure(.notRunning)) }
        client.numSub(publicChannel(namespace), timeout: configuration.requestTimeout, completion)
    }

    private func publishRequest(_ message: StreamMessage) {
        client?.publish(channel: Array(publicChannel(message.nsp).utf8), message: message.pubSubPayload)
        counters.requestsPublished += 1
    }

    private func ask(_ namespace: String, type: ClusterRequestType, accumulator: PendingRequest.Accumulator,
                     make: @escaping @Sendable (String) -> StreamMessage,
                     done: @escaping @Sendable (Result<PendingRequest.Accumulator, AdapterError>) -> Void) {
        onLoop { [self] in
            serverCountOnLoop(namespace: namespace) { [self] result in
                switch result {
                case .failure(let error): done(.failure(error))
                case .success(let nodes):
                    guard nodes - 1 > 0 else { return done(.success(accumulator)) }
                    let requestId = Self.requestID()
                    let entry = PendingRequest(type: type, expected: nodes - 1, accumulator: accumulator, done: done)
                    pending[requestId] = entry
                    entry.timer = loop?.schedule(afterNanoseconds: UInt64(configuration.requestTimeout * 1e9)) { [weak self] in
                        guard let self, let entry = pending.removeValue(forKey: requestId) else { return }
                        counters.requestsTimedOut += 1
                        counters.recordRequest(nanoseconds: monotonicNanoseconds() &- entry.publishedAt)
                        entry.done(.failure(.timeout(received: entry.received, expected: entry.expected)))
                    }
                    publishRequest(make(requestId))
                }
            }
        }
    }

    static func requestID() -> String {
        var rng = SystemRandomNumberGenerator()
        return (0..<8).map { _ in String(UInt8.random(in: 0...255, using: &rng), radix: 16).leftPadded(to: 2) }.joined()
    }

    // MARK: Connection state recovery

    public func persistSession(_ session: PersistedSession, namespace: String) {
        let key = Array((configuration.sessionKeyPrefix + session.pid).utf8)
        let value = session.storedValue
        onLoop { [self] in
            guard let client else { return }
            streamCounters.sessionsPersisted += 1
            client.commandOnLoop([Array("SET".utf8), key, value, Array("PX".utf8), Array(String(windowMilliseconds).utf8)]) { [self] result in
                if case .failure(let error) = result {
                    streamCounters.sessionPersistFailures += 1
                    logger.debug("session not persisted", metadata: ["error": "\(error)"])
                }
            }
        }
    }

    public func restoreSession(pid: String, offset: String, namespace: String,
                               completion: @escaping @Sendable (Result<RestoredSession, RecoveryRefusal>) -> Void) {
        onLoop { [self] in restoreOnLoop(pid: pid, offset: offset, namespace: namespace, completion) }
    }

    /// GETDEL of the session and XRANGE of the offset itself (pipelined, as the reference), then
    /// the entries after it.
    private func restoreOnLoop(pid: String, offset: String, namespace: String,
                               _ completion: @escaping @Sendable (Result<RestoredSession, RecoveryRefusal>) -> Void) {
        guard let start = StreamID(offset) else { return completion(.failure(.offsetGone)) }
        // Before the reader knows where it stands, what it has delivered is unknown.
        guard let client, client.isConnectedOnLoop, readAfter != nil, ownAheadForgottenThrough == nil else {
            return completion(.failure(.unavailable))
        }
        var stored: Result<RedisValue, RedisError>?
        client.commandOnLoop([Array("GETDEL".utf8), Array((configuration.sessionKeyPrefix + pid).utf8)]) { result in stored = result }
        client.commandOnLoop([Array("XRANGE".utf8), streamName, Array(offset.utf8), Array(offset.utf8)]) { [self] result in
            // GETDEL's reply came first (one connection, replies in order).
            guard case .success(let value)? = stored else { return completion(.failure(.unavailable)) }
            guard let bytes = value.bytes else { return completion(.failure(.unknownSession)) }
            guard let session = PersistedSession(storedValue: bytes, decoder: decoder) else {
                counters.malformed += 1
                return completion(.failure(.unknownSession))
            }
            guard case .success(let range) = result else {
                // Taken, and the stream could not be read: put it back for another attempt.
                persistSession(session, namespace: namespace)
                return completion(.failure(.unavailable))
            }
            guard range.array?.isEmpty == false else { return completion(.failure(.offsetGone)) }
            collectMissed(after: start, session: session, namespace: namespace, candidates: [], rounds: 0, completion)
        }
    }

    private func collectMissed(after: StreamID, session: PersistedSession, namespace: String,
                               candidates: [(id: StreamID, data: [JSONValue])], rounds: Int,
                               _ completion: @escaping @Sendable (Result<RestoredSession, RecoveryRefusal>) -> Void) {
        guard let client else { return completion(.failure(.unavailable)) }
        streamCounters.restoreRanges += 1
        client.commandOnLoop([Array("XRANGE".utf8), streamName, Array(after.next.description.utf8), Array("+".utf8)]) { [self] result in
            guard case .success(let value) = result, let entries = value.array else {
                // The session was taken: put it back so that another attempt can have it.
                persistSession(session, namespace: namespace)
                return completion(.failure(.unavailable))
            }
            var candidates = candidates
            var end = after
            for entry in entries {
                guard let parts = entry.array, parts.count == 2, let idBytes = parts[0].bytes,
                      let id = StreamID(String(decoding: idBytes, as: UTF8.self)) else { continue }
                end = id
                guard let message = StreamMessage(streamFields: Self.fields(parts[1]), decoder: decoder),
                      message.nsp == namespace, message.kind == .broadcast,
                      let b = StreamBroadcast(json: message.data), b.isReplayable, b.options.reaches(session.rooms) else { continue }
                candidates.append((id, [.string(b.event)] + b.args + [.string(id.description)]))
            }
            // The reader has dispatched entries past this range: they must be replayed too.
            if lastRead > end && rounds + 1 < Self.maxRestoreRanges {
                return collectMissed(after: end, session: session, namespace: namespace, candidates: candidates, rounds: rounds + 1, completion)
            }
            let missed = Self.replayed(candidates, lastRead: lastRead, ownAhead: Set(ownAhead[ownAheadHead...]))
            completion(.success(RestoredSession(session: session, missed: missed)))
        }
    }
}

extension RedisStreamsAdapter {
    /// Of the entries a restore read (oldest first), those to replay: the ones this node has
    /// dispatched already (read by its reader up to `lastRead`, or its own answered XADDs in
    /// `ownAhead`). The others are dispatched later, after the restore's finish on the socket's
    /// loop, and so reach the socket live: replaying them too would deliver them twice.
    static func replayed(_ candidates: [(id: StreamID, data: [JSONValue])], lastRead: StreamID, ownAhead: Set<StreamID>) -> [[JSONValue]] {
        candidates.filter { $0.id <= lastRead || ownAhead.contains($0.id) }.map { $0.data }
    }
}

/// What the Streams adapter adds to `ClusterCounters`, for /api/v1/stats.
struct StreamCounters: Sendable, Equatable {
    var entriesPublished = 0
    var entriesRead = 0
    var publishFailures = 0
    /// Own replayable events delivered without an offset (Redis unreachable or XADD failed).
    var deliveredWithoutOffset = 0
    var sessionsPersisted = 0
    var sessionPersistFailures = 0
    /// XRANGE calls made by restores.
    var restoreRanges = 0

    var json: JSONValue {
        ["entriesPublished": JSONValue(entriesPublished), "entriesRead": JSONValue(entriesRead),
         "publishFailures": JSONValue(publishFailures), "deliveredWithoutOffset": JSONValue(deliveredWithoutOffset),
         "sessionsPersisted": JSONValue(sessionsPersisted), "sessionPersistFailures": JSONValue(sessionPersistFailures),
         "restoreRanges": JSONValue(restoreRanges)]
    }
}

/// Adapters whose counters /metrics reads (at most a second old, safe from any thread).
public protocol ClusterCountersSource: AnyObject, Sendable {
    var publishedCounters: ClusterCounters { get }
}

extension RedisAdapter: ClusterCountersSource {}

extension String {
    func leftPadded(to width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}
