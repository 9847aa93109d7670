// What a Redis adapter (pub/sub or Streams) has done, for /api/v1/stats and /metrics.
import ChorusJSON

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
    public static let requestSecondsBounds: [Double] = [
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
    ]

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
            "broadcastsDelivered": JSONValue(broadcastsDelivered), "broadcastsSkipped": JSONValue(broadcastsSkipped),
            "broadcastsNotHeld": JSONValue(broadcastsNotHeld),
            "requestsPublished": JSONValue(requestsPublished), "requestsReceived": JSONValue(requestsReceived),
            "responsesPublished": JSONValue(responsesPublished), "responsesReceived": JSONValue(responsesReceived),
            "requestsTimedOut": JSONValue(requestsTimedOut), "malformed": JSONValue(malformed),
            "redisConnected": .bool(redisConnected), "publishDrops": JSONValue(publishDrops),
            "publishQueue": JSONValue(publishQueue),
            "subscriptions": JSONValue(subscriptions),
            "reconnects": JSONValue(reconnects),
        ]
    }
}
