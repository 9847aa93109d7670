import CChorusLinux

#if canImport(Glibc)
import Glibc
#endif

/// epoll(7) with a fixed event batch. Tokens are opaque 64-bit values chosen by the owner.
public final class Epoll {
    public struct Events: OptionSet, Sendable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let readable = Events(rawValue: CHORUS_EPOLLIN)
        public static let writable = Events(rawValue: CHORUS_EPOLLOUT)
        public static let error = Events(rawValue: CHORUS_EPOLLERR)
        public static let hangup = Events(rawValue: CHORUS_EPOLLHUP)
        public static let readHangup = Events(rawValue: CHORUS_EPOLLRDHUP)
        public static let edgeTriggered = Events(rawValue: CHORUS_EPOLLET)
    }

    public let fd: Int32
    @usableFromInline let events: UnsafeMutablePointer<epoll_event>
    public let capacity: Int

    public init(capacity: Int = 1024) throws(IOError) {
        fd = try syscallChecked("epoll_create1") { epoll_create1(CHORUS_EPOLL_CLOEXEC) }
        self.capacity = capacity
        events = .allocate(capacity: capacity)
    }

    deinit {
        events.deallocate()
        close(fd)
    }

    public func add(_ fd: Int32, events: Events, token: UInt64) throws(IOError) {
        _ = try syscallChecked("epoll_ctl(ADD)") {
            chorus_epoll_ctl(self.fd, EPOLL_CTL_ADD, fd, events.rawValue, token)
        }
    }

    public func modify(_ fd: Int32, events: Events, token: UInt64) throws(IOError) {
        _ = try syscallChecked("epoll_ctl(MOD)") {
            chorus_epoll_ctl(self.fd, EPOLL_CTL_MOD, fd, events.rawValue, token)
        }
    }

    public func remove(_ fd: Int32) {
        _ = chorus_epoll_ctl(self.fd, EPOLL_CTL_DEL, fd, 0, 0)
    }

    /// Waits up to `timeoutMilliseconds` (-1: forever) and returns how many events are ready.
    public func wait(timeoutMilliseconds: Int32) throws(IOError) -> Int {
        while true {
            let n = epoll_wait(fd, events, Int32(capacity), timeoutMilliseconds)
            if n >= 0 { return Int(n) }
            let err = chorus_errno()
            if err == EINTR { continue }
            throw IOError(errno: err, function: "epoll_wait")
        }
    }

    @inlinable
    public func token(at index: Int) -> UInt64 { chorus_epoll_event_data(events + index) }

    @inlinable
    public func events(at index: Int) -> Events { Events(rawValue: chorus_epoll_event_events(events + index)) }
}

/// eventfd(2): the cross-thread doorbell of a loop.
public final class EventFD {
    public let fd: Int32

    public init() throws(IOError) {
        fd = try syscallChecked("eventfd") { eventfd(0, CHORUS_EFD_NONBLOCK | CHORUS_EFD_CLOEXEC) }
    }

    deinit { close(fd) }

    /// Safe from any thread.
    public func signal() {
        var one: UInt64 = 1
        _ = withUnsafeBytes(of: &one) { Glibc.write(fd, $0.baseAddress, 8) }
    }

    /// Resets the counter; called by the owning loop.
    public func drain() {
        var value: UInt64 = 0
        _ = withUnsafeMutableBytes(of: &value) { Glibc.read(fd, $0.baseAddress, 8) }
    }
}

/// timerfd(2) firing periodically: drives the loop's coarse timer sweeps.
public final class TimerFD {
    public let fd: Int32

    public init(intervalNanoseconds: UInt64) throws(IOError) {
        fd = try syscallChecked("timerfd_create") {
            timerfd_create(CLOCK_MONOTONIC, CHORUS_TFD_NONBLOCK | CHORUS_TFD_CLOEXEC)
        }
        var spec = itimerspec()
        spec.it_interval.tv_sec = Int(intervalNanoseconds / 1_000_000_000)
        spec.it_interval.tv_nsec = Int(intervalNanoseconds % 1_000_000_000)
        spec.it_value = spec.it_interval
        _ = try syscallChecked("timerfd_settime") { timerfd_settime(fd, 0, &spec, nil) }
    }

    deinit { close(fd) }

    /// Returns the number of expirations since the last call.
    @discardableResult
    public func drain() -> UInt64 {
        var value: UInt64 = 0
        _ = withUnsafeMutableBytes(of: &value) { Glibc.read(fd, $0.baseAddress, 8) }
        return value
    }
}
