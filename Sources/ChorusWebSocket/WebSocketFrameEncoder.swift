/// Frame encoding (RFC 6455 §5.2). Servers must not mask (§5.1), so the
/// header is 2, 4 or 10 bytes depending only on the payload length.
public enum WebSocketFrameEncoder {
    /// The largest unmasked (server) header: 2 bytes + 64-bit extended length.
    public static let maxHeaderSize: Int = 10

    /// §5.2: 7-bit length up to 125, 126 + 16-bit length up to 65535, else 127 + 64-bit length.
    @inlinable
    public static func headerSize(payloadLength: Int) -> Int {
        payloadLength <= 125 ? 2 : (payloadLength <= 0xFFFF ? 4 : 10)
    }

    /// Writes an unmasked (server) frame header at `p`; returns bytes written (2, 4 or 10).
    @inlinable
    public static func writeHeader(
        to p: UnsafeMutableRawPointer, opcode: WebSocketOpcode, fin: Bool = true, rsv1: Bool = false,
        payloadLength: Int
    ) -> Int {
        writeHeader(to: p, opcode: opcode, fin: fin, rsv1: rsv1, masked: false, payloadLength: payloadLength)
    }

    @inlinable
    static func writeHeader(
        to p: UnsafeMutableRawPointer, opcode: WebSocketOpcode, fin: Bool, rsv1: Bool, masked: Bool,
        payloadLength: Int
    ) -> Int {
        precondition(payloadLength >= 0, "negative payload length")
        let b0 = (fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode.rawValue
        let maskBit: UInt8 = masked ? 0x80 : 0
        p.storeBytes(of: b0, as: UInt8.self)
        if payloadLength <= 125 {
            p.storeBytes(of: maskBit | UInt8(truncatingIfNeeded: payloadLength), toByteOffset: 1, as: UInt8.self)
            return 2
        } else if payloadLength <= 0xFFFF {
            p.storeBytes(of: maskBit | 126, toByteOffset: 1, as: UInt8.self)
            p.storeBytes(of: UInt16(truncatingIfNeeded: payloadLength).bigEndian, toByteOffset: 2, as: UInt16.self)
            return 4
        } else {
            p.storeBytes(of: maskBit | 127, toByteOffset: 1, as: UInt8.self)
            p.storeBytes(of: UInt64(payloadLength).bigEndian, toByteOffset: 2, as: UInt64.self)
            return 10
        }
    }

    /// A whole unmasked frame (header + payload) as one array.
    public static func frame(
        opcode: WebSocketOpcode, payload: UnsafeRawBufferPointer, fin: Bool = true, rsv1: Bool = false
    ) -> [UInt8] {
        let total = headerSize(payloadLength: payload.count) + payload.count
        return [UInt8](unsafeUninitializedCapacity: total) { out, initialized in
            let base = UnsafeMutableRawPointer(out.baseAddress!)
            let h = writeHeader(to: base, opcode: opcode, fin: fin, rsv1: rsv1, payloadLength: payload.count)
            if let src = payload.baseAddress, payload.count > 0 {
                (base + h).copyMemory(from: src, byteCount: payload.count)
            }
            initialized = total
        }
    }

    public static func frame(opcode: WebSocketOpcode, payload: [UInt8], fin: Bool = true, rsv1: Bool = false) -> [UInt8]
    {
        payload.withUnsafeBytes { frame(opcode: opcode, payload: $0, fin: fin, rsv1: rsv1) }
    }

    /// Close frame: 2-byte code + UTF-8 reason truncated to fit 125 bytes on a character boundary.
    /// §5.5: control payloads are at most 125 bytes; §5.5.1: the reason must be valid UTF-8,
    /// hence cutting between characters, never inside one.
    public static func closeFrame(code: WebSocketCloseCode, reason: String) -> [UInt8] {
        frame(opcode: .close, payload: closePayload(code: code, reason: reason))
    }

    /// The payload of a close frame (code + reason cut to fit 125 bytes), e.g. for a masked client close.
    public static func closePayload(code: WebSocketCloseCode, reason: String) -> [UInt8] {
        var payload: [UInt8] = [
            UInt8(truncatingIfNeeded: code.rawValue >> 8), UInt8(truncatingIfNeeded: code.rawValue),
        ]
        payload.reserveCapacity(125)
        if reason.utf8.count <= 123 {
            payload.append(contentsOf: reason.utf8)
        } else {
            for ch in reason {
                let u = ch.utf8
                if payload.count + u.count > 125 { break }
                payload.append(contentsOf: u)
            }
        }
        return payload
    }

    /// Client-side (masked) frame, for test clients and the load generator.
    /// `maskKey` holds the 4 key bytes as they go on the wire, loaded little-endian
    /// (the same convention as `WebSocketMasking.unmask`).
    public static func maskedFrame(
        opcode: WebSocketOpcode, payload: UnsafeRawBufferPointer, maskKey: UInt32, fin: Bool = true,
        rsv1: Bool = false
    ) -> [UInt8] {
        let n = payload.count
        let total = headerSize(payloadLength: n) + 4 + n
        return [UInt8](unsafeUninitializedCapacity: total) { out, initialized in
            let base = UnsafeMutableRawPointer(out.baseAddress!)
            var h = writeHeader(to: base, opcode: opcode, fin: fin, rsv1: rsv1, masked: true, payloadLength: n)
            base.storeBytes(of: maskKey.littleEndian, toByteOffset: h, as: UInt32.self)
            h += 4
            if let src = payload.baseAddress, n > 0 {
                (base + h).copyMemory(from: src, byteCount: n)
                _ = WebSocketMasking.unmask(UnsafeMutableRawBufferPointer(start: base + h, count: n), key: maskKey)
            }
            initialized = total
        }
    }

    public static func maskedFrame(
        opcode: WebSocketOpcode, payload: [UInt8], maskKey: UInt32, fin: Bool = true, rsv1: Bool = false
    ) -> [UInt8] {
        payload.withUnsafeBytes { maskedFrame(opcode: opcode, payload: $0, maskKey: maskKey, fin: fin, rsv1: rsv1) }
    }
}
