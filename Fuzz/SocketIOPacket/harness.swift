// libFuzzer harness: Engine.IO and Socket.IO packets (scripts/fuzz.sh SocketIOPacket SECONDS).
//
// Properties: decode → encode → decode gives the same packet, for Engine.IO text packets and
// for Socket.IO packets (binary ones with their attachments); and what the decoder accepts
// encodes to text the decoder accepts. Byte 0 picks the layer; the rest is one text frame.
//
// On the Engine.IO side the server's per-message fast path, `messagePayload(ofText:)` (a slice of
// the frame, no copy), must agree with the general decoder: a payload exactly when the decoder
// says `.message`, with the same bytes, in the frame's own memory. The other entry points agree
// with `decode(text:)` too: the String overload, `encode()` (the frame the server sends), a binary
// frame (always a binary message, its bytes unchanged).

/// Engine.IO's fast path and its other entry points against `decode(text:)`.
func checkEngineIOEntryPoints(_ text: UnsafeRawBufferPointer, decoded: Result<EngineIOPacket, EngineIOError>) {
    let fast = EngineIOPacket.messagePayload(ofText: text)
    switch decoded {
    case .success(.message(let data)):
        guard let fast else { preconditionFailure("messagePayload(ofText:) nil for a message packet") }
        precondition(Array(fast) == data, "messagePayload(ofText:) \(Array(fast)) != decoded \(data)")
        precondition(
            fast.baseAddress == text.baseAddress! + 1 && fast.count == text.count - 1, "fast path copied or moved")
    default:
        precondition(fast == nil, "messagePayload(ofText:) gave a payload for \(decoded)")
    }
    if let string = String(validating: text, as: UTF8.self) {
        let viaString = Result { () throws(EngineIOError) in try EngineIOPacket.decode(text: string) }
        precondition(viaString == decoded, "decode(text: String) \(viaString) != \(decoded)")
    }
    let bytes = Array(text)
    let binary = EngineIOPacket.decode(binary: bytes)
    precondition(binary == .binaryMessage(bytes) && binary.encode() == .binary(bytes), "binary frame round trip")
    var raw: [UInt8] = []
    binary.encodeText(into: &raw)
    precondition(raw == bytes, "a binary message's encodeText is its raw bytes")
    guard case .success(let packet) = decoded else { return }
    var encoded: [UInt8] = []
    packet.encodeText(into: &encoded)
    precondition(packet.encode() == .text(encoded), "encode() differs from encodeText")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 1 else { return 0 }
    let text = UnsafeRawBufferPointer(start: data + 1, count: size - 1)
    if data[0] & 1 == 0 {
        let decoded = Result { () throws(EngineIOError) in try EngineIOPacket.decode(text: text) }
        checkEngineIOEntryPoints(text, decoded: decoded)
        guard case .success(let packet) = decoded else { return 0 }
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
