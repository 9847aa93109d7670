// libFuzzer harness: Engine.IO and Socket.IO packets (scripts/fuzz.sh SocketIOPacket SECONDS).
//
// Properties: decode → encode → decode gives the same packet, for Engine.IO text packets and
// for Socket.IO packets (binary ones with their attachments); and what the decoder accepts
// encodes to text the decoder accepts. Byte 0 picks the layer; the rest is one text frame.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 1 else { return 0 }
    let text = UnsafeRawBufferPointer(start: data + 1, count: size - 1)
    if data[0] & 1 == 0 {
        guard let packet = try? EngineIOPacket.decode(text: text) else { return 0 }
        var encoded: [UInt8] = []
        packet.encodeText(into: &encoded)
        let again: EngineIOPacket
        do { again = try EngineIOPacket.decode(text: encoded) } catch {
            preconditionFailure("re-encoded Engine.IO packet refused: \(error) \(encoded)")
        }
        precondition(again == packet, "Engine.IO round trip: \(packet) != \(again)")
        return 0
    }
    var decoder = SocketIODecoder()
    var packet: SocketIOPacket?
    do {
        packet = try decoder.decode(text: text)
        // A binary packet: feed distinct attachments until it is complete.
        var n: UInt8 = 0
        while packet == nil && n < 20 {
            packet = try decoder.decode(binary: [n, n &* 7, 0xFF])
            n += 1
        }
    } catch {
        return 0
    }
    guard let packet else { return 0 }
    let (encoded, attachments) = packet.encode()
    var redecoder = SocketIODecoder()
    var again: SocketIOPacket?
    do {
        again = try redecoder.decode(text: encoded)
        for a in attachments where again == nil { again = try redecoder.decode(binary: a) }
    } catch {
        preconditionFailure("re-encoded Socket.IO packet refused: \(error) \(String(decoding: encoded, as: UTF8.self))")
    }
    precondition(again == packet, "Socket.IO round trip: \(packet) != \(String(describing: again))")
    return 0
}
