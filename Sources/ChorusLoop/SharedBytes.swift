/// An immutable, reference-counted byte buffer: one allocation holds the count and the bytes.
/// A broadcast frame is built into one of these once and every recipient's queue points to it.
/// (A struct around the storage class: ManagedBuffer subclasses cannot be Sendable themselves.)
public struct SharedBytes: @unchecked Sendable {
    @usableFromInline
    final class Storage: ManagedBuffer<Int, UInt8> {}

    @usableFromInline let storage: Storage

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
