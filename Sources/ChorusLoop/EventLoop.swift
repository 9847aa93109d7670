import CChorusLinux
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// What a loop's owner does with readiness, wake-ups and ticks. All calls happen on the loop's thread.
public protocol EventLoopDelegate: AnyObject {
    /// A registered fd is ready. `token` is the value given at registration.
    func eventLoop(_ loop: EventLoop, ready token: UInt64, events: Epoll.Events)
    /// The periodic tick (coarse timers: handshake, idle, ping sweeps).
    func eventLoopTick(_ loop: EventLoop, now: UInt64)
    /// End of one iteration, after all events and tasks: the place to flush corked writes.
    func eventLoopDidFinishIteration(_ loop: EventLoop)
}

/// One epoll loop on one thread. Other threads talk to it only through `execute`, which queues a
/// task and rings the eventfd at most once per batch (an atomic flag coalesces the wake-ups).
/// Unchecked Sendable: everything but `pending` (a Mutex), the atomics and the descriptors' fixed
/// numbers is touched only on the loop's thread (`assertInLoop`); other threads only `execute` and `stop`.
public final class EventLoop: @unchecked Sendable {
    public let index: Int
    public let epoll: Epoll
    private let doorbell: EventFD
    private let ticker: TimerFD
    private let pending = Mutex<[@Sendable () -> Void]>([])
    private let wakePending = Atomic<Bool>(false)
    private let stopRequested = Atomic<Bool>(false)
    @exclusivity(unchecked) private var thread: pthread_t?
    /// The thread inside `run` (0 when none): answers "am I on this loop?" with one relaxed load.
    private let runningThread = Atomic<UInt>(0)
    /// Descriptors and deadline timers of owners other than the delegate (see ForeignDescriptors.swift
    /// and DeadlineTimers.swift). Loop thread only.
    let foreign = ForeignDescriptorTable()
    let timers = DeadlineHeap()
    /// The time cached at the start of the current iteration (monotonic ns): cheap for per-event use.
    @exclusivity(unchecked) public private(set) var now: UInt64 = monotonicNanoseconds()

    static let doorbellToken = UInt64.max
    static let tickerToken = UInt64.max - 1

    public init(index: Int, tickNanoseconds: UInt64, eventBatch: Int = 1024) throws(IOError) {
        self.index = index
        epoll = try Epoll(capacity: eventBatch)
        doorbell = try EventFD()
        ticker = try TimerFD(intervalNanoseconds: tickNanoseconds)
        try epoll.add(doorbell.fd, events: .readable, token: Self.doorbellToken)
        try epoll.add(ticker.fd, events: .readable, token: Self.tickerToken)
    }

    /// Runs `task` on the loop's thread. Safe from any thread; wakes the loop at most once per batch.
    public func execute(_ task: @escaping @Sendable () -> Void) {
        pending.withLock { $0.append(task) }
        if !wakePending.exchange(true, ordering: .acquiringAndReleasing) {
            doorbell.signal()
        }
    }

    /// Runs `body` now if called on the loop's thread, otherwise queues it as `execute` does.
    public func runOrExecute(_ body: @escaping @Sendable () -> Void) {
        if inEventLoop { body() } else { execute(body) }
    }

    /// Asks the loop to return from `run` after the current iteration. Safe from any thread.
    public func stop() {
        stopRequested.store(true, ordering: .releasing)
        doorbell.signal()
    }

    /// True on the thread running this loop. Safe from any thread.
    public var inEventLoop: Bool {
        let running = runningThread.load(ordering: .relaxed)
        return running != 0 && pthread_equal(running, pthread_self()) != 0
    }

    /// The loop-thread-only calls (timers, foreign descriptors) are also allowed before `run`
    /// starts, while the owner sets the loop up on its own thread.
    @inline(__always)
    func assertInLoop() {
        assert(runningThread.load(ordering: .relaxed) == 0 || inEventLoop, "called off the loop's thread")
    }

    /// Runs the loop on the calling thread until `stop()`.
    public func run(delegate: EventLoopDelegate) throws(IOError) {
        runningThread.store(pthread_self(), ordering: .relaxed)
        defer { runningThread.store(0, ordering: .relaxed) }
        var batch: [@Sendable () -> Void] = []
        batch.reserveCapacity(64)
        while !stopRequested.load(ordering: .acquiring) {
            let n = try epoll.wait(timeoutMilliseconds: waitTimeout())
            now = monotonicNanoseconds()
            var ticked = false
            for i in 0..<n {
                let token = epoll.token(at: i)
                switch token {
                case Self.doorbellToken:
                    doorbell.drain()
                case Self.tickerToken:
                    ticker.drain()
                    ticked = true
                case _ where ForeignDescriptorTable.isForeign(token):
                    foreign.handler(for: token)?(epoll.events(at: i))
                default:
                    delegate.eventLoop(self, ready: token, events: epoll.events(at: i))
                }
            }
            // Reset the flag before taking the batch: a task queued after the swap rings again.
            if wakePending.exchange(false, ordering: .acquiringAndReleasing) {
                pending.withLock { swap(&$0, &batch) }
                for task in batch { task() }
                batch.removeAll(keepingCapacity: true)
            }
            // Timers due now; one scheduled by a timer for `now` or earlier waits for the next turn.
            // (No clock read when there are none: the server's loops usually have none.)
            if !timers.isEmpty {
                let due = monotonicNanoseconds()
                while let body = timers.popDue(now: due) { body() }
            }
            if ticked { delegate.eventLoopTick(self, now: now) }
            delegate.eventLoopDidFinishIteration(self)
        }
        // Run what was queued before the stop so nothing is silently lost.
        // (Timers still pending are not run: their deadlines have not come.)
        pending.withLock { swap(&$0, &batch) }
        for task in batch { task() }
    }
}

extension EventLoop {
    /// `epoll_wait`'s time-out: until the nearest timer (rounded up to whole milliseconds, so the
    /// loop never wakes just before a deadline and spins), or forever when there is none.
    func waitTimeout() -> Int32 {
        guard let deadline = timers.nearestDeadline() else { return -1 }
        let current = monotonicNanoseconds()
        guard deadline > current else { return 0 }
        let milliseconds = (deadline - current + 999_999) / 1_000_000
        return Int32(clamping: milliseconds)
    }
}

/// Starts a detached POSIX thread (Foundation-free) running `body`.
/// Unchecked Sendable: `body` and `name` are immutable; `handle` is written once by `start`, before
/// any other thread can see the object.
public final class LoopThread: @unchecked Sendable {
    @exclusivity(unchecked) private var handle: pthread_t?
    private let body: () -> Void
    private let name: String

    public init(name: String, _ body: @escaping @Sendable () -> Void) {
        self.body = body
        self.name = name
        let box = Unmanaged.passRetained(self)
        var thread = pthread_t()
        let rc = pthread_create(
            &thread, nil,
            { arg in
                let me = Unmanaged<LoopThread>.fromOpaque(arg!).takeRetainedValue()
                chorus_set_thread_name(me.name)
                me.body()
                return nil
            }, box.toOpaque())
        precondition(rc == 0, "pthread_create failed: \(rc)")
        handle = thread
    }

    public func join() {
        if let handle { pthread_join(handle, nil) }
        handle = nil
    }
}
