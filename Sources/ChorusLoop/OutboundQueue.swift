import CChorusLinux
#if canImport(Glibc)
import Glibc
#endif

/// A connection's queue of outgoing byte buffers, written with one `writev` per flush ("corking").
/// Entries are references to shared buffers, never copies. The queue allocates nothing when empty,
/// and keeps its capacity between bursts.
public struct OutboundQueue {
    @usableFromInline var entries: ContiguousArray<SharedBytes> = []
    @usableFromInline var head = 0
    /// Bytes of `entries[head]` already written.
    @usableFromInline var headOffset = 0
    /// Bytes waiting to be written.
    public var byteCount: Int { pendingBytes }
    @usableFromInline var pendingBytes = 0

    public init() {}

    public var isEmpty: Bool { byteCount == 0 && head == entries.count }
    public var frameCount: Int { entries.count - head }

    @inlinable
    public mutating func append(_ bytes: SharedBytes) {
        entries.append(bytes)
        pendingBytes += bytes.count
    }

    /// Drops everything queued (on close).
    public mutating func removeAll() {
        entries.removeAll()
        head = 0
        headOffset = 0
        pendingBytes = 0
    }

    /// Writes as much as the socket takes, up to `iovCapacity` buffers per `writev`.
    /// Returns true when the queue is empty, false when the socket would block.
    /// Buffers written completely are offered to `pool` for reuse.
    public mutating func flush(fd: Int32, iov: UnsafeMutablePointer<iovec>, iovCapacity: Int, pool: SharedBytesPool? = nil) throws(IOError) -> Bool {
        while head < entries.count {
            var n = 0
            var i = head
            while i < entries.count && n < iovCapacity {
                let entry = entries[i]
                let skip = i == head ? headOffset : 0
                iov[n] = iovec(iov_base: UnsafeMutableRawPointer(mutating: entry.baseAddress + skip), iov_len: entry.count - skip)
                n += 1
                i += 1
            }
            switch try Socket.writev(fd, iov, count: Int32(n)) {
            case .wouldBlock:
                return false
            case .processed(let written):
                consume(written, pool: pool)
                if head < entries.count && written == 0 { return false }
            }
        }
        return true
    }

    @usableFromInline
    mutating func consume(_ written: Int, pool: SharedBytesPool?) {
        var left = written
        pendingBytes -= written
        while left > 0 && head < entries.count {
            let remaining = entries[head].count - headOffset
            if left >= remaining {
                left -= remaining
                headOffset = 0
                pool?.recycle(&entries[head])
                head += 1
            } else {
                headOffset += left
                left = 0
            }
        }
        if head == entries.count {
            // Release every reference but keep the storage for the next burst.
            entries.removeAll(keepingCapacity: entries.capacity <= 1024)
            head = 0
        } else if head >= 256 && head * 2 >= entries.count {
            entries.removeFirst(head)
            head = 0
        }
    }
}
