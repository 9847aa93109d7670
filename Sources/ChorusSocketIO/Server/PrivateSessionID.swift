/// Connection state recovery's private session id as a socket keeps it: the 15 bytes that a
/// 20-character base64url id encodes, inline, and its text only when it is needed (the CONNECT
/// reply, a disconnect that saves the session): a 20-character String is a 64-byte heap block per
/// socket. Ids of another shape (another server's, restored from the cluster) are kept as text.
enum PrivateSessionID: Equatable {
    /// Bytes 0–7 big-endian in the first word, bytes 8–14 in the second's high 56 bits.
    case packed(UInt64, UInt64)
    case text(String)

    init(_ string: String) {
        var words: (UInt64, UInt64) = (0, 0)
        var bits = 0  // bits decoded so far, of 120
        for c in string.utf8 {
            guard bits < 120, let value = Self.value(of: c) else { self = .text(string); return }
            // 6 bits at position `bits` from the top of the 128-bit pair.
            if bits <= 58 {
                words.0 |= UInt64(value) << (58 - bits)
            } else if bits >= 64 {
                words.1 |= UInt64(value) << (122 - bits)
            } else {
                // Straddles the words: the high part ends word 0, the rest starts word 1.
                let inFirst = 64 - bits
                words.0 |= UInt64(value) >> (6 - inFirst)
                words.1 |= UInt64(value) << (58 + inFirst)
            }
            bits += 6
        }
        self = bits == 120 ? .packed(words.0, words.1) : .text(string)
    }

    var string: String {
        switch self {
        case .text(let text):
            return text
        case .packed(let high, let low):
            var raw = [UInt8](repeating: 0, count: 15)
            for i in 0..<8 { raw[i] = UInt8(truncatingIfNeeded: high >> (56 - 8 * i)) }
            for i in 0..<7 { raw[8 + i] = UInt8(truncatingIfNeeded: low >> (56 - 8 * i)) }
            return EngineIOSessionID.encode15(raw)
        }
    }

    private static func value(of c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): c - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): c - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0") + 52
        case UInt8(ascii: "-"): 62
        case UInt8(ascii: "_"): 63
        default: nil
        }
    }
}
