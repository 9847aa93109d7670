import Histogram
import Synchronization

/// Latencies (receive time minus the payload's send time) in nanoseconds, reported in microseconds.
public struct LatencyRecorder: Sendable {
    public var histogram = Histogram<UInt64>(
        lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000_000, numberOfSignificantValueDigits: .three)
    /// Receive times earlier than send times (clock trouble): counted, recorded as 0.
    public var negative = 0

    public init() {}

    @inline(__always)
    public mutating func record(sentAt: UInt64, receivedAt: UInt64) {
        if receivedAt >= sentAt {
            _ = histogram.record(min(receivedAt - sentAt, 120_000_000_000))
        } else {
            negative += 1
            _ = histogram.record(0)
        }
    }

    public mutating func merge(_ other: LatencyRecorder) {
        histogram.add(other.histogram)
        negative += other.negative
    }

    public var count: UInt64 { histogram.totalCount }

    /// Percentile in microseconds.
    public func percentileMicros(_ p: Double) -> Double {
        histogram.totalCount == 0 ? 0 : Double(histogram.valueAtPercentile(p)) / 1000
    }

    public var maxMicros: Double { histogram.totalCount == 0 ? 0 : Double(histogram.max) / 1000 }
    public var meanMicros: Double { histogram.totalCount == 0 ? 0 : histogram.mean / 1000 }
}

/// Closed-loop window accounting shared by all loops: per publisher, a ring of per-sequence receive
/// counts. A message leaves flight when all `receivers` got it (or when abandoned after a stall).
/// Unchecked Sendable: the sizes are immutable and every counter behind the pointers is an Atomic.
public final class WindowTracker: @unchecked Sendable {
    public let publishers: Int
    public let receivers: Int
    public let ringSize: Int
    let mask: Int
    /// publishers * ringSize counters.
    let counts: UnsafeMutablePointer<Atomic<UInt32>>
    /// Messages of each publisher that left flight.
    let completed: UnsafeMutablePointer<Atomic<UInt64>>
    /// Messages abandoned after a stall (never completed).
    let abandoned: UnsafeMutablePointer<Atomic<UInt64>>

    public init(publishers: Int, receivers: Int, window: Int) {
        self.publishers = publishers
        self.receivers = receivers
        var size = 1024
        while size < window * 8 { size <<= 1 }
        ringSize = size
        mask = size - 1
        counts = .allocate(capacity: publishers * size)
        for i in 0..<(publishers * size) { (counts + i).initialize(to: Atomic<UInt32>(0)) }
        completed = .allocate(capacity: publishers)
        abandoned = .allocate(capacity: publishers)
        for i in 0..<publishers {
            (completed + i).initialize(to: Atomic<UInt64>(0))
            (abandoned + i).initialize(to: Atomic<UInt64>(0))
        }
    }

    deinit {
        counts.deinitialize(count: publishers * ringSize).deallocate()
        completed.deinitialize(count: publishers).deallocate()
        abandoned.deinitialize(count: publishers).deallocate()
    }

    /// Called by the publisher just before sending `seq`.
    @inline(__always)
    public func willSend(publisher: Int, seq: UInt64) {
        counts[publisher * ringSize + Int(seq & UInt64(mask))].store(0, ordering: .relaxed)
    }

    /// Called by a receiver; returns true when this delivery completed the message.
    @inline(__always)
    public func delivered(publisher: Int, seq: UInt64) -> Bool {
        counters.delivered(publisher: publisher, seq: seq)
    }

    /// The receivers' side as plain values: what a worker keeps to count each delivery without a
    /// reference count operation on the tracker (the tracker outlives the run).
    public var counters: Counters {
        Counters(
            publishers: publishers, receivers: receivers, ringSize: ringSize, mask: mask, counts: counts,
            completed: completed)
    }

    public struct Counters {
        let publishers: Int
        let receivers: Int
        let ringSize: Int
        let mask: Int
        let counts: UnsafeMutablePointer<Atomic<UInt32>>
        let completed: UnsafeMutablePointer<Atomic<UInt64>>

        /// Returns true when this delivery completed the message.
        @inline(__always)
        public func delivered(publisher: Int, seq: UInt64) -> Bool {
            guard publisher < publishers else { return false }
            let n = counts[publisher * ringSize + Int(seq & UInt64(mask))].add(1, ordering: .relaxed).newValue
            if Int(n) == receivers {
                completed[publisher].add(1, ordering: .releasing)
                return true
            }
            return false
        }
    }

    /// Messages of `publisher` in flight given how many it sent.
    @inline(__always)
    public func inFlight(publisher: Int, sent: UInt64) -> Int {
        let done = completed[publisher].load(ordering: .acquiring) &+ abandoned[publisher].load(ordering: .relaxed)
        return sent > done ? Int(sent - done) : 0
    }

    public func completedCount(publisher: Int) -> UInt64 { completed[publisher].load(ordering: .acquiring) }

    /// Gives up on everything in flight (a receiver lost messages): the publisher may go on.
    public func abandonInFlight(publisher: Int, sent: UInt64) {
        let done = completed[publisher].load(ordering: .acquiring) &+ abandoned[publisher].load(ordering: .relaxed)
        if sent > done { abandoned[publisher].add(sent - done, ordering: .relaxed) }
    }

    public func abandonedCount(publisher: Int) -> UInt64 { abandoned[publisher].load(ordering: .relaxed) }
}

/// Missed deliveries: every message sent in the measured window should reach every receiver.
public struct DeliveryLedger: Sendable, Equatable {
    public var sentInWindow: UInt64 = 0
    public var receivers: Int
    public var receivedInWindow: UInt64 = 0

    public init(receivers: Int) { self.receivers = receivers }

    public var expected: UInt64 { sentInWindow * UInt64(receivers) }
    public var missed: UInt64 { expected > receivedInWindow ? expected - receivedInWindow : 0 }
    /// Deliveries beyond expectation (duplicates): a protocol problem.
    public var surplus: UInt64 { receivedInWindow > expected ? receivedInWindow - expected : 0 }
}

/// The measured interval: messages whose send time falls in [start, end) are counted.
public struct MeasureWindow: Sendable, Equatable {
    public var start: UInt64
    public var end: UInt64
    public init(start: UInt64, end: UInt64) { self.start = start; self.end = end }
    @inline(__always) public func contains(_ t: UInt64) -> Bool { t >= start && t < end }
}
