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
//
// Over the ~400-line guide by a little: the adapter's state and the order above in one place;
// requests and recovery are in RedisStreamsAdapter+Requests.swift and +Recovery.swift.
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
    let logger: Logger
    let decoder = MsgPackDecoder(limits: .init(maxDepth: 64, maxContainerCount: 1 << 16))
    let streamName: [UInt8]
    let maxLengthArgument: [UInt8]

    // Set once in `start` (before any Redis callback can run), read-only afterwards.
    weak var io: SocketIOServer?
    var loop: EventLoop?
    var client: RedisClient?
    var reader: RedisClient?
    var subscriber: RedisSubscriber?
    var namespaces: Set<String> = []
    /// Subscribed channel → namespace (each namespace's public and private channels).
    var channelNamespace: [[UInt8]: String] = [:]
    /// Offsets are added (and sessions kept) only with recovery on, as the reference.
    var recoveryOn = false
    var windowMilliseconds = 120_000

    // Loop-confined.
    /// The id the next XREAD reads after (nil until the stream's end was asked at start).
    var readAfter: String?
    var lastRead = StreamID.zero
    var polling = false
    var stopped = false
    var readerConnected = false
    /// This node's own entries delivered here (XADD answered) and not yet read back by the
    /// reader, in id order; `ownAheadHead` is the first live one.
    var ownAhead: [StreamID] = []
    var ownAheadHead = 0
    /// The newest own entry dropped from `ownAhead` for room, until the reader has read it.
    var ownAheadForgottenThrough: StreamID?
    var pending: [String: PendingRequest] = [:]
    var ackRequests: [String: (clientCount: @Sendable (Int) -> Void, ack: @Sendable (JSONValue) -> Void)] = [:]
    var counters = ClusterCounters()
    var streamCounters = StreamCounters()
    var publishTimer: LoopTimer?
    let published = Mutex(ClusterCounters())

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
        client = RedisClient(url: configuration.url, loop: loop, configuration: configuration.client, logger: logger) {
            [weak self] state in
            self?.clientState(state)
        }
        reader = RedisClient(url: configuration.url, loop: loop, configuration: configuration.client, logger: logger) {
            [weak self] state in
            self?.readerState(state)
        }
        subscriber = RedisSubscriber(
            url: configuration.url, loop: loop, configuration: configuration.client, logger: logger,
            onMessage: { [weak self] message in self?.received(message) },
            onStateChange: { _ in })
        subscriber?.subscribe(Array(channelNamespace.keys))
        client?.start()
        reader?.start()
        subscriber?.start()
        onLoop { [weak self] in self?.publishCountersPeriodically() }
        logger.info(
            "cluster adapter started",
            metadata: [
                "adapter": "redis-streams", "redis": "\(configuration.url)", "stream": "\(configuration.key)",
                "uid": "\(uid)",
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

    func clientState(_ state: RedisConnectionState) {
        switch state {
        case .connected:
            counters.redisConnected = true
            logger.info("connected to Redis", metadata: ["redis": "\(configuration.url)"])
        case .disconnected(let reason):
            counters.redisConnected = false
            logger.warning(
                "Redis unreachable: local delivery continues without offsets; entries wait in the bounded queue",
                metadata: ["reason": "\(reason)"])
        }
    }

    func readerState(_ state: RedisConnectionState) {
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

    func countersOnLoop() -> ClusterCounters {
        counters.folding(client: client, subscriber: subscriber, others: reader.map { [$0] } ?? [])
    }

    func publishCountersPeriodically() {
        let snapshot = countersOnLoop()
        published.withLock { $0 = snapshot }
        publishTimer = loop?.schedule(afterNanoseconds: RedisAdapter.publishIntervalNanoseconds) { [weak self] in
            self?.publishCountersPeriodically()
        }
    }

    public func stats(_ completion: @escaping @Sendable (JSONValue?) -> Void) {
        onLoop { [self] in
            let c = countersOnLoop()
            var o: JSONObject = [
                "adapter": "redis-streams", "uid": .string(uid), "stream": .string(configuration.key),
                "lastRead": .string(lastRead.description), "readerConnected": .bool(readerConnected),
                // Connected and placed at the stream's end: entries from now on are read.
                "readerReady": .bool(readerConnected && readAfter != nil),
            ]
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

    func xadd(_ message: StreamMessage, reply: ((Result<RedisValue, RedisError>) -> Void)? = nil) {
        guard let client else { reply?(.failure(.stopped)); return }
        let argv: [[UInt8]] =
            [Array("XADD".utf8), streamName, Array("MAXLEN".utf8), Array("~".utf8), maxLengthArgument, Array("*".utf8)]
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
        let message = StreamMessage(
            uid: uid, nsp: broadcast.namespace, type: .broadcast, data: Self.broadcastData(broadcast))
        onLoopInOrder { [self] in
            counters.broadcastsPublished += 1
            xadd(message)
        }
    }

    public func publishReplayable(_ broadcast: AdapterBroadcast, deliver: @escaping @Sendable (String?) -> Void) {
        let message = StreamMessage(
            uid: uid, nsp: broadcast.namespace, type: .broadcast, data: Self.broadcastData(broadcast))
        onLoopInOrder { [self] in
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
                guard case .success(let value) = result,
                    let text = value.bytes.map({ String(decoding: $0, as: UTF8.self) }),
                    let id = StreamID(text)
                else {
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
    func noteOwnAhead(_ id: StreamID) {
        ownAhead.append(id)
        if ownAhead.count - ownAheadHead > Self.maxOwnAhead {
            ownAheadForgottenThrough = ownAhead[ownAheadHead]
            ownAheadHead += 1
        }
    }

    static func broadcastData(_ b: AdapterBroadcast) -> JSONValue {
        StreamBroadcast(
            event: b.data.first?.stringValue ?? "", args: Array(b.data.dropFirst()),
            options: StreamOptions(rooms: b.rooms, except: b.except)
        ).json
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

    func publishOperation(_ type: StreamMessageType, _ selector: SocketSelector, _ fields: JSONObject) {
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
    func poll() {
        guard !polling, !stopped, readerConnected, let reader else { return }
        polling = true
        guard let after = readAfter else {
            // Where the stream ends now: entries from here on are this node's to read. (The
            // reference starts at `$` until the first entry arrives, and misses what is added
            // between two empty reads; the id avoids that.)
            reader.commandOnLoop([
                Array("XREVRANGE".utf8), streamName, Array("+".utf8), Array("-".utf8), Array("COUNT".utf8),
                Array("1".utf8),
            ]) { [self] result in
                polling = false
                switch result {
                case .success(let value):
                    let last =
                        value.array?.first?.array?.first?.bytes.map { String(decoding: $0, as: UTF8.self) } ?? "0-0"
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
        reader.commandOnLoop(
            [
                Array("XREAD".utf8), Array("BLOCK".utf8), Array(String(block).utf8), Array("COUNT".utf8),
                Array(String(configuration.readCount).utf8), Array("STREAMS".utf8), streamName, Array(after.utf8),
            ],
            timeout: .milliseconds(Int64(block) + Int64(configuration.requestTimeout * 1000))
        ) { [self] result in
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

    func retryPollLater() {
        loop?.schedule(afterNanoseconds: 100_000_000) { [weak self] in self?.poll() }
    }

    /// One entry `[id, [field, value, ...]]` read from the stream.
    func read(_ entry: RedisValue) {
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
        [
            "entriesPublished": JSONValue(entriesPublished), "entriesRead": JSONValue(entriesRead),
            "publishFailures": JSONValue(publishFailures), "deliveredWithoutOffset": JSONValue(deliveredWithoutOffset),
            "sessionsPersisted": JSONValue(sessionsPersisted),
            "sessionPersistFailures": JSONValue(sessionPersistFailures),
            "restoreRanges": JSONValue(restoreRanges),
        ]
    }
}
