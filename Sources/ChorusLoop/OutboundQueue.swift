import CChorusLinux

#if canImport(Glibc)
import Glibc
#endif

/// A connection's queue of outgoing bytes, written with one `writev` per flush ("corking").
/// Entries are views of shared buffers, never copies; a frame that begins where the last queued
/// one ends (frames carved one after another from a `FrameArena` chunk) extends that entry, so a
/// burst of broadcasts goes out as one contiguous `iovec`. The queue allocates nothing when empty,
/// and keeps its capacity between bursts.
///
/// `charge` is what the queue keeps alive, for backpressure limits: each run of entries in one
/// buffer costs that buffer's whole capacity once (a view pins all of it) plus 64 bytes per entry.
public struct OutboundQueue {
    @usableFromInline
    struct Entry {
        @usableFromInline var bytes: SharedBytes
        /// What this entry added to `charge`.
        @usableFromInline var charge: UInt32

        @inlinable init(bytes: SharedBytes, charge: UInt32) {
            self.bytes = bytes
            self.charge = charge
        }
    }

    @usableFromInline var entries: ContiguousArray<Entry> = []
    @usableFromInline var head = 0
    /// Bytes of `entries[head]` already written.
    @usableFromInline var headOffset = 0
    @usableFromInline var pendingBytes = 0
    @usableFromInline var pendingCharge = 0
    /// Something was appended since the last `releaseIdleStorage()`.
    @usableFromInline var appendedSinceCheck = false

    /// The fixed cost of one queue entry against a backpressure limit.
    public static let entryCost = 64

    public init() {}

    /// Bytes waiting to be written.
    public var byteCount: Int { pendingBytes }
    /// Memory the queued entries keep alive (see the type's comment).
    public var charge: Int { pendingCharge }
    public var isEmpty: Bool { pendingBytes == 0 && head == entries.count }
    /// Entries (contiguous runs of frames) waiting.
    public var entryCount: Int { entries.count - head }

    /// What appending `bytes` would add to `charge`.
    @inlinable
    public func charge(ofAppending bytes: SharedBytes) -> Int {
        guard head < entries.count else { return bytes.bufferCapacity + Self.entryCost }
        let last = entries[entries.count - 1].bytes
        if last.isFollowed(by: bytes) { return 0 }
        if last.isSameBuffer(as: bytes) { return Self.entryCost }
        return bytes.bufferCapacity + Self.entryCost
    }

    @inlinable
    public mutating func append(_ bytes: SharedBytes) {
        let added = charge(ofAppending: bytes)
        appendedSinceCheck = true
        pendingBytes += bytes.count
        pendingCharge += added
        if head < entries.count && added == 0 {
            entries[entries.count - 1].bytes.extend(by: bytes.count)
        } else {
            entries.append(Entry(bytes: bytes, charge: UInt32(truncatingIfNeeded: added)))
        }
    }

    /// Frees the entries' storage when the queue is empty and nothing was appended since the last
    /// call. The loop calls it once a tick: an idle connection then holds no heap block for its
    /// queue (64 bytes each), while one that receives keeps its storage; at most one allocation per
    /// connection a tick, never one per frame.
    public mutating func releaseIdleStorage() {
        if appendedSinceCheck {
            appendedSinceCheck = false
        } else {
            releaseStorageIfEmpty()
        }
    }

    /// Frees the entries' storage now if nothing waits (after a burst known to be the last for a
    /// while, such as a handshake's answer).
    public mutating func releaseStorageIfEmpty() {
        guard head == entries.count, entries.capacity > 0 else { return }
        entries = []
        head = 0
    }

    /// Whether the queue holds entry storage (for the tests of `releaseIdleStorage`).
    public var holdsStorage: Bool { entries.capacity > 0 }

    /// Drops everything queued (on close).
    public mutating func removeAll() {
        entries.removeAll()
        head = 0
        headOffset = 0
        pendingBytes = 0
        pendingCharge = 0
    }

    /// Writes as much as the socket takes, up to `iovCapacity` entries per `writev`.
    /// Returns true when the queue is empty, false when the socket would block.
    public mutating func flush(fd: Int32, iov: UnsafeMutablePointer<iovec>, iovCapacity: Int) throws(IOError) -> Bool {
        while head < entries.count {
            var n = 0
            var i = head
            while i < entries.count && n < iovCapacity {
                let entry = entries[i].bytes
                let skip = i == head ? headOffset : 0
                iov[n] = iovec(
                    iov_base: UnsafeMutableRawPointer(mutating: entry.baseAddress + skip), iov_len: entry.count - skip)
                n += 1
                i += 1
            }
            switch try Socket.writev(fd, iov, count: Int32(n)) {
            case .wouldBlock:
                return false
            case .processed(let written):
                consume(written)
                if head < entries.count && written == 0 { return false }
            }
        }
        return true
    }

    @usableFromInline
    mutating func consume(_ written: Int) {
        var left = written
        pendingBytes -= written
        while left > 0 && head < entries.count {
            let remaining = entries[head].bytes.count - headOffset
            if left >= remaining {
                left -= remaining
                headOffset = 0
                pendingCharge -= Int(entries[head].charge)
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
            pendingCharge = 0
        } else if head >= 256 && head * 2 >= entries.count {
            entries.removeFirst(head)
            head = 0
        }
    }
}
