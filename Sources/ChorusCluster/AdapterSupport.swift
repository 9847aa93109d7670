// What both Redis adapters (pub/sub and Streams) do the same way with their connections.
import ChorusJSON
import ChorusRedis
import ChorusSocketIO

extension ClusterCounters {
    /// These counters with the connections' own folded in: publish drops and queue from the
    /// command connection, reconnects from every connection, channels held by the subscriber.
    /// Loop thread of the connections.
    func folding(client: RedisClient?, subscriber: RedisSubscriber?, others: [RedisClient] = []) -> ClusterCounters {
        var c = self
        if let client {
            let r = client.countersOnLoop()
            c.publishDrops = r.publishDrops
            c.publishQueue = r.queueLength
            c.reconnects = r.reconnects
        }
        for other in others { c.reconnects += other.countersOnLoop().reconnects }
        if let subscriber {
            let s = subscriber.countersOnLoop()
            c.reconnects += s.reconnects
            c.subscriptions = s.channels + s.patterns
        }
        return c
    }
}

extension RedisClient {
    /// `PUBSUB NUMSUB <channel>`: how many connections (nodes, this one included) are subscribed.
    /// Loop thread; `completion` runs there.
    func numSub(
        _ channel: String, timeout: Double, _ completion: @escaping @Sendable (Result<Int, AdapterError>) -> Void
    ) {
        commandOnLoop(
            [Array("PUBSUB".utf8), Array("NUMSUB".utf8), Array(channel.utf8)],
            timeout: .milliseconds(Int64(timeout * 1000))
        ) { reply in
            switch reply {
            case .success(let value):
                guard let count = value.array?.dropFirst().first?.integer else {
                    return completion(.failure(.unavailable("unexpected NUMSUB reply")))
                }
                completion(.success(Int(count)))
            case .failure(let error):
                completion(.failure(.unavailable("\(error)")))
            }
        }
    }
}

/// Adapters whose counters /metrics reads (at most a second old, safe from any thread).
public protocol ClusterCountersSource: AnyObject, Sendable {
    var publishedCounters: ClusterCounters { get }
}

extension RedisAdapter: ClusterCountersSource {}

extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
