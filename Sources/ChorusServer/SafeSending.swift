// Safe overloads of the sending API for the layers above (Socket.IO server, applications): the
// borrowed-buffer versions stay for the codecs that encode into scratch buffers; these take an
// array and borrow it here, so that no `Unsafe` type appears above the server layer.
import ChorusWebSocket

extension WebSocketServer {
    /// `makeFrame(_:_:)` from an array: one frame, encoded once, for any number of recipients.
    public func makeFrame(_ opcode: WebSocketOpcode, _ payload: [UInt8]) -> OutgoingFrame {
        payload.withUnsafeBytes { makeFrame(opcode, $0) }
    }
}

extension Connection {
    /// Sends one message from an array (copied into the connection's queue). Loop thread only.
    public func send(_ opcode: WebSocketOpcode, _ payload: [UInt8]) {
        payload.withUnsafeBytes { send(opcode, $0) }
    }
}
