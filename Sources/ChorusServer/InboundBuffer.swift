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
            shrinkIfLarge()
            return
        }
        if let base, bytes.baseAddress! >= UnsafeRawPointer(base), bytes.baseAddress! < UnsafeRawPointer(base) + capacity {
            // Compacting within ourselves.
            memmove(base, bytes.baseAddress!, bytes.count)
        } else {
            reserve(bytes.count)
            base!.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        }
        count = bytes.count
    }

    /// Large buffers are for large messages only: give the memory back once they are done.
    mutating func shrinkIfLarge() {
        if count == 0 && capacity > 64 * 1024 { release() }
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
