/// Per-connection rate limits (messages per second and bytes per second, each with a burst),
/// refilled from the loop's clock: plain arithmetic on the connection's own fields, touched only
/// by its loop, so no lock or atomic per message.
public struct RateLimit: Sendable, Equatable {
    /// Sustained rate per second (0: no limit).
    public var perSecond: Double
    /// How much may be spent at once after a quiet period.
    public var burst: Double

    public init(perSecond: Double, burst: Double) {
        self.perSecond = perSecond
        self.burst = burst
    }

    public static let unlimited = RateLimit(perSecond: 0, burst: 0)
    public var isUnlimited: Bool { perSecond <= 0 }
}

/// What happens to a message over a connection's rate limit.
public enum RateLimitPolicy: String, Sendable, CaseIterable {
    /// Not delivered to the application (counted in `ServerStats.rateLimited`).
    case drop
    /// The connection is closed with 1008.
    case close
}

/// A token bucket: starts full, spends one token per unit, refills at `perSecond`.
struct TokenBucket {
    private(set) var tokens: Double
    private var last: UInt64

    init(_ limit: RateLimit, now: UInt64) {
        tokens = limit.burst
        last = now
    }

    /// Spends `cost` if the bucket holds it (after refilling up to `now`); false otherwise.
    /// A cost larger than the burst can never pass: the limit would not be one.
    mutating func take(_ cost: Double, limit: RateLimit, now: UInt64) -> Bool {
        if now > last {
            tokens = min(limit.burst, tokens + Double(now - last) * 1e-9 * limit.perSecond)
            last = now
        }
        guard tokens >= cost else { return false }
        tokens -= cost
        return true
    }
}

/// One connection's buckets and its unreported drops: a block of its own, allocated only when the
/// server sets a rate limit, so that connections of a server without limits do not carry it.
final class ConnectionRateLimits {
    var messages: TokenBucket
    var bytes: TokenBucket
    /// Drops not yet reported to the application, and when it was last told (0: never).
    var unreported = 0
    var reportedAt: UInt64 = 0

    init(messages: RateLimit, bytes: RateLimit, now: UInt64) {
        self.messages = TokenBucket(messages, now: now)
        self.bytes = TokenBucket(bytes, now: now)
    }
}
