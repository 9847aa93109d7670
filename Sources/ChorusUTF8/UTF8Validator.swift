/// Incremental UTF-8 validator (RFC 3629 §4 grammar, Unicode Table 3-7) for text messages, which
/// RFC 6455 §8.1 requires to be valid UTF-8 (else close with 1007).
///
/// While at least 4 bytes remain, whole sequences are checked per step: ASCII 8 bytes at a time,
/// and a 2-, 3- or 4-byte sequence with one masked compare of its lead and continuation bytes plus
/// a range check of the top bits of its code point (overlongs, UTF-16 surrogates, above U+10FFFF).
/// The last bytes of a chunk go through a byte-at-a-time state machine that can stop inside a
/// sequence: the state is then the number of continuation bytes still expected and the allowed
/// range for the next one. Narrowing the range of the *first* continuation byte
/// (E0 → A0-BF, ED → 80-9F, F0 → 90-BF, F4 → 80-8F) rejects an invalid sequence on the very byte
/// that makes the input invalid, so `feed` fails on the chunk that holds that byte, which is what
/// Autobahn's "fail fast" cases (6.x) check.
public struct UTF8Validator: Sendable {
    @usableFromInline var pending: UInt8 = 0
    @usableFromInline var low: UInt8 = 0x80
    @usableFromInline var high: UInt8 = 0xBF
    @usableFromInline var failed = false

    @inlinable
    public init() {}

    /// True when the bytes fed so far end on a character boundary (a complete message is valid).
    @inlinable
    public var isComplete: Bool { pending == 0 && !failed }

    @inlinable
    public mutating func reset() { self = UTF8Validator() }

    /// Feed a chunk; returns false as soon as the bytes so far cannot be a prefix of valid UTF-8.
    @inlinable
    public mutating func feed(_ bytes: UnsafeRawBufferPointer) -> Bool {
        if failed { return false }
        let count = bytes.count
        guard count > 0, let base = bytes.baseAddress else { return true }
        var i = 0
        // Continuation bytes of a sequence begun in an earlier chunk.
        if pending > 0 {
            var pending = self.pending
            var low = self.low
            var high = self.high
            while pending > 0 {
                if i == count {
                    self.pending = pending; self.low = low; self.high = high
                    return true
                }
                let b = base.load(fromByteOffset: i, as: UInt8.self)
                if b < low || b > high { return fail() }
                low = 0x80; high = 0xBF
                pending &-= 1
                i &+= 1
            }
            self.pending = 0; self.low = 0x80; self.high = 0xBF
        }
        // Whole sequences while 4 bytes remain (a sequence is at most 4 bytes long).
        while i &+ 4 <= count {
            // Bytes i, i+1, i+2, i+3 in the low to high bytes of w.
            let w = UInt32(littleEndian: base.loadUnaligned(fromByteOffset: i, as: UInt32.self))
            if w & 0x80 == 0 {
                // ASCII: skip to the next non-ASCII byte, a word at a time.
                let m = w & 0x8080_8080
                if m != 0 { i &+= m.trailingZeroBitCount &>> 3; continue }
                i &+= 4
                // 16 bytes per step while they are all ASCII, then 8 bytes per step.
                while i &+ 16 <= count {
                    let a = base.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                    let b = base.loadUnaligned(fromByteOffset: i &+ 8, as: UInt64.self)
                    if (a | b) & 0x8080_8080_8080_8080 != 0 { break }
                    i &+= 16
                }
                while i &+ 8 <= count {
                    let m8 = base.loadUnaligned(fromByteOffset: i, as: UInt64.self).littleEndian & 0x8080_8080_8080_8080
                    if m8 != 0 { i &+= m8.trailingZeroBitCount &>> 3; break }
                    i &+= 8
                }
                continue
            }
            if w & 0xC0E0 == 0x80C0 {
                // 110xxxxx 10xxxxxx; C0 and C1 are overlong.
                if w & 0x1E == 0 { return fail() }
                i &+= 2
            } else if w & 0xC0_C0F0 == 0x80_80E0 {
                // 1110xxxx 10xxxxxx 10xxxxxx; t = code point >> 6 must be 0x20...0x3FF but not 0x360...0x37F
                // (U+0800...U+FFFF without the surrogates D800-DFFF).
                let t = (w & 0x0F) &<< 6 | (w &>> 8) & 0x3F
                if t < 0x20 || t & 0x3E0 == 0x360 { return fail() }
                i &+= 3
            } else if w & 0xC0C0_C0F8 == 0x8080_80F0 {
                // 11110xxx 10xxxxxx 10xxxxxx 10xxxxxx; t = code point >> 12 must be 0x10...0x10F
                // (U+10000...U+10FFFF).
                let t = (w & 0x07) &<< 6 | (w &>> 8) & 0x3F
                if t < 0x10 || t > 0x10F { return fail() }
                i &+= 4
            } else {
                // A stray continuation byte, a lead byte F8-FF, or a lead byte not followed by
                // enough continuation bytes.
                return fail()
            }
        }
        // The last 0-3 bytes, a byte at a time: may end inside a sequence.
        var pending: UInt8 = 0
        var low: UInt8 = 0x80
        var high: UInt8 = 0xBF
        while i < count {
            let b = base.load(fromByteOffset: i, as: UInt8.self)
            i &+= 1
            if pending > 0 {
                if b < low || b > high { return fail() }
                low = 0x80; high = 0xBF
                pending &-= 1
                continue
            }
            switch b {
            case 0x00...0x7F: continue
            case 0xC2...0xDF: pending = 1
            case 0xE0: pending = 2; low = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: pending = 2
            case 0xED: pending = 2; high = 0x9F
            case 0xF0: pending = 3; low = 0x90
            case 0xF1...0xF3: pending = 3
            case 0xF4: pending = 3; high = 0x8F
            default:  // 80-BF stray continuation, C0-C1 overlong, F5-FF beyond U+10FFFF
                return fail()
            }
        }
        self.pending = pending; self.low = low; self.high = high
        return true
    }

    @inlinable
    mutating func fail() -> Bool {
        failed = true
        pending = 0
        return false
    }

    /// One-shot validation of a complete message.
    @inlinable
    public static func validate(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var v = UTF8Validator()
        return v.feed(bytes) && v.isComplete
    }
}
