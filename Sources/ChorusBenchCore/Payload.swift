/// The benchmark payload: `{"t":<send ns>,"s":<seq>,"p":<publisher>,"pad":"<text>"}`, exactly `size`
/// bytes of ASCII (valid as text and as binary). `t` is CLOCK_MONOTONIC in ns, comparable across
/// processes on one machine. The padding is lower-case prose so compression ratios are realistic.
public enum Payload {
    static let prefix: [UInt8] = Array(#"{"t":"#.utf8)
    static let seqKey: [UInt8] = Array(#","s":"#.utf8)
    static let pubKey: [UInt8] = Array(#","p":"#.utf8)
    static let padKey: [UInt8] = Array(#","pad":""#.utf8)
    static let suffix: [UInt8] = Array(#""}"#.utf8)
    static let prose: [UInt8] = Array(
        ("the quick brown fox jumps over the lazy dog while the server fans every message out to "
            + "all of its connections and the clients count what arrives in order to measure latency and throughput "
            + "under load with small and large payloads alike ").utf8)

    static let layout = StampLayout(timeKey: prefix, seqKey: seqKey, pubKey: pubKey, padKey: padKey, suffix: suffix)

    /// The smallest size that holds these numbers (fixed overhead plus digits).
    public static func minimumSize(time: UInt64, seq: UInt64, publisher: Int) -> Int {
        layout.minimumSize(time: time, seq: seq, publisher: publisher)
    }

    /// The smallest --size accepted: room for 17-digit timestamps, 10-digit sequences, 5-digit ids.
    public static let minimumSupportedSize = layout.minimumSupportedSize

    @inline(__always)
    static func digits(_ v: UInt64) -> Int {
        var n = 1
        var x = v
        while x >= 10 { x /= 10; n += 1 }
        return n
    }

    /// Writes the payload into `out` (exactly `size` bytes, `size` >= minimumSize).
    public static func encode(
        time: UInt64, seq: UInt64, publisher: Int, size: Int, into out: UnsafeMutableRawBufferPointer
    ) {
        layout.encode(time: time, seq: seq, publisher: publisher, size: size, into: out)
    }

    public static func encode(time: UInt64, seq: UInt64, publisher: Int, size: Int) -> [UInt8] {
        var a = [UInt8](repeating: 0, count: size)
        a.withUnsafeMutableBytes { encode(time: time, seq: seq, publisher: publisher, size: size, into: $0) }
        return a
    }

    public struct Fields: Equatable, Sendable {
        public var time: UInt64
        public var seq: UInt64
        public var publisher: Int
    }

    /// The value of eight ASCII digits at `p`, or nil if any of the bytes is not a digit.
    /// (SWAR: all eight checked and combined in a handful of 64-bit operations.)
    @inline(__always)
    static func eightDigits(_ p: UnsafeRawPointer) -> UInt64? {
        let x = UInt64(littleEndian: p.loadUnaligned(as: UInt64.self))
        let digits = x &- 0x3030_3030_3030_3030  // a byte below '0' borrows into its top bit
        let aboveNine = x &+ 0x4646_4646_4646_4646  // a byte above '9' carries into its top bit
        guard (digits | aboveNine) & 0x8080_8080_8080_8080 == 0 else { return nil }
        // Pairs, then quads, then all eight (the first byte is the most significant digit).
        let pairs = (digits &* 10) &+ (digits >> 8)
        let low = (pairs & 0x0000_00FF_0000_00FF) &* (100 &+ (1_000_000 << 32))
        let high = ((pairs >> 16) & 0x0000_00FF_0000_00FF) &* (1 &+ (10_000 << 32))
        return (low &+ high) >> 32
    }

    /// Reads the three numbers back; nil if the bytes are not a benchmark payload.
    @inline(__always)
    public static func decode(_ b: UnsafeRawBufferPointer) -> Fields? {
        var pos = 5
        guard b.count > 24, b[0] == 0x7B, b[1] == 0x22, b[2] == 0x74 else { return nil }
        let base = b.baseAddress!
        @inline(__always) func number() -> UInt64? {
            var v: UInt64 = 0
            let start = pos
            // Eight digits at a time while they last (a 17-digit timestamp is two steps and one
            // digit): the digit-by-digit loop is a serial multiply chain, ~10 % of a delivery.
            while pos + 8 <= b.count, let eight = eightDigits(base + pos) {
                v = v &* 100_000_000 &+ eight
                pos += 8
            }
            while pos < b.count {
                let digit = base.load(fromByteOffset: pos, as: UInt8.self) &- 48  // non-digits wrap above 9
                if digit > 9 { break }
                v = v &* 10 &+ UInt64(digit)
                pos += 1
            }
            return pos > start ? v : nil
        }
        guard let t = number() else { return nil }
        pos += 5
        guard let s = number() else { return nil }
        pos += 5
        guard let p = number() else { return nil }
        return Fields(time: t, seq: s, publisher: Int(p))
    }
}

/// Where the three numbers and the prose padding go in a payload: the one writer behind both the
/// raw JSON payload and the Socket.IO chat content.
struct StampLayout: Sendable {
    let timeKey: [UInt8]
    let seqKey: [UInt8]
    let pubKey: [UInt8]
    let padKey: [UInt8]
    let suffix: [UInt8]

    var fixedCount: Int { timeKey.count + seqKey.count + pubKey.count + padKey.count + suffix.count }

    func minimumSize(time: UInt64, seq: UInt64, publisher: Int) -> Int {
        fixedCount + Payload.digits(time) + Payload.digits(seq) + Payload.digits(UInt64(publisher))
    }

    /// Room for 17-digit timestamps, 10-digit sequences, 5-digit publisher ids.
    var minimumSupportedSize: Int { fixedCount + 17 + 10 + 5 }

    /// Writes exactly `size` bytes into `out`.
    func encode(time: UInt64, seq: UInt64, publisher: Int, size: Int, into out: UnsafeMutableRawBufferPointer) {
        precondition(out.count >= size && size >= minimumSize(time: time, seq: seq, publisher: publisher))
        var pos = 0
        @inline(__always) func put(_ bytes: [UInt8]) {
            for b in bytes { out[pos] = b; pos += 1 }
        }
        @inline(__always) func putNumber(_ v: UInt64) {
            let n = Payload.digits(v)
            var x = v
            var i = n - 1
            while i >= 0 { out[pos + i] = UInt8(48 + x % 10); x /= 10; i -= 1 }
            pos += n
        }
        put(timeKey); putNumber(time)
        put(seqKey); putNumber(seq)
        put(pubKey); putNumber(UInt64(publisher))
        put(padKey)
        let padCount = size - pos - suffix.count
        let prose = Payload.prose
        let start = Int(seq % UInt64(prose.count))
        for i in 0..<padCount { out[pos + i] = prose[(start + i) % prose.count] }
        pos += padCount
        put(suffix)
    }
}
