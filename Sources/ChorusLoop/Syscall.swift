import CChorusLinux

#if canImport(Glibc)
import Glibc
#endif

/// A failed system call: the errno it set and the call's name.
/// Every wrapper in this module throws this, so call sites never read `errno`.
public struct IOError: Error, CustomStringConvertible, Sendable {
    public let errno: Int32
    public let function: StaticString

    public init(errno: Int32, function: StaticString) {
        self.errno = errno
        self.function = function
    }

    public var description: String {
        "\(function) failed: \(String(cString: strerror(errno))) (errno \(errno))"
    }
}

/// The outcome of a non-blocking call: a value, or "try again when the fd is ready".
@frozen
public enum IOResult<T> {
    case processed(T)
    case wouldBlock
}

/// The one place that interprets errno: retries `EINTR`, turns `EAGAIN`/`EWOULDBLOCK`
/// into `.wouldBlock`, and any other failure into a thrown `IOError`.
@inlinable @inline(__always)
public func syscall<T: FixedWidthInteger>(
    _ function: StaticString, _ body: () -> T
) throws(IOError) -> IOResult<T> {
    while true {
        let result = body()
        if result >= 0 { return .processed(result) }
        let err = chorus_errno()
        switch err {
        case EINTR: continue
        case EAGAIN, EWOULDBLOCK: return .wouldBlock
        default: throw IOError(errno: err, function: function)
        }
    }
}

/// For calls that never block: retries `EINTR`, throws on any failure.
@inlinable @inline(__always)
public func syscallChecked<T: FixedWidthInteger>(
    _ function: StaticString, _ body: () -> T
) throws(IOError) -> T {
    while true {
        let result = body()
        if result >= 0 { return result }
        let err = chorus_errno()
        if err == EINTR { continue }
        throw IOError(errno: err, function: function)
    }
}

/// Monotonic clock in nanoseconds.
@inlinable
public func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

/// Process resource limits.
public enum ResourceLimits {
    /// Raises the soft RLIMIT_NOFILE to the hard limit; returns the resulting soft limit.
    @discardableResult
    public static func raiseOpenFileLimit() -> Int {
        var lim = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &lim) == 0 else { return -1 }
        if lim.rlim_cur < lim.rlim_max {
            var raised = lim
            raised.rlim_cur = lim.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { return Int(raised.rlim_cur) }
        }
        return Int(lim.rlim_cur)
    }
}
