/// Connection state recovery's private session id as a socket keeps it: the 15 bytes that a
/// 20-character base64url id encodes, inline, and its text only when it is needed (the CONNECT
/// reply, a disconnect that saves the session): a 20-character String is a 64-byte heap block per
/// socket. Ids of another shape (another server's, restored from the cluster) are kept as text.
enum PrivateSessionID {
    /// Bytes 0–7 big-endian, then 8–11, 12–13 and 14: 15 bytes, so that with the text case (a
    /// boxed String) and the optional around it the whole is 16 bytes, not 24.
    case packed(UInt64, UInt32, UInt16, UInt8)
    case text(Text)

    final class Text {
        let value: String
        init(_ value: String) { self.value = value }
    }

    init(_ string: String) {
        var words: (UInt64, UInt64) = (0, 0)
        var bits = 0  // bits decoded so far, of 120
        for c in string.utf8 {
            guard bits < 120, let value = Self.value(of: c) else {
                self = .text(Text(string))
                return
            }
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
        guard bits == 120 else {
            self = .text(Text(string))
            return
        }
        self = .packed(
            words.0, UInt32(truncatingIfNeeded: words.1 >> 32), UInt16(truncatingIfNeeded: words.1 >> 16),
            UInt8(truncatingIfNeeded: words.1 >> 8))
    }

    var string: String {
        switch self {
        case .text(let text):
            return text.value
        case .packed(let high, let a, let b, let c):
            let low = UInt64(a) << 32 | UInt64(b) << 16 | UInt64(c) << 8
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
