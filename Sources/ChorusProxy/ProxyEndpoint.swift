import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One backend URL (the message, join or connect proxy): bounds its calls in flight and counts them.
/// The bound is an atomic; the counters sit behind one lock taken once per call, which costs nothing
/// next to the HTTP round trip (and never on the fan-out path).
public final class ProxyEndpoint: Sendable {
    public let name: String
    public let url: String
    let client: ProxyClient
    private let inFlight = Atomic<Int>(0)
    private let counters = Mutex(ProxyStats())

    public static let latencyBoundsMillis: [Double] = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000]

    init(name: String, url: String, client: ProxyClient) {
        self.name = name
        self.url = url
        self.client = client
    }

    /// Posts `body` (JSON) and returns the answer, or why there is none. Beyond `maxInFlight`
    /// calls in flight, fails with `.overload` at once.
    public func post(_ body: [UInt8], headers: [(String, String)] = []) async -> ProxyOutcome {
        guard inFlight.wrappingAdd(1, ordering: .relaxed).newValue <= client.configuration.maxInFlight else {
            inFlight.subtract(1, ordering: .relaxed)
            counters.withLock {
                $0.calls += 1; $0.failures[.overload, default: 0] += 1
            }
            return .failed(.overload)
        }
        let start = Self.nowMicros()
        let outcome = await client.post(url, body: body, extraHeaders: headers)
        inFlight.subtract(1, ordering: .relaxed)
        let micros = Self.nowMicros() - start
        counters.withLock { s in
            s.calls += 1
            s.recordLatency(micros)
            switch outcome {
            case .answered(let status, _):
                switch status {
                case 200..<300: s.answered2xx += 1
                case 400..<500: s.answered4xx += 1
                case 500..<600: s.answered5xx += 1
                default: s.failures[.invalid, default: 0] += 1
                }
            case .failed(let failure):
                s.failures[failure, default: 0] += 1
            }
        }
        return outcome
    }

    /// For a 2xx answer whose body the caller could not use, or a call refused before it was made.
    public func countFailure(_ failure: ProxyFailure) {
        counters.withLock { $0.failures[failure, default: 0] += 1 }
    }

    /// Calls in flight now.
    public var callsInFlight: Int { inFlight.load(ordering: .relaxed) }

    /// The counters, for `/api/v1/stats` (and the metrics when they land).
    public var stats: ProxyStats {
        var s = counters.withLock { $0 }
        s.inFlight = inFlight.load(ordering: .relaxed)
        return s
    }

    static func nowMicros() -> Int {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int(ts.tv_sec) * 1_000_000 + Int(ts.tv_nsec) / 1000
    }
}

/// A snapshot of one endpoint's counters.
public struct ProxyStats: Sendable, Equatable {
    public var calls = 0
    public var inFlight = 0
    public var answered2xx = 0
    public var answered4xx = 0
    public var answered5xx = 0
    public var failures: [ProxyFailure: Int] = [:]
    public var latencyCount = 0
    public var latencySumMicros = 0
    public var latencyMaxMicros = 0
    /// Calls whose latency was at most `ProxyEndpoint.latencyBoundsMillis[i]` (cumulative, as
    /// Prometheus buckets are; `latencyCount` is the +Inf bucket). Latency: from the hand-over to
    /// the answer (or the failure) of calls that were attempted.
    public var latencyBuckets = [Int](repeating: 0, count: ProxyEndpoint.latencyBoundsMillis.count)

    public init() {}

    mutating func recordLatency(_ micros: Int) {
        latencyCount += 1
        latencySumMicros += micros
        latencyMaxMicros = max(latencyMaxMicros, micros)
        let millis = Double(micros) / 1000
        for (i, bound) in ProxyEndpoint.latencyBoundsMillis.enumerated() where millis <= bound {
            latencyBuckets[i] += 1
        }
    }

    /// The latency under which `fraction` of the calls fell, in milliseconds: the bucket's upper
    /// bound (nil when there were no calls, or when it lies beyond the last bucket).
    public func latencyQuantileMillis(_ fraction: Double) -> Double? {
        guard latencyCount > 0 else { return nil }
        let rank = Int((fraction * Double(latencyCount)).rounded(.up))
        for (i, count) in latencyBuckets.enumerated() where count >= rank {
            return ProxyEndpoint.latencyBoundsMillis[i]
        }
        return nil
    }
}
