import CChorusLinux

#if canImport(Glibc)
import Glibc
#endif

/// An IPv4 or IPv6 socket address.
///
/// Kept in a `sockaddr_in6` (28 bytes, which holds a `sockaddr_in` too) rather than a 128-byte
/// `sockaddr_storage`: every connection stores its peer's address, and the other 100 bytes were an
/// eighth of an idle connection's memory (BENCHMARKS.md, memory per idle connection).
public struct SocketAddress: Sendable, CustomStringConvertible {
    @usableFromInline var storage: sockaddr_in6
    public var length: socklen_t

    /// An address the kernel returned; only IPv4 and IPv6 are kept (a longer one is cut short).
    public init(storage: sockaddr_storage, length: socklen_t) {
        var compact = sockaddr_in6()
        let kept = min(Int(length), MemoryLayout<sockaddr_in6>.size)
        withUnsafeMutableBytes(of: &compact) { dst in
            withUnsafeBytes(of: storage) { dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0.prefix(kept))) }
        }
        self.storage = compact
        self.length = socklen_t(kept)
    }

    /// Parses a numeric host ("127.0.0.1", "::1", "0.0.0.0", "localhost") and a port.
    public init(host: String, port: Int) throws(IOError) {
        var storage = sockaddr_storage()
        let host = host == "localhost" ? "127.0.0.1" : host
        if host.contains(":") {
            var addr = sockaddr_in6()
            addr.sin6_family = sa_family_t(AF_INET6)
            addr.sin6_port = in_port_t(UInt16(port).bigEndian)
            guard inet_pton(AF_INET6, host, &addr.sin6_addr) == 1 else {
                throw IOError(errno: EINVAL, function: "inet_pton")
            }
            withUnsafeMutableBytes(of: &storage) { dst in withUnsafeBytes(of: addr) { dst.copyMemory(from: $0) } }
            self.init(storage: storage, length: socklen_t(MemoryLayout<sockaddr_in6>.size))
        } else {
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = in_port_t(UInt16(port).bigEndian)
            guard inet_pton(AF_INET, host, &addr.sin_addr) == 1 else {
                throw IOError(errno: EINVAL, function: "inet_pton")
            }
            withUnsafeMutableBytes(of: &storage) { dst in withUnsafeBytes(of: addr) { dst.copyMemory(from: $0) } }
            self.init(storage: storage, length: socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }

    public var family: Int32 { Int32(storage.sin6_family) }

    public var port: Int {
        withUnsafeBytes(of: storage) { raw in
            if family == AF_INET6 {
                return Int(UInt16(bigEndian: raw.load(as: sockaddr_in6.self).sin6_port))
            }
            return Int(UInt16(bigEndian: raw.load(as: sockaddr_in.self).sin_port))
        }
    }

    /// The numeric host, without the port.
    public var host: String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        withUnsafeBytes(of: storage) { raw in
            if family == AF_INET6 {
                var a = raw.load(as: sockaddr_in6.self).sin6_addr
                _ = inet_ntop(AF_INET6, &a, &buffer, socklen_t(buffer.count))
            } else {
                var a = raw.load(as: sockaddr_in.self).sin_addr
                _ = inet_ntop(AF_INET, &a, &buffer, socklen_t(buffer.count))
            }
        }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// A compact key for per-address accounting (the raw IP bytes).
    public var hostKey: [UInt8] {
        withUnsafeBytes(of: storage) { raw in
            if family == AF_INET6 {
                return withUnsafeBytes(of: raw.load(as: sockaddr_in6.self).sin6_addr) { Array($0) }
            }
            return withUnsafeBytes(of: raw.load(as: sockaddr_in.self).sin_addr) { Array($0) }
        }
    }

    public var description: String { family == AF_INET6 ? "[\(host)]:\(port)" : "\(host):\(port)" }

    @inlinable
    public func withSockAddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws -> R) rethrows -> R {
        try withUnsafeBytes(of: storage) { raw in
            try body(raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), length)
        }
    }
}

/// Thin, non-blocking socket calls. File descriptors are plain `Int32`s owned by the caller.
public enum Socket {
    /// A non-blocking listening TCP socket. `reusePort` lets one listener per loop share the port.
    public static func listen(address: SocketAddress, backlog: Int32, reusePort: Bool) throws(IOError) -> Int32 {
        let fd = try syscallChecked("socket") {
            socket(address.family, CHORUS_SOCK_STREAM | CHORUS_SOCK_NONBLOCK | CHORUS_SOCK_CLOEXEC, 0)
        }
        do throws(IOError) {
            try setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1)
            if reusePort { try setOption(fd, SOL_SOCKET, SO_REUSEPORT, 1) }
            _ = try syscallChecked("bind") { address.withSockAddr { bind(fd, $0, $1) } }
            _ = try syscallChecked("listen") { Glibc.listen(fd, backlog) }
        } catch {
            close(fd)
            throw error
        }
        return fd
    }

    public static func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32) throws(IOError) {
        var v = value
        _ = try syscallChecked("setsockopt") { setsockopt(fd, level, name, &v, socklen_t(MemoryLayout<Int32>.size)) }
    }

    public static func localAddress(_ fd: Int32) throws(IOError) -> SocketAddress {
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = try syscallChecked("getsockname") {
            withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
            }
        }
        return SocketAddress(storage: storage, length: len)
    }

    /// accept4 with the new socket non-blocking and close-on-exec.
    public static func accept(_ fd: Int32) throws(IOError) -> IOResult<(fd: Int32, address: SocketAddress)> {
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = try syscall("accept4") {
            withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    chorus_accept4(fd, $0, &len, CHORUS_SOCK_NONBLOCK | CHORUS_SOCK_CLOEXEC)
                }
            }
        }
        switch result {
        case .wouldBlock: return .wouldBlock
        case .processed(let client): return .processed((client, SocketAddress(storage: storage, length: len)))
        }
    }

    /// Starts a non-blocking connect, optionally from a given local address (to use more than one
    /// loopback source address when one runs out of ephemeral ports).
    public static func connect(to address: SocketAddress, from source: SocketAddress? = nil) throws(IOError) -> Int32 {
        let fd = try syscallChecked("socket") {
            socket(address.family, CHORUS_SOCK_STREAM | CHORUS_SOCK_NONBLOCK | CHORUS_SOCK_CLOEXEC, 0)
        }
        do throws(IOError) {
            if let source {
                _ = try syscallChecked("bind") { source.withSockAddr { bind(fd, $0, $1) } }
            }
            let rc = address.withSockAddr { Glibc.connect(fd, $0, $1) }
            if rc < 0 {
                let err = chorus_errno()
                if err != EINPROGRESS && err != EINTR { throw IOError(errno: err, function: "connect") }
            }
        } catch {
            close(fd)
            throw error
        }
        return fd
    }

    /// Bytes the kernel still holds in `fd`'s send queue (SIOCOUTQ: unsent plus unacknowledged);
    /// 0 if the socket cannot tell.
    public static func sendQueueBytes(_ fd: Int32) -> Int {
        max(0, Int(chorus_send_queue_bytes(fd)))
    }

    /// The pending error of a socket (after a non-blocking connect completes).
    public static func pendingError(_ fd: Int32) -> Int32 {
        var err: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        _ = getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)
        return err
    }

    @inlinable
    public static func read(_ fd: Int32, into buffer: UnsafeMutableRawPointer, count: Int) throws(IOError) -> IOResult<
        Int
    > {
        try syscall("read") { Glibc.read(fd, buffer, count) }
    }

    /// Gathered write. `sendmsg` with MSG_NOSIGNAL rather than `writev`: a peer that vanished
    /// must be an EPIPE error for this connection, never a SIGPIPE for the whole process (the
    /// server may be embedded in a process that does not ignore SIGPIPE).
    @inlinable
    public static func writev(_ fd: Int32, _ iov: UnsafePointer<iovec>, count: Int32) throws(IOError) -> IOResult<Int> {
        // One piece (the usual case once frames are contiguous): send() skips sendmsg's copying
        // in of the message header and iovec array.
        if count == 1 { return try write(fd, iov[0].iov_base, count: iov[0].iov_len) }
        var message = msghdr()
        message.msg_iov = UnsafeMutablePointer(mutating: iov)
        message.msg_iovlen = Int(count)
        return try syscall("sendmsg") { sendmsg(fd, &message, Int32(MSG_NOSIGNAL)) }
    }

    @inlinable
    public static func write(_ fd: Int32, _ bytes: UnsafeRawPointer, count: Int) throws(IOError) -> IOResult<Int> {
        try syscall("send") { send(fd, bytes, count, Int32(MSG_NOSIGNAL)) }
    }

    public static func shutdownWrite(_ fd: Int32) { _ = Glibc.shutdown(fd, Int32(SHUT_WR)) }

    public static func close(_ fd: Int32) { _ = Glibc.close(fd) }

    /// The most iovecs one writev takes.
    public static let maxIOVecs = Int(chorus_iov_max())
}
