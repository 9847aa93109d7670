/// Incremental UTF-8 validator (RFC 3629 §4 grammar) for text messages, which
/// RFC 6455 §8.1 requires to be valid UTF-8 (else close with 1007).
///
/// The state is the number of continuation bytes still expected and the allowed
/// range for the next one. Narrowing the range of the *first* continuation byte
/// (E0 → A0-BF, ED → 80-9F, F0 → 90-BF, F4 → 80-8F) rejects overlongs, UTF-16
/// surrogates and code points above U+10FFFF on the very byte that makes the
/// input invalid, which is what Autobahn's "fail fast" cases (6.x) check.
/// ASCII, the common case for chat, is checked 8 bytes per step.
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
        var pending = self.pending
        var low = self.low
        var high = self.high
        var i = 0
        while true {
            // Continuation bytes of the current sequence (possibly begun in an earlier chunk).
            while pending > 0 {
                if i == count {
                    self.pending = pending; self.low = low; self.high = high
                    return true
                }
                let b = base.load(fromByteOffset: i, as: UInt8.self)
                if b < low || b > high { failed = true; self.pending = 0; return false }
                low = 0x80; high = 0xBF
                pending &-= 1
                i &+= 1
            }
            // ASCII run, a word at a time.
            while i &+ 8 <= count {
                if base.loadUnaligned(fromByteOffset: i, as: UInt64.self) & 0x8080_8080_8080_8080 != 0 { break }
                i &+= 8
            }
            if i == count { break }
            let b = base.load(fromByteOffset: i, as: UInt8.self)
            i &+= 1
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
                failed = true; self.pending = 0
                return false
            }
        }
        self.pending = 0; self.low = 0x80; self.high = 0xBF
        return true
    }

    /// One-shot validation of a complete message.
    @inlinable
    public static func validate(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var v = UTF8Validator()
        return v.feed(bytes) && v.isComplete
    }
}
