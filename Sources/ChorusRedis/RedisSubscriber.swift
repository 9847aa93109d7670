// The subscribe side of Redis: a dedicated connection in subscribe mode (Redis accepts nothing but
// (P)(UN)SUBSCRIBE on it), holding its own set of channels and patterns and subscribing them again
// after every reconnect. Messages reach the callback without copying their payload.
import CHiredis
import ChorusLoop
import Logging

/// One message as Redis delivered it. The buffers point into hiredis's reply and are valid only
/// during the callback: copy what must outlive it.
public struct RedisPubSubMessage {
    public let channel: UnsafeRawBufferPointer
    /// The pattern that matched, for a message received through `psubscribe`.
    public let pattern: UnsafeRawBufferPointer?
    public let payload: UnsafeRawBufferPointer
}

/// What a `RedisSubscriber` has done so far. Plain counters kept on the loop thread.
public struct RedisSubscriberCounters: Sendable, Equatable {
    public var connects = 0
    public var reconnects = 0
    public var connectFailures = 0
    public var messagesReceived = 0
    /// Pushes that were not a well-formed message or confirmation (skipped).
    public var malformedReplies = 0
    public var channels = 0
    public var patterns = 0

    public init() {}
}

/// A Redis connection in subscribe mode.
///
/// `@unchecked Sendable`: every mutable property is touched only on `loop`'s thread; the public
/// methods called from elsewhere only hop there with `loop.execute`, carrying `Sendable` values.
/// Call `stop()` when done: until then the connection (and its reconnect timer) keeps itself alive.
public final class RedisSubscriber: @unchecked Sendable {
    public let url: RedisURL
    public let loop: EventLoop
    private let logger: Logger
    private let connection: RedisConnection
    private let onMessage: (RedisPubSubMessage) -> Void
    private let onStateChange: (RedisConnectionState) -> Void

    private var started = false
    private var stopped = false
    private var channels = Set<[UInt8]>()
    private var patterns = Set<[UInt8]>()
    /// Subscriptions sent and not yet all confirmed, in order: Redis confirms each channel or
    /// pattern of a (P)SUBSCRIBE in order, so one count per call tells when that call is complete.
    private var confirmations: [(remaining: Int, done: () -> Void)] = []
    /// Completions waiting for the next `.connected` (calls made while disconnected).
    private var waitingForConnection: [() -> Void] = []
    private var toldConnected = false
    private var toldDown = false
    private var counters = RedisSubscriberCounters()

    /// SUBSCRIBE arguments per command, so a resubscription of many channels is several commands.
    static let subscribeBatch = 1024

    /// `onMessage` and `onStateChange` run on the loop's thread. `.connected` comes once logged in
    /// and every held channel and pattern is confirmed by Redis, so a publish after it is received.
    public init(
        url: RedisURL, loop: EventLoop, configuration: RedisClientConfiguration = .init(), logger: Logger,
        onMessage: @escaping (RedisPubSubMessage) -> Void,
        onStateChange: @escaping (RedisConnectionState) -> Void = { _ in }
    ) {
        self.url = url
        self.loop = loop
        self.logger = logger
        self.onMessage = onMessage
        self.onStateChange = onStateChange
        connection = RedisConnection(
            url: url, loop: loop, configuration: configuration, logger: logger, selectsDatabase: false)
        // Weak: a subscriber released without `stop()` must not be called back; its connection
        // then stops itself at the next event instead of reconnecting forever.
        connection.onReady = { [weak self, unowned connection] in
            guard let self else { return connection.stop() }
            ready()
        }
        connection.onDown = { [weak self, unowned connection] reason, wasReady in
            guard let self else { return connection.stop() }
            down(reason, wasReady: wasReady)
        }
        connection.onPush = { [weak self, unowned connection] reply in
            guard let self else { return connection.stop() }
            push(reply)
        }
    }

    /// A subscriber released without `stop()` stops its connection on the loop.
    deinit {
        let connection = UncheckedSendable(connection)
        loop.execute { connection.value.stop() }
    }

    /// Connects; while Redis is unreachable it keeps trying with capped exponential back-off.
    public func start() {
        let host = connection.resolveHost()
        onLoop { [self] in
            guard !started, !stopped else { return }
            started = true
            connection.connect(host: host)
        }
    }

    /// Disconnects for good and frees the context. Completions still waiting are not called.
    public func stop() {
        onLoop { [self] in
            guard !stopped else { return }
            stopped = true
            confirmations = []
            waitingForConnection = []
            connection.stop()
        }
    }

    /// Adds channels to the held set and subscribes them. `confirmed` (optional) runs on the loop's
    /// thread once Redis has confirmed them all (at once when they were all held and confirmed).
    public func subscribe(_ channels: [[UInt8]], confirmed: (@Sendable () -> Void)? = nil) {
        onLoop { [self] in change(channels, pattern: false, add: true, confirmed) }
    }

    public func unsubscribe(_ channels: [[UInt8]]) {
        onLoop { [self] in change(channels, pattern: false, add: false, nil) }
    }

    public func psubscribe(_ patterns: [[UInt8]], confirmed: (@Sendable () -> Void)? = nil) {
        onLoop { [self] in change(patterns, pattern: true, add: true, confirmed) }
    }

    public func punsubscribe(_ patterns: [[UInt8]]) {
        onLoop { [self] in change(patterns, pattern: true, add: false, nil) }
    }

    /// Loop thread only: `subscribe`/`psubscribe`/`unsubscribe`/`punsubscribe` without the hop.
    public func changeOnLoop(_ names: [[UInt8]], pattern: Bool, add: Bool, confirmed: (() -> Void)? = nil) {
        change(names, pattern: pattern, add: add, confirmed)
    }

    /// A snapshot of the counters. Loop thread only (or before the loop runs).
    public func countersOnLoop() -> RedisSubscriberCounters {
        var c = counters
        c.connects = connection.connects
        c.reconnects = connection.reconnects
        c.connectFailures = connection.connectFailures
        c.malformedReplies += connection.malformedReplies
        c.channels = channels.count
        c.patterns = patterns.count
        return c
    }

    /// A snapshot of the counters, delivered on the loop's thread. Safe from any thread.
    public func counters(_ body: @escaping @Sendable (RedisSubscriberCounters) -> Void) {
        onLoop { [self] in body(countersOnLoop()) }
    }

    // MARK: Loop side

    private func onLoop(_ body: @escaping @Sendable () -> Void) {
        loop.runOrExecute(body)
    }

    private func change(_ names: [[UInt8]], pattern: Bool, add: Bool, _ confirmed: (() -> Void)?) {
        guard !stopped else { return }
        var changed: [[UInt8]] = []
        for name in names {
            if add {
                if pattern ? patterns.insert(name).inserted : channels.insert(name).inserted { changed.append(name) }
            } else {
                if (pattern ? patterns.remove(name) : channels.remove(name)) != nil { changed.append(name) }
            }
        }
        let verb = (pattern ? "P" : "") + (add ? "SUBSCRIBE" : "UNSUBSCRIBE")
        if !changed.isEmpty {
            // Never an empty UNSUBSCRIBE: to Redis that means "all of them".
            if connection.isReady && send(verb, changed) {
                if add { confirmations.append((changed.count, confirmed ?? {})) }
            } else if let confirmed {
                // Not connected (or the connection is closing): the resubscription after the
                // next login carries these names.
                waitingForConnection.append(confirmed)
            }
            return
        }
        guard let confirmed else { return }
        if !toldConnected {
            waitingForConnection.append(confirmed)
        } else if confirmations.isEmpty {
            confirmed()
        } else {
            // Already held, but maybe not yet confirmed: complete after what is in flight.
            confirmations.append((0, confirmed))
        }
    }

    private func send(_ verb: String, _ names: [[UInt8]]) -> Bool {
        var start = 0
        while start < names.count {
            let end = min(names.count, start + Self.subscribeBatch)
            guard connection.transmitSubscription([Array(verb.utf8)] + names[start..<end]) else { return false }
            start = end
        }
        return true
    }

    private func ready() {
        logger.info("redis: subscriber connected to \(url)")
        let total = channels.count + patterns.count
        let announce = { [unowned self] in
            guard !toldConnected else { return }
            toldConnected = true
            toldDown = false
            onStateChange(.connected)
            let waiting = waitingForConnection
            waitingForConnection = []
            for done in waiting { done() }
        }
        guard total > 0 else { return announce() }
        let sent =
            (channels.isEmpty || send("SUBSCRIBE", Array(channels)))
            && (patterns.isEmpty || send("PSUBSCRIBE", Array(patterns)))
        if sent {
            confirmations.append((total, announce))
        } else {
            connection.close(reason: "could not resubscribe")
        }
    }

    private func down(_ reason: String, wasReady: Bool) {
        // Calls whose confirmation was in flight complete with the resubscription.
        for entry in confirmations { waitingForConnection.append(entry.done) }
        confirmations = []
        if toldConnected || !toldDown {
            logger.warning(
                "redis: subscriber \(wasReady ? "connection lost" : "cannot connect") (\(url)): \(reason); retrying")
            toldConnected = false
            toldDown = true
            onStateChange(.disconnected(reason: reason))
        } else {
            logger.debug("redis: subscriber still cannot connect (\(url)): \(reason)")
        }
    }

    private func confirm() {
        guard !confirmations.isEmpty else { return }
        confirmations[0].remaining -= 1
        while let first = confirmations.first, first.remaining <= 0 {
            confirmations.removeFirst()
            first.done()
        }
    }

    /// A reply hiredis routed to the subscription: `message`, `pmessage` or a confirmation.
    private func push(_ reply: UnsafePointer<redisReply>) {
        let r = reply.pointee
        guard r.type == REDIS_REPLY_ARRAY, r.elements >= 3, let elements = r.element,
            let kind = Self.text(elements[0])
        else {
            counters.malformedReplies += 1
            return
        }
        if kind.elementsEqual(Self.message) {
            guard r.elements == 3, let channel = Self.text(elements[1]), let payload = Self.text(elements[2]) else {
                counters.malformedReplies += 1
                return
            }
            counters.messagesReceived += 1
            onMessage(RedisPubSubMessage(channel: channel, pattern: nil, payload: payload))
        } else if kind.elementsEqual(Self.pmessage) {
            guard r.elements == 4, let pattern = Self.text(elements[1]), let channel = Self.text(elements[2]),
                let payload = Self.text(elements[3])
            else {
                counters.malformedReplies += 1
                return
            }
            counters.messagesReceived += 1
            onMessage(RedisPubSubMessage(channel: channel, pattern: pattern, payload: payload))
        } else if kind.elementsEqual(Self.subscribe) || kind.elementsEqual(Self.psubscribe) {
            confirm()
        } else if kind.elementsEqual(Self.unsubscribe) || kind.elementsEqual(Self.punsubscribe) {
            // Nothing waits for these.
        } else {
            counters.malformedReplies += 1
        }
    }

    private static let message = Array("message".utf8)
    private static let pmessage = Array("pmessage".utf8)
    private static let subscribe = Array("subscribe".utf8)
    private static let psubscribe = Array("psubscribe".utf8)
    private static let unsubscribe = Array("unsubscribe".utf8)
    private static let punsubscribe = Array("punsubscribe".utf8)

    /// The bytes of a bulk or status element, in place.
    private static func text(_ element: UnsafeMutablePointer<redisReply>?) -> UnsafeRawBufferPointer? {
        guard let e = element?.pointee, e.type == REDIS_REPLY_STRING || e.type == REDIS_REPLY_STATUS else { return nil }
        if e.len == 0 { return UnsafeRawBufferPointer(start: nil, count: 0) }
        guard let str = e.str else { return nil }
        return UnsafeRawBufferPointer(start: str, count: e.len)
    }
}
