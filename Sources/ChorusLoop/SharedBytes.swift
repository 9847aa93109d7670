/// An immutable, reference-counted byte buffer: one allocation holds the count and the bytes.
/// A broadcast frame is built into one of these once and every recipient's queue points to it.
public final class SharedBytes: ManagedBuffer<Int, UInt8>, @unchecked Sendable {
    /// Allocates `count` bytes and lets `initialize` fill them; the bytes are immutable afterwards.
    @inlinable
    public static func make(count: Int, _ initialize: (UnsafeMutableRawBufferPointer) -> Void) -> SharedBytes {
        let buffer = unsafeDowncast(
            SharedBytes.create(minimumCapacity: max(count, 1)) { _ in count }, to: SharedBytes.self)
        buffer.withUnsafeMutablePointerToElements { initialize(UnsafeMutableRawBufferPointer(start: $0, count: count)) }
        return buffer
    }

    @inlinable
    public static func copying(_ bytes: UnsafeRawBufferPointer) -> SharedBytes {
        make(count: bytes.count) { $0.copyMemory(from: bytes) }
    }

    @inlinable
    public static func copying(_ bytes: [UInt8]) -> SharedBytes {
        bytes.withUnsafeBytes { copying($0) }
    }

    @inlinable
    public var count: Int { header }

    /// The bytes. Valid as long as this object is alive.
    @inlinable
    public var baseAddress: UnsafeRawPointer {
        UnsafeRawPointer(withUnsafeMutablePointerToElements { $0 })
    }

    @inlinable
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: baseAddress, count: count))
    }

    public var array: [UInt8] { withUnsafeBytes { Array($0) } }
}
