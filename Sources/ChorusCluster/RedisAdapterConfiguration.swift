// How a node uses Redis with `--adapter redis` (socket.io-redis-adapter): the channels it
// subscribes to and the connection settings.
import ChorusRedis

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
