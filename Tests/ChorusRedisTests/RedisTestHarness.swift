import ChorusLoop
import ChorusRedis
import Logging
import Synchronization

/// An event loop on its own thread for the Redis tests, with helpers to run code on it.
final class TestLoop: EventLoopDelegate, @unchecked Sendable {
    let loop: EventLoop
    private var thread: LoopThread?

    init() throws {
        loop = try EventLoop(index: 0, tickNanoseconds: 1_000_000_000)
        thread = LoopThread(name: "redis-test") { [self] in try? loop.run(delegate: self) }
    }

    func eventLoop(_ loop: EventLoop, ready token: UInt64, events: Epoll.Events) {}
    func eventLoopTick(_ loop: EventLoop, now: UInt64) {}
    func eventLoopDidFinishIteration(_ loop: EventLoop) {}

    @discardableResult
    func onLoop<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in loop.execute { continuation.resume(returning: body()) } }
    }

    func shutdown() {
        loop.stop()
        thread?.join()
        thread = nil
    }

    static let logger: Logger = {
        var logger = Logger(label: "chorus.redis.test")
        logger.logLevel = .info
        return logger
    }()
}

/// What a subscriber received and which states it went through, readable from the test.
final class Inbox: Sendable {
    struct Message: Equatable, Sendable {
        let channel: [UInt8]
        let pattern: [UInt8]?
        let payload: [UInt8]
    }

    private let messages = Mutex<[Message]>([])
    private let states = Mutex<[RedisConnectionState]>([])

    func receive(_ m: RedisPubSubMessage) {
        let copy = Message(channel: Array(m.channel), pattern: m.pattern.map { Array($0) }, payload: Array(m.payload))
        messages.withLock { $0.append(copy) }
    }

    func record(_ state: RedisConnectionState) { states.withLock { $0.append(state) } }

    var received: [Message] { messages.withLock { $0 } }
    var payloads: [[UInt8]] { messages.withLock { $0.map(\.payload) } }
    var stateLog: [RedisConnectionState] { states.withLock { $0 } }
    var lastState: RedisConnectionState? { states.withLock { $0.last } }
    var connectedCount: Int { states.withLock { $0.filter { $0 == .connected }.count } }
    var disconnectedReasons: [String] {
        states.withLock { $0.compactMap { if case .disconnected(let r) = $0 { r } else { nil } } }
    }
}

/// Polls `condition` until it holds or `timeout` passes; the last answer.
func eventually(_ timeout: Duration = .seconds(10), _ condition: () async -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return await condition()
}

extension RedisClient {
    /// `command`, awaited.
    func run(_ argv: [String], timeout: Duration? = nil) async -> Result<RedisValue, RedisError> {
        await withCheckedContinuation { continuation in
            command(argv.map { Array($0.utf8) }, timeout: timeout) { continuation.resume(returning: $0) }
        }
    }

    func snapshot() async -> RedisClientCounters {
        await withCheckedContinuation { continuation in counters { continuation.resume(returning: $0) } }
    }
}

extension RedisSubscriber {
    /// `subscribe`, awaited until Redis confirmed.
    func subscribeConfirmed(_ channels: [String]) async {
        await withCheckedContinuation { continuation in
            subscribe(channels.map { Array($0.utf8) }) { continuation.resume() }
        }
    }

    func psubscribeConfirmed(_ patterns: [String]) async {
        await withCheckedContinuation { continuation in
            psubscribe(patterns.map { Array($0.utf8) }) { continuation.resume() }
        }
    }

    func snapshot() async -> RedisSubscriberCounters {
        await withCheckedContinuation { continuation in counters { continuation.resume(returning: $0) } }
    }
}
