// The command side of Redis: fire-and-forget publishes and generic commands with time-outs, on one
// connection driven by one ChorusLoop, with a bounded queue for the time Redis is unreachable.
import CHiredis
import ChorusLoop
import Logging

/// What a `RedisClient` has done so far. Plain counters kept on the loop thread.
public struct RedisClientCounters: Sendable, Equatable {
    /// Logins completed (connect + AUTH/SELECT).
    public var connects = 0
    /// Logins completed after a connection was lost or an attempt failed.
    public var reconnects = 0
    /// Attempts that ended before logging in.
    public var connectFailures = 0
    /// Publishes handed to Redis.
    public var publishes = 0
    /// Publishes dropped: the offline queue (or the bound on unacknowledged publishes) was full,
    /// or the client was stopped with them still queued.
    public var publishDrops = 0
    /// Publishes Redis answered with an error, or whose connection was lost before the answer.
    public var publishFailures = 0
    public var commandsTimedOut = 0
    /// Replies that could not be read (skipped; the command fails with `.malformedReply`).
    public var malformedReplies = 0
    /// Entries (and argument bytes) waiting for a connection.
    public var queueLength = 0
    public var queuedBytes = 0

    public init() {}
}

/// A Redis connection for PUBLISH and other commands.
///
/// `@unchecked Sendable`: every mutable property is touched only on `loop`'s thread; the public
/// methods called from elsewhere only hop there with `loop.execute`, carrying `Sendable` values.
/// Call `stop()` when done: until then the connection (and its reconnect timer) keeps itself alive.
public final class RedisClient: @unchecked Sendable {
    public let url: RedisURL
    public let loop: EventLoop
    public let configuration: RedisClientConfiguration
    private let logger: Logger
    private let connection: RedisConnection
    private let onStateChange: (RedisConnectionState) -> Void

    private enum Queued {
        case publish(channel: [UInt8], message: [UInt8])
        case command([[UInt8]], id: UInt64)
    }

    private var started = false
    private var stopped = false
    private var queue: [Queued] = []
    private var queueHead = 0
    private var queuedBytes = 0
    private var inFlightBytes = 0
    private var counters = RedisClientCounters()
    /// Whether the last state told was `.connected`; a failure is told once, not on every retry.
    private var toldConnected = false
    private var toldDown = false

    /// `onStateChange` runs on the loop's thread: `.connected` after each login, `.disconnected`
    /// when a connection is lost or the first attempt fails (not again for each retry).
    public init(
        url: RedisURL, loop: EventLoop, configuration: RedisClientConfiguration = .init(), logger: Logger,
        onStateChange: @escaping (RedisConnectionState) -> Void = { _ in }
    ) {
        self.url = url
        self.loop = loop
        self.configuration = configuration
        self.logger = logger
        self.onStateChange = onStateChange
        connection = RedisConnection(
            url: url, loop: loop, configuration: configuration, logger: logger, selectsDatabase: true)
        // Weak: a client released without `stop()` must not be called back; its connection then
        // stops itself at the next event instead of reconnecting forever.
        connection.onReady = { [weak self, unowned connection] in
            guard let self else { return connection.stop() }
            ready()
        }
        connection.onDown = { [weak self, unowned connection] reason, wasReady in
            guard let self else { return connection.stop() }
            down(reason, wasReady: wasReady)
        }
        connection.onPublishReplied = { [weak self] bytes, ok in
            guard let self else { return }
            inFlightBytes -= bytes
            if !ok { counters.publishFailures += 1 }
        }
    }

    /// A client released without `stop()` stops its connection on the loop (queued publishes are
    /// lost; queued commands end with `.timeout`).
    deinit {
        let connection = UncheckedSendable(connection)
        loop.execute { connection.value.stop() }
    }

    /// Connects; while Redis is unreachable it keeps trying with capped exponential back-off.
    /// A host name is resolved here, on the calling thread.
    public func start() {
        let host = connection.resolveHost()
        onLoop { [self] in
            guard !started, !stopped else { return }
            started = true
            connection.connect(host: host)
        }
    }

    /// Disconnects for good: frees the hiredis context, unregisters its socket, drops the queue
    /// (counted as publish drops) and fails waiting commands with `.stopped`.
    public func stop() {
        onLoop { [self] in
            guard !stopped else { return }
            stopped = true
            connection.stop()
            for entry in queue[queueHead...] {
                switch entry {
                case .publish: counters.publishDrops += 1
                case .command(_, let id): connection.failReply(id, .stopped)
                }
            }
            queue = []
            queueHead = 0
            queuedBytes = 0
        }
    }

    /// PUBLISH, fire and forget. While disconnected it waits in the bounded queue; beyond the
    /// bound (or once stopped) it is dropped and counted in `publishDrops`.
    public func publish(channel: [UInt8], message: [UInt8]) {
        if loop.inEventLoop {
            publishOnLoop(channel: channel, message: message)
        } else {
            loop.execute { [self] in publishOnLoop(channel: channel, message: message) }
        }
    }

    /// Any command, e.g. `[PUBSUB, NUMSUB, channel]`. `reply` runs on the loop's thread with the
    /// value, `.server` for an error reply, `.timeout` when no reply came within `timeout`
    /// (default `configuration.commandTimeout`; it counts from this call, queueing included).
    public func command(
        _ argv: [[UInt8]], timeout: Duration? = nil,
        _ reply: @escaping @Sendable (Result<RedisValue, RedisError>) -> Void
    ) {
        onLoop { [self] in commandOnLoop(argv, timeout: timeout, reply) }
    }

    /// Loop thread only: the same without the `Sendable` requirement on `reply`.
    public func commandOnLoop(
        _ argv: [[UInt8]], timeout: Duration? = nil, _ reply: @escaping (Result<RedisValue, RedisError>) -> Void
    ) {
        guard !stopped else { return reply(.failure(.stopped)) }
        guard let name = argv.first else { return reply(.failure(.unsupportedCommand(""))) }
        if Self.refusedCommands.contains(name.map { $0 | 0x20 }) {
            return reply(.failure(.unsupportedCommand(String(decoding: name, as: UTF8.self))))
        }
        let id = connection.expectReply(
            timeoutNanoseconds: (timeout ?? configuration.commandTimeout).nanoseconds, reply)
        if connection.isReady && queueHead == queue.count && connection.transmit(argv, id: id) { return }
        let bytes = argv.reduce(0) { $0 + $1.count }
        guard hasRoom(bytes) else { return connection.failReply(id, .queueFull) }
        enqueue(.command(argv, id: id), bytes: bytes)
    }

    /// Commands that would take the connection out of request/reply mode (subscribe and monitor
    /// modes, RESP3, a reset or a close): hiredis 0.14 would then misroute or reject later replies.
    /// Lower case; compared after ASCII lower-casing.
    static let refusedCommands: Set<[UInt8]> = Set(
        [
            "subscribe", "psubscribe", "ssubscribe", "unsubscribe", "punsubscribe", "sunsubscribe",
            "monitor", "hello", "reset", "quit", "sync", "psync",
        ].map { Array($0.utf8) })

    /// A snapshot of the counters. Loop thread only (or before the loop runs).
    public func countersOnLoop() -> RedisClientCounters {
        var c = counters
        c.connects = connection.connects
        c.reconnects = connection.reconnects
        c.connectFailures = connection.connectFailures
        c.commandsTimedOut = connection.commandsTimedOut
        c.malformedReplies = connection.malformedReplies
        c.queueLength = queue.count - queueHead
        c.queuedBytes = queuedBytes
        return c
    }

    /// A snapshot of the counters, delivered on the loop's thread. Safe from any thread.
    public func counters(_ body: @escaping @Sendable (RedisClientCounters) -> Void) {
        onLoop { [self] in body(countersOnLoop()) }
    }

    /// Whether the client is logged in right now. Loop thread only.
    public var isConnectedOnLoop: Bool { connection.isReady }

    // MARK: Loop side

    private func onLoop(_ body: @escaping @Sendable () -> Void) {
        loop.runOrExecute(body)
    }

    private func publishOnLoop(channel: [UInt8], message: [UInt8]) {
        channel.withUnsafeBytes { c in message.withUnsafeBytes { m in publishOnLoop(channel: c, message: m) } }
    }

    /// Loop thread only: PUBLISH from borrowed bytes, e.g. a message encoded into a scratch
    /// buffer. hiredis copies them into its output buffer; they are copied here only when the
    /// publish must wait in the queue.
    public func publishOnLoop(channel: UnsafeRawBufferPointer, message: UnsafeRawBufferPointer) {
        guard !stopped else {
            counters.publishDrops += 1
            return
        }
        let bytes = channel.count + message.count
        if connection.isReady && queueHead == queue.count {
            // Connected: the byte bound also applies to what Redis has not acknowledged yet, so a
            // Redis that stopped reading cannot grow hiredis's output buffer without limit.
            guard inFlightBytes + bytes <= configuration.maxQueuedBytes else {
                counters.publishDrops += 1
                return
            }
            if transmitPublish(channel: channel, message: message) { return }
        }
        guard hasRoom(bytes) else {
            counters.publishDrops += 1
            return
        }
        enqueue(.publish(channel: Array(channel), message: Array(message)), bytes: bytes)
    }

    private func transmitPublish(channel: UnsafeRawBufferPointer, message: UnsafeRawBufferPointer) -> Bool {
        guard connection.transmitPublish(channel: channel, message: message) else { return false }
        counters.publishes += 1
        inFlightBytes += channel.count + message.count
        return true
    }

    private func hasRoom(_ bytes: Int) -> Bool {
        queue.count - queueHead < configuration.maxQueuedCommands && queuedBytes + bytes <= configuration.maxQueuedBytes
    }

    private func enqueue(_ entry: Queued, bytes: Int) {
        queue.append(entry)
        queuedBytes += bytes
    }

    private func ready() {
        logger.info("redis: connected to \(url)")
        flushQueue()
        if !toldConnected {
            toldConnected = true
            toldDown = false
            onStateChange(.connected)
        }
    }

    /// Sends what waited, in order; stops if the connection goes away meanwhile.
    private func flushQueue() {
        while queueHead < queue.count {
            let entry = queue[queueHead]
            switch entry {
            case .publish(let channel, let message):
                let sent = channel.withUnsafeBytes { c in
                    message.withUnsafeBytes { m in transmitPublish(channel: c, message: m) }
                }
                guard sent else { return }
                queuedBytes -= channel.count + message.count
            case .command(let argv, let id):
                // A command that timed out while queued is not sent.
                if connection.isAwaiting(id) {
                    guard connection.transmit(argv, id: id) else { return }
                }
                queuedBytes -= argv.reduce(0) { $0 + $1.count }
            }
            queueHead += 1
        }
        queue.removeAll(keepingCapacity: queue.capacity <= 1024)
        queueHead = 0
    }

    private func down(_ reason: String, wasReady: Bool) {
        if toldConnected || !toldDown {
            logger.warning("redis: \(wasReady ? "connection lost" : "cannot connect") (\(url)): \(reason); retrying")
            toldConnected = false
            toldDown = true
            onStateChange(.disconnected(reason: reason))
        } else {
            logger.debug("redis: still cannot connect (\(url)): \(reason)")
        }
    }
}
