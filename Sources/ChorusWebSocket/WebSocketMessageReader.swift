#if canImport(ChorusUTF8)
// scripts/fuzz.sh compiles this file and UTF8Validator.swift into one module, without ChorusUTF8.
import ChorusUTF8
#endif

/// Per-connection, server-side frame parser + message assembler (pure state machine).
///
/// It works on the caller's read buffer: frames are unmasked in place and an
/// unfragmented, uncompressed message is handed out as a slice of that buffer,
/// so the steady state allocates nothing. Every rule that can be judged from a
/// frame header (RFC 6455 §5.2-§5.5) is judged as soon as the header bytes are
/// there, before the payload arrives.
///
/// Text is also judged before its frame is complete (§8.1 "fail fast", Autobahn
/// 6.4.x): when a text frame's payload is only partly there, the bytes that are
/// there are unmasked in place and fed to the message's UTF-8 validator, so a
/// bad byte fails the connection (1007) as soon as it arrives. That relies on
/// the caller's contract: the unconsumed tail of one `read` buffer (a partial
/// frame) comes back, byte for byte as the reader left it, at the start of the
/// next buffer. The reader remembers how far into that frame's payload it got
/// (an offset, never a pointer: the next buffer may be elsewhere) and neither
/// unmasks nor validates those bytes again.
public struct WebSocketMessageReader {
    public enum Event {
        /// A complete message, UTF-8 validated, inflated if it was compressed.
        case text(UnsafeRawBufferPointer)
        case binary(UnsafeRawBufferPointer)
        case ping(UnsafeRawBufferPointer)
        case pong(UnsafeRawBufferPointer)
        /// Validated (§5.5.1, §7.4): nil code for an empty payload.
        case close(code: WebSocketCloseCode?, reason: UnsafeRawBufferPointer)
    }

    /// Largest message (after inflation) accepted; larger ones fail with 1009 (§7.4.1). May change
    /// between calls to `read` (a lower limit until a client has authenticated).
    public var maxMessageSize: Int
    @usableFromInline let inflater: (any WebSocketInflater)?

    // Word-sized fields first, then the small ones: every open connection holds a reader, and
    // this order saves 16 bytes of padding on each.
    /// Fragmented or compressed messages are assembled here; keeps its capacity between messages.
    @usableFromInline var assembly: [UInt8] = []
    /// Payload bytes of the partial text frame at the start of the next buffer that are
    /// already unmasked in place and fed to `utf8` (the mask phase is this & 3); 0 otherwise.
    @usableFromInline var partialPayloadDone = 0
    @usableFromInline var pendingFrameSize: Int? = nil
    /// Opcode (text/binary) of the message being assembled, nil between messages.
    @usableFromInline var messageOpcode: WebSocketOpcode? = nil
    @usableFromInline var messageCompressed = false
    @usableFromInline var utf8 = UTF8Validator()

    /// Past this, the assembly buffer is released after a message so one huge
    /// message does not pin memory for the life of the connection.
    @usableFromInline static var retainedAssemblyCapacity: Int { 64 * 1024 }

    public init(maxMessageSize: Int, inflater: (any WebSocketInflater)? = nil) {
        precondition(maxMessageSize >= 0)
        self.maxMessageSize = maxMessageSize
        self.inflater = inflater
    }

    /// After `read` returned with a partial frame: the total bytes the current frame needs
    /// (header + payload) if known, so the caller can grow its read buffer; nil if the header is incomplete.
    public var bytesNeededForCurrentFrame: Int? { pendingFrameSize }

    /// True while a fragmented (or compressed) message is being assembled.
    public var isAssemblingMessage: Bool { messageOpcode != nil }

    /// Parses every complete frame in `buffer` (client frames: must be masked, else 1002), unmasking in place.
    /// Calls `onEvent` per event; if it returns false, parsing stops right after that frame.
    /// Returns the number of bytes consumed; a trailing partial frame is left for the next call,
    /// which must get it back first in its buffer, as this call left it: the available payload of a
    /// partial uncompressed text frame is already unmasked in place and UTF-8 checked (1007 at once).
    @inlinable
    public mutating func read(
        _ buffer: UnsafeMutableRawBufferPointer, onEvent: (Event) -> Bool
    ) throws(WebSocketProtocolError) -> Int {
        pendingFrameSize = nil
        guard let base = buffer.baseAddress else { return 0 }
        let count = buffer.count
        var offset = 0
        while count &- offset >= 2 {
            let p = base + offset
            let available = count &- offset
            let b0 = p.load(as: UInt8.self)
            let b1 = p.load(fromByteOffset: 1, as: UInt8.self)
            let fin = b0 & 0x80 != 0
            let rsv1 = b0 & 0x40 != 0
            // §5.2: RSV2/RSV3 have no meaning without an extension; we negotiate none that uses them.
            if b0 & 0x30 != 0 { throw .reservedBits }
            guard let opcode = WebSocketOpcode(rawValue: b0 & 0x0F) else {
                throw .reservedOpcode
            }
            // §5.1: the server must close the connection on an unmasked client frame.
            if b1 & 0x80 == 0 { throw .unmaskedFrame }
            let len7 = Int(b1 & 0x7F)
            if opcode.isControl {
                // §5.5: control frames are never fragmented and carry at most 125 bytes.
                if !fin { throw .fragmentedControlFrame }
                if len7 > 125 { throw .controlFrameTooLong }
                // RFC 7692 §6: RSV1 marks compressed *messages*; control frames are never compressed.
                if rsv1 { throw .compressedControlFrame }
            } else {
                try checkDataFrameStart(opcode: opcode, rsv1: rsv1)
            }
            let extra = len7 == 126 ? 2 : (len7 == 127 ? 8 : 0)
            if available < 2 &+ extra { break }
            let payloadLength: Int
            if len7 == 126 {
                payloadLength = Int(UInt16(bigEndian: p.loadUnaligned(fromByteOffset: 2, as: UInt16.self)))
            } else if len7 == 127 {
                let l = UInt64(bigEndian: p.loadUnaligned(fromByteOffset: 2, as: UInt64.self))
                // §5.2: "the most significant bit MUST be 0".
                if l >> 63 != 0 { throw .payloadLengthHighBit }
                payloadLength = Int(l)
            } else {
                payloadLength = len7
            }
            if !opcode.isControl { try checkDataFrameSize(opcode: opcode, rsv1: rsv1, payloadLength: payloadLength) }
            let headerLength = 2 &+ extra &+ 4
            if available < headerLength { break }
            let frameLength = headerLength &+ payloadLength
            let key = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 2 &+ extra, as: UInt32.self))
            // Payload bytes already unmasked and validated by an earlier call: only ever for
            // the frame at the start of the buffer, the one a previous call left partial.
            let done = offset == 0 ? partialPayloadDone : 0
            if available < frameLength {
                pendingFrameSize = frameLength
                if isPartialText(opcode: opcode, rsv1: rsv1) {
                    let have = available &- headerLength
                    if have > done {
                        if done == 0 && opcode == .text { utf8.reset() }  // a new message's first bytes
                        let chunk = UnsafeMutableRawBufferPointer(
                            start: p + (headerLength &+ done), count: have &- done)
                        _ = WebSocketMasking.unmask(chunk, key: key, phase: done)
                        partialPayloadDone = have
                        if !utf8.feed(UnsafeRawBufferPointer(chunk)) {
                            throw .invalidUTF8
                        }
                    }
                }
                break
            }
            partialPayloadDone = 0
            let payload = UnsafeMutableRawBufferPointer(start: p + headerLength, count: payloadLength)
            _ = WebSocketMasking.unmask(
                UnsafeMutableRawBufferPointer(rebasing: payload[done...]), key: key, phase: done)
            offset &+= frameLength
            let proceed: Bool
            switch opcode {
            case .ping: proceed = onEvent(.ping(UnsafeRawBufferPointer(payload)))
            case .pong: proceed = onEvent(.pong(UnsafeRawBufferPointer(payload)))
            case .close: proceed = try closeFrame(UnsafeRawBufferPointer(payload), onEvent: onEvent)
            case .text, .binary, .continuation:
                proceed = try dataFrame(
                    opcode: opcode, fin: fin, rsv1: rsv1, payload: UnsafeRawBufferPointer(payload), validated: done,
                    onEvent: onEvent)
            }
            if !proceed { break }
        }
        return offset
    }

    /// Whether a data frame is (part of) an uncompressed text message, whose payload
    /// is validated as it arrives. Compressed payload is only judged once inflated.
    @inlinable
    func isPartialText(opcode: WebSocketOpcode, rsv1: Bool) -> Bool {
        switch opcode {
        case .text: return !rsv1
        case .continuation: return messageOpcode == .text && !messageCompressed
        default: return false
        }
    }

    /// §5.4: fragments of one message are not interleaved with another message's.
    @inlinable
    func checkDataFrameStart(opcode: WebSocketOpcode, rsv1: Bool) throws(WebSocketProtocolError) {
        if opcode == .continuation {
            if messageOpcode == nil { throw .continuationWithoutMessage }
            // RFC 7692 §6.1: RSV1 only on the first frame of a compressed message.
            if rsv1 { throw .compressedContinuation }
        } else {
            if messageOpcode != nil { throw .interleavedMessage }
            if rsv1 && inflater == nil { throw .compressionNotNegotiated }
        }
    }

    /// §10.4: limit the message size, and decide it from the header alone.
    @inlinable
    func checkDataFrameSize(opcode: WebSocketOpcode, rsv1: Bool, payloadLength: Int) throws(WebSocketProtocolError) {
        let compressed = opcode == .continuation ? messageCompressed : rsv1
        if compressed {
            // The inflated size is checked by the inflater; the raw frame still has to fit the
            // caller's buffer. Deflate can expand incompressible data slightly, hence the slack.
            let slack = maxMessageSize / 8 &+ 1024
            let limit = maxMessageSize > Int.max - slack ? Int.max : maxMessageSize + slack
            if payloadLength > limit { throw .compressedFrameTooBig }
        } else {
            let already = opcode == .continuation ? assembly.count : 0
            if payloadLength > maxMessageSize &- already { throw .messageTooBig }
        }
    }

    /// §5.5.1: an optional 2-byte code then a UTF-8 reason.
    @inlinable
    func closeFrame(_ payload: UnsafeRawBufferPointer, onEvent: (Event) -> Bool) throws(WebSocketProtocolError) -> Bool
    {
        if payload.count == 0 {
            return onEvent(.close(code: nil, reason: payload))
        }
        if payload.count == 1 { throw .oneByteClosePayload }
        let code = WebSocketCloseCode(rawValue: UInt16(payload[0]) << 8 | UInt16(payload[1]))
        // §7.4.1: 1005/1006/1015 and unassigned ranges must not appear on the wire.
        if !code.isValidOnWire { throw .invalidCloseCode(code.rawValue) }
        let reason = UnsafeRawBufferPointer(rebasing: payload[2...])
        if !UTF8Validator.validate(reason) { throw .invalidCloseReason }
        return onEvent(.close(code: code, reason: reason))
    }

    /// `validated`: the leading payload bytes already fed to `utf8` while the frame was partial
    /// (only ever non-zero for uncompressed text).
    @inlinable
    mutating func dataFrame(
        opcode: WebSocketOpcode, fin: Bool, rsv1: Bool, payload: UnsafeRawBufferPointer, validated: Int,
        onEvent: (Event) -> Bool
    ) throws(WebSocketProtocolError) -> Bool {
        let unvalidated = UnsafeRawBufferPointer(rebasing: payload[validated...])
        if opcode != .continuation {
            if validated == 0 { utf8.reset() }
            if fin && !rsv1 {
                // The common case: a whole message in one frame, delivered from the read buffer.
                // §8.1: text must be valid UTF-8, else fail with 1007.
                if opcode == .text {
                    if !utf8.feed(unvalidated) || !utf8.isComplete {
                        throw .invalidUTF8
                    }
                    return onEvent(.text(payload))
                }
                return onEvent(.binary(payload))
            }
            messageOpcode = opcode
            messageCompressed = rsv1
        }
        let isText = messageOpcode == .text
        if messageCompressed {
            let before = assembly.count
            do throws(WebSocketInflateError) {
                try inflater!.inflate(payload, isFinal: fin, into: &assembly, limit: maxMessageSize)
            } catch {
                switch error {
                case .messageTooBig: throw .inflatedMessageTooBig
                case .corrupt: throw .invalidCompressedData
                }
            }
            if assembly.count > maxMessageSize { throw .inflatedMessageTooBig }
            if isText {
                var v = utf8
                let ok = assembly.withUnsafeBytes { v.feed(UnsafeRawBufferPointer(rebasing: $0[before...])) }
                utf8 = v
                if !ok { throw .invalidUTF8 }
            }
        } else {
            // Fail fast (§8.1, Autobahn 6.x): judge each fragment as it arrives.
            if isText && !utf8.feed(unvalidated) { throw .invalidUTF8 }
            if payload.count > 0 {
                assembly.append(
                    contentsOf: UnsafeBufferPointer(
                        start: payload.baseAddress!.assumingMemoryBound(to: UInt8.self), count: payload.count))
            }
        }
        guard fin else { return true }
        if isText && !utf8.isComplete { throw .truncatedUTF8 }
        let proceed = assembly.withUnsafeBytes { isText ? onEvent(.text($0)) : onEvent(.binary($0)) }
        messageOpcode = nil
        messageCompressed = false
        if assembly.capacity > Self.retainedAssemblyCapacity {
            assembly = []
        } else {
            assembly.removeAll(keepingCapacity: true)
        }
        return proceed
    }
}
