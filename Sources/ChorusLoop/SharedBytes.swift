import Synchronization

/// An immutable view of bytes in a reference-counted buffer. A broadcast frame is built once into
/// such a buffer and every recipient's queue points to it. Several small frames may share one
/// buffer (see `FrameArena`): frames encoded back to back lie back to back in memory, so a queue
/// holding several of them can send them as one contiguous piece.
/// (A struct around the storage class: ManagedBuffer subclasses cannot be Sendable themselves.)
/// Unchecked Sendable: the bytes in view never change once written (an arena only appends past
/// every view it handed out), and the storage's reference count is atomic.
public struct SharedBytes: @unchecked Sendable {
    /// Header: how many bytes of the buffer are in use (for an arena chunk, carved so far).
    @usableFromInline
    final class Storage: ManagedBuffer<Int, UInt8> {}

    @usableFromInline var storage: Storage
    @usableFromInline var start: UInt32
    @usableFromInline var length: UInt32

    @inlinable
    init(storage: Storage, start: Int, count: Int) {
        precondition(count <= Int(UInt32.max) && start <= Int(UInt32.max), "a shared buffer holds at most 4 GiB")
        self.storage = storage
        self.start = UInt32(truncatingIfNeeded: start)
        self.length = UInt32(truncatingIfNeeded: count)
    }

    /// Allocates `count` bytes of their own and lets `initialize` fill them; immutable afterwards.
    @inlinable
    public static func make(count: Int, _ initialize: (UnsafeMutableRawBufferPointer) -> Void) -> SharedBytes {
        let storage = unsafeDowncast(Storage.create(minimumCapacity: max(count, 1)) { _ in count }, to: Storage.self)
        storage.withUnsafeMutablePointerToElements {
            initialize(UnsafeMutableRawBufferPointer(start: $0, count: count))
        }
        return SharedBytes(storage: storage, start: 0, count: count)
    }

    @inlinable
    public static func copying(_ bytes: UnsafeRawBufferPointer) -> SharedBytes {
        make(count: bytes.count) { if bytes.count > 0 { $0.copyMemory(from: bytes) } }
    }

    @inlinable
    public static func copying(_ bytes: [UInt8]) -> SharedBytes {
        bytes.withUnsafeBytes { copying($0) }
    }

    @inlinable
    public var count: Int { Int(length) }

    /// The bytes. Valid as long as any copy of this value is alive.
    @inlinable
    public var baseAddress: UnsafeRawPointer {
        UnsafeRawPointer(storage.withUnsafeMutablePointerToElements { $0 }) + Int(start)
    }

    @inlinable
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: baseAddress, count: count))
    }

    public var array: [UInt8] { withUnsafeBytes { Array($0) } }

    /// Whether two values point into the same allocation.
    @inlinable
    public func isSameBuffer(as other: SharedBytes) -> Bool { storage === other.storage }

    /// Whether `next` begins exactly where these bytes end, in the same allocation.
    @inlinable
    public func isFollowed(by next: SharedBytes) -> Bool {
        storage === next.storage && start &+ length == next.start
    }

    /// Bytes the underlying allocation keeps alive (what holding this value costs in memory).
    @inlinable
    public var bufferCapacity: Int { storage.capacity }

    /// These bytes and the `count` bytes right after them (`isFollowed(by:)` was true).
    @inlinable
    mutating func extend(by count: Int) {
        length &+= UInt32(truncatingIfNeeded: count)
    }
}

/// A loop's source of frame buffers, so that steady-state sends allocate nothing and frames
/// encoded one after another are contiguous: small frames are carved one after the other out of
/// 8 KiB chunks; a recipient that gets several of them in a row sends them as one `iovec` (one
/// copy in the kernel instead of one per frame) and holds one reference instead of one per frame.
/// A chunk is reused once nobody else holds a view into it. Larger frames get their own buffer.
///
/// Confined to one thread (each loop owns one). Views may travel to other loops; the uniqueness
/// check plus an acquire fence makes their last release happen before the chunk is rewritten.
public final class FrameArena {
    public static let chunkCapacity = 8 * 1024
    /// Frames up to this size are carved from chunks.
    public static let largestCarvedFrame = chunkCapacity / 4

    @exclusivity(unchecked) @usableFromInline var current: SharedBytes.Storage
    /// Full chunks, oldest first, kept for reuse once every view into them is gone.
    @exclusivity(unchecked) @usableFromInline var retired: [SharedBytes.Storage] = []
    @usableFromInline let retiredLimit: Int
    /// Chunks allocated so far (for tests and statistics).
    @exclusivity(unchecked) public private(set) var chunksAllocated = 1

    /// `retiredLimit` bounds the memory kept for reuse (limit x 8 KiB).
    public init(retiredLimit: Int = 64) {
        self.retiredLimit = retiredLimit
        current = Self.allocateChunk()
        retired.reserveCapacity(retiredLimit)
    }

    /// Like `SharedBytes.make`: carved from the current chunk when the frame is small.
    @inlinable
    public func make(count: Int, _ initialize: (UnsafeMutableRawBufferPointer) -> Void) -> SharedBytes {
        guard count <= Self.largestCarvedFrame else { return SharedBytes.make(count: count, initialize) }
        var used = current.header
        if used > 0 && isKnownUniquelyReferenced(&current) {
            // Every frame carved so far is written and released: start over at the front, where
            // the memory is still warm in the cache.
            atomicMemoryFence(ordering: .acquiring)
            used = 0
        } else if used + count > Self.chunkCapacity {
            replaceCurrentChunk()
            used = 0
        }
        current.header = used + count
        current.withUnsafeMutablePointerToElements {
            initialize(UnsafeMutableRawBufferPointer(start: $0 + used, count: count))
        }
        return SharedBytes(storage: current, start: used, count: count)
    }

    @usableFromInline
    func replaceCurrentChunk() {
        if retired.count >= retiredLimit {
            // Pinned by a slow reader: let ARC free it when that reader lets go.
            retired.removeFirst()
        }
        retired.append(current)
        // The oldest chunks are the likeliest to be fully written by now.
        for i in 0..<min(retired.count - 1, 8) where isKnownUniquelyReferenced(&retired[i]) {
            atomicMemoryFence(ordering: .acquiring)
            current = retired.remove(at: i)
            return
        }
        current = Self.allocateChunk()
        chunksAllocated += 1
    }

    @usableFromInline
    static func allocateChunk() -> SharedBytes.Storage {
        unsafeDowncast(
            SharedBytes.Storage.create(minimumCapacity: chunkCapacity) { _ in 0 }, to: SharedBytes.Storage.self)
    }
}
