import ChorusDeflate
import ChorusLoop
import ChorusWebSocket

/// One message encoded for the wire exactly once: the plain frame and, when compression is on and
/// the payload is large enough, the compressed (RSV1) frame. Every recipient's queue points at
/// these bytes; nothing is copied or re-encoded per recipient.
public final class OutgoingFrame: Sendable {
    public let plain: SharedBytes
    public let compressed: SharedBytes?
    public let payloadCount: Int

    init(plain: SharedBytes, compressed: SharedBytes?, payloadCount: Int) {
        self.plain = plain
        self.compressed = compressed
        self.payloadCount = payloadCount
    }

    /// Header and payload written in place into one buffer.
    /// From `arena` when given (a loop's own chunks), else a fresh allocation.
    @inlinable
    public static func encode(
        _ opcode: WebSocketOpcode, _ payload: UnsafeRawBufferPointer, rsv1: Bool = false, arena: FrameArena? = nil
    ) -> SharedBytes {
        let header = WebSocketFrameEncoder.headerSize(payloadLength: payload.count)
        let fill = { (out: UnsafeMutableRawBufferPointer) in
            let base = out.baseAddress!
            _ = WebSocketFrameEncoder.writeHeader(to: base, opcode: opcode, rsv1: rsv1, payloadLength: payload.count)
            if payload.count > 0 { (base + header).copyMemory(from: payload.baseAddress!, byteCount: payload.count) }
        }
        if let arena { return arena.make(count: header + payload.count, fill) }
        return SharedBytes.make(count: header + payload.count, fill)
    }

    /// Builds the plain frame and, if `deflater` is given, the compressed one. Each variant comes
    /// from its own arena, so that consecutive emits lie back to back for either kind of recipient.
    static func make(
        _ opcode: WebSocketOpcode, _ payload: UnsafeRawBufferPointer, deflater: PerMessageDeflater?,
        scratch: inout [UInt8], arenas: (plain: FrameArena, compressed: FrameArena)? = nil
    ) -> OutgoingFrame {
        let plain = encode(opcode, payload, arena: arenas?.plain)
        var compressed: SharedBytes?
        if let deflater, !opcode.isControl {
            scratch.removeAll(keepingCapacity: true)
            deflater.compressMessage(payload, into: &scratch)
            // Compression that does not pay for itself is not sent.
            if scratch.count < payload.count {
                compressed = scratch.withUnsafeBytes { encode(opcode, $0, rsv1: true, arena: arenas?.compressed) }
            }
        }
        return OutgoingFrame(plain: plain, compressed: compressed, payloadCount: payload.count)
    }
}

/// Identifies a connection across loops: which loop, which slot, which use of that slot.
public struct ConnectionID: Hashable, Sendable, CustomStringConvertible {
    public let loop: Int32
    public let slot: Int32
    public let generation: UInt32

    public init(loop: Int32, slot: Int32, generation: UInt32) {
        self.loop = loop
        self.slot = slot
        self.generation = generation
    }

    var token: UInt64 { UInt64(UInt32(bitPattern: slot)) | (UInt64(generation) << 32) }

    public var description: String { "\(loop).\(slot).\(generation)" }
}

/// Who receives an emit. Each recipient gets the message once even when in several target rooms.
public struct BroadcastTarget: Sendable {
    /// Empty means every open connection.
    public var rooms: [String]
    public var exceptRooms: [String]
    public var exceptConnection: ConnectionID?

    public init(rooms: [String], exceptRooms: [String] = [], exceptConnection: ConnectionID? = nil) {
        self.rooms = rooms
        self.exceptRooms = exceptRooms
        self.exceptConnection = exceptConnection
    }

    public static let all = BroadcastTarget(rooms: [])
    public static func rooms(_ rooms: [String]) -> BroadcastTarget { BroadcastTarget(rooms: rooms) }

    public func except(_ rooms: [String]) -> BroadcastTarget {
        var copy = self
        copy.exceptRooms += rooms
        return copy
    }

    public func except(_ connection: ConnectionID) -> BroadcastTarget {
        var copy = self
        copy.exceptConnection = connection
        return copy
    }
}
