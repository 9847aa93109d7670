/// An immutable, reference-counted byte buffer: one allocation holds the count and the bytes.
/// A broadcast frame is built into one of these once and every recipient's queue points to it.
/// (A struct around the storage class: ManagedBuffer subclasses cannot be Sendable themselves.)
public struct SharedBytes: @unchecked Sendable {
    @usableFromInline
    final class Storage: ManagedBuffer<Int, UInt8> {}

    @usableFromInline var storage: Storage

    @inlinable
    init(storage: Storage) { self.storage = storage }

    /// Allocates `count` bytes and lets `initialize` fill them; the bytes are immutable afterwards.
    @inlinable
    public static func make(count: Int, _ initialize: (UnsafeMutableRawBufferPointer) -> Void) -> SharedBytes {
        let storage = unsafeDowncast(Storage.create(minimumCapacity: max(count, 1)) { _ in count }, to: Storage.self)
        storage.withUnsafeMutablePointerToElements { initialize(UnsafeMutableRawBufferPointer(start: $0, count: count)) }
        return SharedBytes(storage: storage)
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
    public var count: Int { storage.header }

    /// The bytes. Valid as long as any copy of this value is alive.
    @inlinable
    public var baseAddress: UnsafeRawPointer {
        UnsafeRawPointer(storage.withUnsafeMutablePointerToElements { $0 })
    }

    @inlinable
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: baseAddress, count: count))
    }

    public var array: [UInt8] { withUnsafeBytes { Array($0) } }

    /// Whether two values share the same bytes (the same allocation).
    public func isSameBuffer(as other: SharedBytes) -> Bool { storage === other.storage }
}

/// A loop's free list of small frame buffers, so that steady-state sends allocate nothing: a buffer
/// whose last reference is dropped after its write comes back here instead of to malloc.
/// Confined to one thread (each loop owns one); a buffer may be made on one loop and recycled on
/// another, which only moves memory between free lists.
public final class SharedBytesPool {
    /// Buffers up to this many bytes are pooled (a 64 B chat message framed, a pong, a close...).
    public static let bufferCapacity = 512
    @usableFromInline var free: [SharedBytes.Storage] = []
    @usableFromInline let limit: Int

    /// `limit` bounds the memory the pool keeps (limit x ~540 B).
    public init(limit: Int = 1024) {
        self.limit = limit
        free.reserveCapacity(limit)
    }

    public var count: Int { free.count }

    /// Like `SharedBytes.make`, from the free list when the bytes fit a pooled buffer.
    @inlinable
    public func make(count: Int, _ initialize: (UnsafeMutableRawBufferPointer) -> Void) -> SharedBytes {
        guard count <= Self.bufferCapacity else { return SharedBytes.make(count: count, initialize) }
        let storage = takeOrAllocate()
        storage.header = count
        storage.withUnsafeMutablePointerToElements { initialize(UnsafeMutableRawBufferPointer(start: $0, count: count)) }
        return SharedBytes(storage: storage)
    }

    @usableFromInline
    func takeOrAllocate() -> SharedBytes.Storage {
        if let storage = free.popLast() { return storage }
        return unsafeDowncast(SharedBytes.Storage.create(minimumCapacity: Self.bufferCapacity) { _ in 0 }, to: SharedBytes.Storage.self)
    }

    /// Takes the buffer back if nobody else holds it (checked, so racing recyclers on two loops
    /// cannot both keep it) and it is a pooled size.
    @inlinable
    public func recycle(_ bytes: inout SharedBytes) {
        guard free.count < limit, bytes.storage.capacity >= Self.bufferCapacity,
              bytes.storage.capacity < 2 * Self.bufferCapacity,
              isKnownUniquelyReferenced(&bytes.storage) else { return }
        free.append(bytes.storage)
    }
}
