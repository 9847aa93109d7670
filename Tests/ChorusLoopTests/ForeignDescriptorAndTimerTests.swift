import Glibc
import Synchronization
import Testing

@testable import ChorusLoop

/// A loop running on its own thread with a delegate that records what reaches it.
private final class RunningLoop: EventLoopDelegate, @unchecked Sendable {
    let loop: EventLoop
    private var thread: LoopThread?
    /// Tokens the delegate saw (must never include a foreign registration's).
    let delegateTokens = Mutex<[UInt64]>([])

    init() throws {
        loop = try EventLoop(index: 0, tickNanoseconds: 1_000_000_000)
        thread = LoopThread(name: "timer-test") { [self] in try? loop.run(delegate: self) }
    }

    func eventLoop(_ loop: EventLoop, ready token: UInt64, events: Epoll.Events) {
        delegateTokens.withLock { $0.append(token) }
    }
    func eventLoopTick(_ loop: EventLoop, now: UInt64) {}
    func eventLoopDidFinishIteration(_ loop: EventLoop) {}

    /// Runs `body` on the loop and returns its result.
    @discardableResult
    func onLoop<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in loop.execute { continuation.resume(returning: body()) } }
    }

    func shutdown() {
        loop.stop()
        thread?.join()
    }
}

private func socketPair() -> (Int32, Int32) {
    var fds: [Int32] = [0, 0]
    let rc = socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0, &fds)
    precondition(rc == 0)
    return (fds[0], fds[1])
}

private func eventually(_ timeout: Duration = .seconds(5), _ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(5))
    }
    return condition()
}

@Suite("Foreign descriptors and deadline timers on the event loop")
struct ForeignDescriptorAndTimerTests {
    @Test func aForeignDescriptorReachesItsHandlerAndNeverTheDelegate() async throws {
        let running = try RunningLoop()
        defer { running.shutdown() }
        let (a, b) = socketPair()
        defer { close(a); close(b) }
        let seen = Mutex<[Epoll.Events]>([])
        let registration = await running.onLoop { () -> ForeignRegistration? in
            try? running.loop.register(fd: a, interest: .readable) { events in seen.withLock { $0.append(events) } }
        }
        let reg = try #require(registration)
        var byte: UInt8 = 7
        #expect(write(b, &byte, 1) == 1)
        #expect(await eventually { seen.withLock { !$0.isEmpty } })
        #expect(seen.withLock { $0.first?.contains(.readable) } == true)
        #expect(running.delegateTokens.withLock { $0.isEmpty })
        // The token is outside the connection range (bit 31 of the low word set, bit 30 clear).
        #expect(reg.token & 0xC000_0000 == 0x8000_0000)
        await running.onLoop { running.loop.unregister(reg) }
        #expect(await running.onLoop { running.loop.foreignRegistrationCount } == 0)
    }

    @Test func interestCanBeChangedAndUnregisteringStopsEvents() async throws {
        let running = try RunningLoop()
        defer { running.shutdown() }
        let (a, b) = socketPair()
        defer { close(a); close(b) }
        let writable = Atomic<Int>(0)
        let registration = await running.onLoop { () -> ForeignRegistration? in
            try? running.loop.register(fd: a, interest: []) { events in
                if events.contains(.writable) { writable.add(1, ordering: .relaxed) }
            }
        }
        let reg = try #require(registration)
        try await Task.sleep(for: .milliseconds(50))
        #expect(writable.load(ordering: .relaxed) == 0)  // no interest: nothing, though writable
        await running.onLoop { try? running.loop.setInterest(reg, .writable) }
        #expect(await eventually { writable.load(ordering: .relaxed) > 0 })
        // Level-triggered and writable: it keeps firing until unregistered, then never again.
        await running.onLoop { running.loop.unregister(reg) }
        let after = writable.load(ordering: .relaxed)
        try await Task.sleep(for: .milliseconds(50))
        #expect(writable.load(ordering: .relaxed) == after)
    }

    @Test func aHandlerThatUnregistersAnotherInTheSameBatchDropsItsStaleEvent() async throws {
        let running = try RunningLoop()
        defer { running.shutdown() }
        let (a1, b1) = socketPair()
        let (a2, b2) = socketPair()
        defer { close(a1); close(b1); close(a2); close(b2) }
        let calls = Mutex<[Int]>([])
        // Both become readable before the loop waits, so both events come in one batch; whichever
        // runs first unregisters the other, whose event must then be dropped.
        let ok = await running.onLoop { () -> Bool in
            let loop = running.loop
            var regs: [ForeignRegistration] = []
            let box = Mutex<[ForeignRegistration]>([])
            for (index, fd) in [a1, a2].enumerated() {
                guard
                    let r = try? loop.register(
                        fd: fd, interest: .readable,
                        { _ in
                            calls.withLock { $0.append(index) }
                            for other in box.withLock({ $0 }) { loop.unregister(other) }
                        })
                else { return false }
                regs.append(r)
            }
            box.withLock { $0 = regs }
            var byte: UInt8 = 1
            _ = write(b1, &byte, 1)
            _ = write(b2, &byte, 1)
            return true
        }
        #expect(ok)
        #expect(await eventually { calls.withLock { !$0.isEmpty } })
        try await Task.sleep(for: .milliseconds(50))
        #expect(calls.withLock { $0.count } == 1)
        #expect(await running.onLoop { running.loop.foreignRegistrationCount } == 0)
    }

    @Test func timersFireInDeadlineOrderAndCancelledOnesNever() async throws {
        let running = try RunningLoop()
        defer { running.shutdown() }
        let fired = Mutex<[Int]>([])
        let start = ContinuousClock.now
        await running.onLoop {
            let loop = running.loop
            loop.schedule(afterNanoseconds: 60_000_000) { fired.withLock { $0.append(3) } }
            loop.schedule(afterNanoseconds: 20_000_000) { fired.withLock { $0.append(1) } }
            let cancelled = loop.schedule(afterNanoseconds: 30_000_000) { fired.withLock { $0.append(99) } }
            loop.schedule(afterNanoseconds: 40_000_000) { fired.withLock { $0.append(2) } }
            loop.cancel(cancelled)
        }
        #expect(await eventually { fired.withLock { $0.count } == 3 })
        let elapsed = ContinuousClock.now - start
        #expect(fired.withLock { $0 } == [1, 2, 3])
        // Not early: the loop sleeps in epoll_wait until the deadline (rounded up to a millisecond).
        #expect(elapsed >= .milliseconds(60))
        try await Task.sleep(for: .milliseconds(20))
        #expect(fired.withLock { $0 } == [1, 2, 3])
        #expect(await running.onLoop { running.loop.pendingTimerCount } == 0)
    }

    @Test func aTimerWakesAnOtherwiseIdleLoopOnTime() async throws {
        let running = try RunningLoop()  // its ticker fires once a second: not what wakes it here
        defer { running.shutdown() }
        let firedAt = Mutex<ContinuousClock.Instant?>(nil)
        let start = ContinuousClock.now
        await running.onLoop {
            running.loop.schedule(afterNanoseconds: 30_000_000) { firedAt.withLock { $0 = ContinuousClock.now } }
        }
        #expect(await eventually { firedAt.withLock { $0 } != nil })
        let elapsed = try #require(firedAt.withLock { $0 }) - start
        #expect(elapsed >= .milliseconds(30))
        #expect(elapsed < .milliseconds(900))
    }

    @Test func manyCancelledTimersDoNotAccumulate() async throws {
        let running = try RunningLoop()
        defer { running.shutdown() }
        let fired = Atomic<Int>(0)
        let (pending, heap) = await running.onLoop { () -> (Int, Int) in
            let loop = running.loop
            for i in 0..<10_000 {
                let t = loop.schedule(afterNanoseconds: 60_000_000_000) { fired.add(1, ordering: .relaxed) }
                if i % 100 != 0 { loop.cancel(t) }
            }
            return (loop.pendingTimerCount, loop.timers.heapCount)
        }
        #expect(pending == 100)
        // Dead entries are compacted away once they outnumber live ones (and pass 64).
        #expect(heap <= 2 * 100 + 64)
        #expect(fired.load(ordering: .relaxed) == 0)
    }
}
