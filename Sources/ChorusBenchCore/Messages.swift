import CZlib

/// Raw-deflate inflater for permessage-deflate (RFC 7692): appends the 00 00 FF FF tail per message.
public final class Inflater {
    @exclusivity(unchecked) var stream = z_stream()
    @exclusivity(unchecked) public var resetPerMessage: Bool
    @exclusivity(unchecked) var output: [UInt8] = [UInt8](repeating: 0, count: 64 * 1024)
    static let tail: [UInt8] = [0x00, 0x00, 0xFF, 0xFF]

    public enum Failure: Error { case zlib(Int32) }

    public init(resetPerMessage: Bool) throws(Failure) {
        self.resetPerMessage = resetPerMessage
        let rc = inflateInit2_(&stream, -15, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        if rc != Z_OK { throw .zlib(rc) }
    }

    deinit { inflateEnd(&stream) }

    /// Inflates one whole message and calls `body` with the plain bytes.
    public func inflate<R>(_ input: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        var produced = 0
        try feed(input, &produced)
        try Self.tail.withUnsafeBytes { try feed($0, &produced) }
        if resetPerMessage { inflateReset(&stream) }
        return try output.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[0..<produced])) }
    }

    private func feed(_ input: UnsafeRawBufferPointer, _ produced: inout Int) throws {
        guard input.count > 0 else { return }
        stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress!.assumingMemoryBound(to: Bytef.self))
        stream.avail_in = uInt(input.count)
        while true {
            if produced == output.count { output.append(contentsOf: [UInt8](repeating: 0, count: output.count)) }
            let room = output.count - produced
            let rc: Int32 = output.withUnsafeMutableBytes { out in
                stream.next_out = out.baseAddress!.advanced(by: produced).assumingMemoryBound(to: Bytef.self)
                stream.avail_out = uInt(room)
                return CZlib.inflate(&stream, Z_SYNC_FLUSH)
            }
            produced += room - Int(stream.avail_out)
            if rc == Z_BUF_ERROR && stream.avail_in == 0 { break }
            if rc != Z_OK && rc != Z_STREAM_END { throw Failure.zlib(rc) }
            if stream.avail_in == 0 && stream.avail_out > 0 { break }
        }
        stream.next_in = nil
    }
}

/// A complete data message (after reassembly and inflation).
public struct Message {
    public var opcode: Opcode
    public var payload: UnsafeRawBufferPointer
    /// Frame bytes on the wire (headers + possibly compressed payload).
    public var wireLength: Int
    public var compressed: Bool
}

/// Frames to messages: reassembles fragments, inflates RSV1 messages, surfaces control frames.
public struct MessageReader {
    public var parser: FrameParser
    public var inflater: Inflater?
    var fragments: [UInt8] = []
    var fragmentOpcode: UInt8 = 0
    var fragmentWire = 0
    var fragmentCompressed = false
    var inFragment = false

    public enum Event {
        case message(Message)
        case ping(UnsafeRawBufferPointer)
        case pong
        case close(code: UInt16)
    }

    public init(inflater: Inflater? = nil, expectMasked: Bool = false) {
        parser = FrameParser(expectMasked: expectMasked)
        self.inflater = inflater
        parser.allowRSV1 = inflater != nil
    }

    public mutating func feed(_ input: UnsafeRawBufferPointer, _ onEvent: (Event) throws -> Void) throws {
        let inflater = self.inflater
        var fragments = self.fragments
        var state = (inFragment, fragmentOpcode, fragmentWire, fragmentCompressed)
        self.fragments = []
        defer {
            self.fragments = fragments
            (inFragment, fragmentOpcode, fragmentWire, fragmentCompressed) = state
        }
        try parser.feed(input) { frame in
            switch frame.opcode {
            case 8:
                var code: UInt16 = 1005
                if frame.payload.count >= 2 { code = UInt16(frame.payload[0]) << 8 | UInt16(frame.payload[1]) }
                try onEvent(.close(code: code))
            case 9: try onEvent(.ping(frame.payload))
            case 10: try onEvent(.pong)
            case 0:
                guard state.0 else { throw FrameError.badContinuation }
                if frame.rsv1 { throw FrameError.reservedBits }
                fragments.append(contentsOf: frame.payload)
                state.2 += frame.wireLength
                if frame.fin {
                    state.0 = false
                    try fragments.withUnsafeBytes { buf in
                        try Self.deliver(
                            opcode: state.1, payload: buf, wire: state.2, compressed: state.3, inflater, onEvent)
                    }
                    fragments.removeAll(keepingCapacity: true)
                }
            default:
                if state.0 { throw FrameError.badContinuation }
                if frame.rsv1 && inflater == nil { throw FrameError.reservedBits }
                if frame.fin {
                    try Self.deliver(
                        opcode: frame.opcode, payload: frame.payload, wire: frame.wireLength, compressed: frame.rsv1,
                        inflater, onEvent)
                } else {
                    state = (true, frame.opcode, frame.wireLength, frame.rsv1)
                    fragments.append(contentsOf: frame.payload)
                }
            }
        }
    }

    static func deliver(
        opcode: UInt8, payload: UnsafeRawBufferPointer, wire: Int, compressed: Bool, _ inflater: Inflater?,
        _ onEvent: (Event) throws -> Void
    ) throws {
        let op: Opcode = opcode == 2 ? .binary : .text
        if compressed, let inflater {
            try inflater.inflate(payload) { plain in
                try onEvent(.message(Message(opcode: op, payload: plain, wireLength: wire, compressed: true)))
            }
        } else {
            try onEvent(.message(Message(opcode: op, payload: payload, wireLength: wire, compressed: false)))
        }
    }
}
