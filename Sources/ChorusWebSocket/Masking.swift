/// Client-to-server masking (RFC 6455 §5.3).
public enum WebSocketMasking {
    /// XOR `buffer` in place with the 4-byte key starting at key phase `phase` (0-3);
    /// returns the phase for the byte after `buffer`, so a payload can be unmasked
    /// in pieces.
    ///
    /// `key` holds the 4 key bytes as they appear on the wire, loaded little-endian:
    /// wire key byte `i` is `(key >> (8 * i)) & 0xFF`.
    ///
    /// Masking is the per-byte cost of every client frame, so it works on 64-bit
    /// words (the key repeated twice) with unaligned loads; 8 is a multiple of 4,
    /// so the phase does not move inside the word loop.
    @inlinable
    public static func unmask(_ buffer: UnsafeMutableRawBufferPointer, key: UInt32, phase: Int = 0) -> Int {
        let count = buffer.count
        let phase = phase & 3
        guard count > 0, let base = buffer.baseAddress else { return phase }
        // Rotate so that byte 0 of the rotated key is the key byte for buffer[0].
        let shift = UInt32(phase &* 8)
        let k = shift == 0 ? key : (key &>> shift) | (key &<< (32 &- shift))
        let mask = (UInt64(k) | (UInt64(k) &<< 32)).littleEndian
        var i = 0
        while i &+ 32 <= count {
            let p = base + i
            p.storeBytes(of: p.loadUnaligned(as: UInt64.self) ^ mask, as: UInt64.self)
            (p + 8).storeBytes(of: (p + 8).loadUnaligned(as: UInt64.self) ^ mask, as: UInt64.self)
            (p + 16).storeBytes(of: (p + 16).loadUnaligned(as: UInt64.self) ^ mask, as: UInt64.self)
            (p + 24).storeBytes(of: (p + 24).loadUnaligned(as: UInt64.self) ^ mask, as: UInt64.self)
            i &+= 32
        }
        while i &+ 8 <= count {
            let p = base + i
            p.storeBytes(of: p.loadUnaligned(as: UInt64.self) ^ mask, as: UInt64.self)
            i &+= 8
        }
        var j: UInt32 = 0
        while i < count {
            let p = base + i
            let kb = UInt8(truncatingIfNeeded: k &>> (j &* 8))
            p.storeBytes(of: p.load(as: UInt8.self) ^ kb, as: UInt8.self)
            i &+= 1
            j &+= 1
        }
        return (phase &+ count) & 3
    }
}
