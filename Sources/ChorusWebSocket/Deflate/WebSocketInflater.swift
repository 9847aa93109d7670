/// Hook for RFC 7692: the message reader calls it for compressed messages (RSV1 set on the first frame).
public protocol WebSocketInflater: AnyObject {
    /// Inflate one frame's payload of a compressed message, appending to `output`. When `isFinal`, the implementation appends the 00 00 FF FF tail itself. Throws .messageTooBig before `output.count` would exceed `limit`, .corrupt on bad data.
    func inflate(_ input: UnsafeRawBufferPointer, isFinal: Bool, into output: inout [UInt8], limit: Int)
        throws(WebSocketInflateError)
}
public enum WebSocketInflateError: Error, Sendable { case messageTooBig, corrupt }
