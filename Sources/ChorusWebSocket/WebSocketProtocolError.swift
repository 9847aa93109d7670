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
