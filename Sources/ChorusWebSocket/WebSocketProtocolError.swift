/// A reason to fail the connection (RFC 6455 §7.1.7). Each case is one rule the peer broke; the
/// close code and the reason text it gets are decided here, in one switch each, not where the
/// reader notices the fault. Built only on the failure path: a throw carries a case (at most a
/// `UInt16`), and the reason's text is made only when the server writes the close frame.
public enum WebSocketProtocolError: Error, Sendable, Equatable, CustomStringConvertible {
    // 1002, a frame the rules of §5 forbid.
    /// §5.2: RSV2 or RSV3 set (no negotiated extension uses them).
    case reservedBits
    /// §5.2: opcode 0x3-0x7 or 0xB-0xF.
    case reservedOpcode
    /// §5.1: every client frame is masked.
    case unmaskedFrame
    /// §5.5: control frames are never fragmented.
    case fragmentedControlFrame
    /// §5.5: control frames carry at most 125 bytes.
    case controlFrameTooLong
    /// RFC 7692 §6: RSV1 marks compressed messages; control frames are never compressed.
    case compressedControlFrame
    /// §5.2: the most significant bit of a 64-bit length must be 0.
    case payloadLengthHighBit
    /// §5.4: a continuation frame needs a fragmented message to continue.
    case continuationWithoutMessage
    /// RFC 7692 §6.1: RSV1 only on the first frame of a compressed message.
    case compressedContinuation
    /// §5.4: fragments of one message are not interleaved with another message's.
    case interleavedMessage
    /// RFC 7692 §6: RSV1 on a data frame of a connection without permessage-deflate.
    case compressionNotNegotiated
    /// §5.5.1: a close payload is empty or starts with a 2-byte code.
    case oneByteClosePayload
    /// §7.4.1: 1005/1006/1015 and the unassigned ranges never appear on the wire.
    case invalidCloseCode(UInt16)

    // 1007, data that is not what its message type says (§8.1).
    /// A text message's bytes are not UTF-8.
    case invalidUTF8
    /// A text message ends inside a multi-byte UTF-8 sequence.
    case truncatedUTF8
    /// §5.5.1: a close frame's reason is UTF-8.
    case invalidCloseReason
    /// RFC 7692: the compressed payload is not a valid DEFLATE stream.
    case invalidCompressedData

    // 1009, over the configured `maxMessageSize` (§10.4).
    /// An uncompressed message, judged from its frame headers.
    case messageTooBig
    /// A compressed frame larger than any message within the limit could deflate to.
    case compressedFrameTooBig
    /// A compressed message whose inflated size passes the limit.
    case inflatedMessageTooBig

    /// The close code the server sends (§7.4.1).
    public var closeCode: WebSocketCloseCode {
        switch self {
        case .reservedBits, .reservedOpcode, .unmaskedFrame, .fragmentedControlFrame, .controlFrameTooLong,
            .compressedControlFrame, .payloadLengthHighBit, .continuationWithoutMessage, .compressedContinuation,
            .interleavedMessage, .compressionNotNegotiated, .oneByteClosePayload, .invalidCloseCode:
            .protocolError
        case .invalidUTF8, .truncatedUTF8, .invalidCloseReason, .invalidCompressedData:
            .invalidPayloadData
        case .messageTooBig, .compressedFrameTooBig, .inflatedMessageTooBig:
            .messageTooBig
        }
    }

    /// The close frame's reason, for the peer and the log (at most 123 bytes, §5.5: it shares the
    /// control frame's 125 with the code).
    public var reason: String {
        switch self {
        case .reservedBits: "reserved bits set"
        case .reservedOpcode: "reserved opcode"
        case .unmaskedFrame: "client frame not masked"
        case .fragmentedControlFrame: "fragmented control frame"
        case .controlFrameTooLong: "control frame payload over 125 bytes"
        case .compressedControlFrame: "RSV1 set on a control frame"
        case .payloadLengthHighBit: "64-bit payload length with the high bit set"
        case .continuationWithoutMessage: "continuation frame without a message in progress"
        case .compressedContinuation: "RSV1 set on a continuation frame"
        case .interleavedMessage: "new data frame while a fragmented message is in progress"
        case .compressionNotNegotiated: "RSV1 set without a negotiated extension"
        case .oneByteClosePayload: "close frame with a 1-byte payload"
        case .invalidCloseCode(let code): "invalid close code \(code)"
        case .invalidUTF8: "invalid UTF-8 in text message"
        case .truncatedUTF8: "text message ends inside a UTF-8 sequence"
        case .invalidCloseReason: "close reason is not valid UTF-8"
        case .invalidCompressedData: "invalid compressed data"
        case .messageTooBig: "message too big"
        case .compressedFrameTooBig: "compressed frame too big"
        case .inflatedMessageTooBig: "inflated message too big"
        }
    }

    public var description: String { "\(closeCode.rawValue) \(reason)" }
}
