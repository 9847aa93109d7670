/// Bytes a connection received but could not process yet (a partial frame or HTTP head).
/// Idle connections hold none: reads go to the loop's shared buffer, and only leftovers land here.
struct InboundBuffer {
    private(set) var base: UnsafeMutableRawPointer?
    private(set) var capacity = 0
    var count = 0

    var isEmpty: Bool { count == 0 }

    mutating func reserve(_ needed: Int) {
        guard needed > capacity else { return }
        let newCapacity = max(needed, capacity * 2, 1024)
        base = realloc(base, newCapacity)
        precondition(base != nil, "out of memory")
        capacity = newCapacity
    }

    mutating func replace(with bytes: UnsafeRawBufferPointer) {
        if bytes.count == 0 {
            count = 0
            releaseIfEmpty()
            return
        }
        if let base, bytes.baseAddress! >= UnsafeRawPointer(base),
            bytes.baseAddress! < UnsafeRawPointer(base) + capacity
        {
            // Compacting within ourselves (nothing to move when nothing was consumed).
            if bytes.baseAddress! != UnsafeRawPointer(base) { memmove(base, bytes.baseAddress!, bytes.count) }
        } else {
            reserve(bytes.count)
            base!.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        }
        count = bytes.count
    }

    /// Leftovers are rare and short-lived: give the memory back as soon as they are consumed, so
    /// an idle connection holds no buffer.
    mutating func releaseIfEmpty() {
        if count == 0 { release() }
    }

    mutating func release() {
        free(base)
        base = nil
        capacity = 0
        count = 0
    }
}

#if canImport(Glibc)
import Glibc
#endif
