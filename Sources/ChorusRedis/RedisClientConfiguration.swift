// The knobs of a Redis connection: back-off, time-outs and the bound of the offline queue.

public struct RedisClientConfiguration: Sendable, Equatable {
    /// The first reconnect delay; each failed attempt doubles it, up to `maximumReconnectDelay`.
    /// Each delay is shortened by up to 20% at random so that nodes restarted together do not
    /// reconnect in lockstep.
    public var initialReconnectDelay: Duration
    public var maximumReconnectDelay: Duration
    /// How long a connection attempt may take, TCP connect and AUTH/SELECT included.
    public var connectTimeout: Duration
    /// The time-out of `command` when the call gives none.
    public var commandTimeout: Duration
    /// While Redis is unreachable, publishes and commands wait in a queue of at most this many
    /// entries and `maxQueuedBytes` bytes of arguments; beyond it publishes are dropped (and
    /// counted) and commands fail with `RedisError.queueFull`. `maxQueuedBytes` also bounds the
    /// publishes sent but not yet acknowledged by a connected Redis (one that stopped reading).
    public var maxQueuedCommands: Int
    public var maxQueuedBytes: Int

    public init(
        initialReconnectDelay: Duration = .milliseconds(100),
        maximumReconnectDelay: Duration = .seconds(5),
        connectTimeout: Duration = .seconds(5),
        commandTimeout: Duration = .seconds(5),
        maxQueuedCommands: Int = 10_000,
        maxQueuedBytes: Int = 16 << 20
    ) {
        self.initialReconnectDelay = initialReconnectDelay
        self.maximumReconnectDelay = maximumReconnectDelay
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
        self.maxQueuedCommands = maxQueuedCommands
        self.maxQueuedBytes = maxQueuedBytes
    }
}

extension Duration {
    /// Whole nanoseconds, saturating at zero for negative durations.
    var nanoseconds: UInt64 {
        let (seconds, attoseconds) = components
        guard seconds >= 0 else { return 0 }
        return UInt64(seconds) &* 1_000_000_000 &+ UInt64(max(0, attoseconds) / 1_000_000_000)
    }
}
