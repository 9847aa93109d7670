import Testing

@testable import ChorusBenchCore

@Suite struct AccountingTests {
    @Test func latencyPercentilesFromTimestamps() {
        var rec = LatencyRecorder()
        // 1,000 deliveries with latencies 1..1000 µs.
        for i in 1...1000 { rec.record(sentAt: 5_000_000_000, receivedAt: 5_000_000_000 + UInt64(i) * 1000) }
        #expect(rec.count == 1000)
        #expect(abs(rec.percentileMicros(50) - 500) <= 1)
        #expect(abs(rec.percentileMicros(99) - 990) <= 1)
        #expect(abs(rec.maxMicros - 1000) <= 1)
        var other = LatencyRecorder()
        other.record(sentAt: 10, receivedAt: 5)  // clock went backwards: counted, recorded as 0
        rec.merge(other)
        #expect(rec.count == 1001 && rec.negative == 1)
    }

    @Test func measureWindowIsHalfOpen() {
        let w = MeasureWindow(start: 100, end: 200)
        #expect(!w.contains(99) && w.contains(100) && w.contains(199) && !w.contains(200))
    }

    @Test func missedDeliveriesAreExpectedMinusReceived() {
        var ledger = DeliveryLedger(receivers: 20)
        ledger.sentInWindow = 200
        ledger.receivedInWindow = 3_990
        #expect(ledger.expected == 4_000 && ledger.missed == 10 && ledger.surplus == 0)
        ledger.receivedInWindow = 4_001
        #expect(ledger.missed == 0 && ledger.surplus == 1)
    }

    @Test func windowLeavesFlightWhenEveryReceiverGotIt() {
        let t = WindowTracker(publishers: 2, receivers: 3, window: 4)
        for seq in 0..<4 as Range<UInt64> { t.willSend(publisher: 1, seq: seq) }
        #expect(t.inFlight(publisher: 1, sent: 4) == 4)
        #expect(!t.delivered(publisher: 1, seq: 0))
        #expect(!t.delivered(publisher: 1, seq: 0))
        #expect(t.delivered(publisher: 1, seq: 0))  // third receiver completes seq 0
        #expect(t.inFlight(publisher: 1, sent: 4) == 3)
        #expect(t.inFlight(publisher: 0, sent: 0) == 0)
        // Out of order across receivers still counts per sequence.
        #expect(!t.delivered(publisher: 1, seq: 2))
        #expect(!t.delivered(publisher: 1, seq: 1))
        #expect(!t.delivered(publisher: 1, seq: 2))
        #expect(t.delivered(publisher: 1, seq: 2))
        #expect(t.inFlight(publisher: 1, sent: 4) == 2)
        // Ring slots are reused after the ring wraps: willSend resets the count.
        let seq = UInt64(t.ringSize)
        t.willSend(publisher: 1, seq: seq)
        #expect(!t.delivered(publisher: 1, seq: seq))
        // A stalled window is abandoned so the publisher can go on.
        t.abandonInFlight(publisher: 1, sent: 5)
        #expect(t.inFlight(publisher: 1, sent: 5) == 0)
        #expect(!t.delivered(publisher: 7, seq: 0))  // unknown publisher ignored
    }
}
