/// The bytes the Swift runtime asks malloc for when it creates an instance of `object`'s class:
/// the class metadata's `instanceSize` (Swift ABI, class metadata without Objective-C interop, as
/// on Linux: kind, superclass, flags and instance address point (4 bytes each), then the size).
/// Deterministic where `malloc_usable_size` is not: a busy allocator may hand out a larger free
/// chunk than a fresh one. malloc's chunk for it is `(size + 8 + 15) / 16 * 16` bytes (glibc).
public func allocatedInstanceSize(of object: AnyObject) -> Int {
    let metadata = unsafeBitCast(type(of: object), to: UnsafeRawPointer.self)
    return Int(metadata.load(fromByteOffset: 24, as: UInt32.self))
}

/// glibc's chunk for a request of `size` bytes (64-bit).
public func mallocChunk(forRequest size: Int) -> Int { max(32, (size + 8 + 15) / 16 * 16) }
