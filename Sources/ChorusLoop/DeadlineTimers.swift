// One-shot deadline timers of a loop (reconnect backoff, command time-outs).
//
// Why a min-heap checked each iteration rather than a timerfd per timer: the timers here are few
// and short-lived (one per pending command with a time-out, one per reconnecting client), so a
// timerfd each would cost three syscalls per command (create, settime, close) and an fd per
// pending command; the heap costs none, and the loop only passes the nearest deadline to
// `epoll_wait` as its time-out. Cancelling marks the timer dead (its closure is dropped at once);
// the heap entry is discarded when it reaches the top, and the heap is compacted when dead entries
// outnumber live ones, so a stream of cancelled time-outs cannot grow it without bound.
// The coarse periodic sweeps of the server (handshake, idle, ping) stay on the loop's ticker.

/// A one-shot timer scheduled with `EventLoop.schedule`; pass it to `cancel` to drop it.
public struct LoopTimer: Hashable, Sendable {
    let id: UInt64
}

final class DeadlineHeap {
    private struct Entry {
        var deadline: UInt64
        var id: UInt64
    }

    @exclusivity(unchecked) private var heap: [Entry] = []
    @exclusivity(unchecked) private var live: [UInt64: () -> Void] = [:]
    @exclusivity(unchecked) private var nextID: UInt64 = 1

    var liveCount: Int { live.count }
    /// No entries at all (dead ones included): nothing to check this iteration.
    var isEmpty: Bool { heap.isEmpty }
    /// Entries in the heap, dead ones included (for the compaction test).
    var heapCount: Int { heap.count }

    func schedule(at deadline: UInt64, _ body: @escaping () -> Void) -> LoopTimer {
        let id = nextID
        nextID &+= 1
        live[id] = body
        push(Entry(deadline: deadline, id: id))
        return LoopTimer(id: id)
    }

    func cancel(_ timer: LoopTimer) {
        guard live.removeValue(forKey: timer.id) != nil else { return }
        if heap.count > 64 && heap.count > 2 * live.count { compact() }
    }

    /// The earliest live deadline, discarding dead entries on the way.
    func nearestDeadline() -> UInt64? {
        while let top = heap.first {
            if live[top.id] != nil { return top.deadline }
            popTop()
        }
        return nil
    }

    /// Removes and returns the body of the earliest timer due at `now`, if any.
    func popDue(now: UInt64) -> (() -> Void)? {
        while let top = heap.first, top.deadline <= now {
            popTop()
            if let body = live.removeValue(forKey: top.id) { return body }
        }
        return nil
    }

    private func compact() {
        heap.removeAll { live[$0.id] == nil }
        // Floyd's heap construction: sift down every inner node, last first.
        var i = heap.count / 2
        while i > 0 {
            i -= 1
            siftDown(i)
        }
    }

    private func push(_ entry: Entry) {
        heap.append(entry)
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard Self.less(heap[child], heap[parent]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private func popTop() {
        let last = heap.removeLast()
        guard !heap.isEmpty else { return }
        heap[0] = last
        siftDown(0)
    }

    private func siftDown(_ start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1
            guard left < heap.count else { return }
            var smallest = left
            if left + 1 < heap.count && Self.less(heap[left + 1], heap[left]) { smallest = left + 1 }
            guard Self.less(heap[smallest], heap[parent]) else { return }
            heap.swapAt(smallest, parent)
            parent = smallest
        }
    }

    /// Equal deadlines fire in the order they were scheduled (ids increase).
    private static func less(_ a: Entry, _ b: Entry) -> Bool {
        a.deadline != b.deadline ? a.deadline < b.deadline : a.id < b.id
    }
}

extension EventLoop {
    /// Runs `body` once on the loop's thread at `deadline` (monotonic nanoseconds, as `now`), or in
    /// the first iteration after it. Loop thread only.
    @discardableResult
    public func schedule(at deadline: UInt64, _ body: @escaping () -> Void) -> LoopTimer {
        assertInLoop()
        return timers.schedule(at: deadline, body)
    }

    /// Runs `body` once on the loop's thread after `nanoseconds`. Loop thread only.
    @discardableResult
    public func schedule(afterNanoseconds nanoseconds: UInt64, _ body: @escaping () -> Void) -> LoopTimer {
        schedule(at: monotonicNanoseconds() &+ nanoseconds, body)
    }

    /// Drops `timer` if it has not fired yet; a no-op otherwise. Loop thread only.
    public func cancel(_ timer: LoopTimer) {
        assertInLoop()
        timers.cancel(timer)
    }

    /// How many timers are pending (for tests and leak checks). Loop thread only.
    public var pendingTimerCount: Int { timers.liveCount }
}
