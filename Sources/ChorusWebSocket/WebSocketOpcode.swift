/// Frame opcodes (RFC 6455 §5.2). 0x3-0x7 and 0xB-0xF are reserved: the reader
/// fails the connection with 1002 on them, so they have no case here.
public enum WebSocketOpcode: UInt8, Sendable {
    case continuation = 0x0
    case text = 0x1
    case binary = 0x2
    case close = 0x8
    case ping = 0x9
    case pong = 0xA

    /// §5.5: control frames are the opcodes with the most significant bit set.
    @inlinable
    public var isControl: Bool { rawValue & 0x8 != 0 }
}
