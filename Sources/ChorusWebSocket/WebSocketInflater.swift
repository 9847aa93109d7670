/// Hook for RFC 7692 (implemented elsewhere, in Deflate/). The reader calls it for
/// compressed messages (RSV1 set on the first frame, RFC 7692 §6).
public protocol WebSocketInflater: AnyObject {
    /// Inflate one frame's payload of a compressed message, appending to `output`.
    /// When `isFinal`, the implementation appends the 00 00 FF FF tail itself (RFC 7692 §7.2.2).
    /// Throws .messageTooBig before `output.count` would exceed `limit`, .corrupt on bad data.
    func inflate(_ input: UnsafeRawBufferPointer, isFinal: Bool, into output: inout [UInt8], limit: Int)
        throws(WebSocketInflateError)
}

public enum WebSocketInflateError: Error, Sendable {
    case messageTooBig
    case corrupt
}

/// A reason to fail the connection (RFC 6455 §7.1.7), with the close code to send.
public struct WebSocketProtocolError: Error, Sendable, Equatable, CustomStringConvertible {
    public var closeCode: WebSocketCloseCode
    public var reason: String

    public init(closeCode: WebSocketCloseCode, reason: String) {
        self.closeCode = closeCode
        self.reason = reason
    }

    public var description: String { "\(closeCode.rawValue) \(reason)" }
}
