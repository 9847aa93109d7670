import CZlib
import Testing

@testable import ChorusBenchCore

/// Server-style (unmasked) frame bytes.
func serverFrame(_ opcode: UInt8, _ payload: [UInt8], fin: Bool = true, rsv1: Bool = false) -> [UInt8] {
    var out: [UInt8] = [(fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode]
    let n = payload.count
    if n < 126 {
        out.append(UInt8(n))
    } else if n <= 0xFFFF {
        out += [126, UInt8(n >> 8), UInt8(n & 0xFF)]
    } else {
        out.append(127)
        for s in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: UInt64(n) >> UInt64(s))) }
    }
    return out + payload
}

/// Raw deflate of one message with the trailing 00 00 FF FF removed (RFC 7692 §7.2.1).
func deflateMessage(_ input: [UInt8]) -> [UInt8] {
    var stream = z_stream()
    deflateInit2_(
        &stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION,
        Int32(MemoryLayout<z_stream>.size))
    defer { deflateEnd(&stream) }
    var out = [UInt8](repeating: 0, count: input.count + 1024)
    var inCopy = input
    let produced = inCopy.withUnsafeMutableBufferPointer { inp in
        out.withUnsafeMutableBufferPointer { o in
            stream.next_in = inp.baseAddress
            stream.avail_in = uInt(inp.count)
            stream.next_out = o.baseAddress
            stream.avail_out = uInt(o.count)
            deflate(&stream, Z_SYNC_FLUSH)
            return o.count - Int(stream.avail_out)
        }
    }
    return Array(out[0..<(produced - 4)])
}

func collect(_ reader: inout MessageReader, _ input: [UInt8], chunk: Int) throws -> [(String, [UInt8], Int)] {
    var events: [(String, [UInt8], Int)] = []
    var i = 0
    while i < input.count {
        let end = min(i + chunk, input.count)
        try Array(input[i..<end]).withUnsafeBytes { buf in
            try reader.feed(buf) { e in
                switch e {
                case .message(let m):
                    events.append((m.opcode == .text ? "text" : "binary", Array(m.payload), m.wireLength))
                case .ping(let p): events.append(("ping", Array(p), 0))
                case .pong: events.append(("pong", [], 0))
                case .close(let code): events.append(("close", [UInt8(code >> 8), UInt8(code & 0xFF)], 0))
                }
            }
        }
        i = end
    }
    return events
}

@Suite struct FrameParserTests {
    let small = Array("hello".utf8)
    let medium = [UInt8](repeating: 0x61, count: 300)  // 16-bit length
    let large = (0..<70_000).map { UInt8(truncatingIfNeeded: $0 % 251) }  // 64-bit length

    var stream: [UInt8] {
        serverFrame(1, small) + serverFrame(2, medium) + serverFrame(9, [1, 2]) + serverFrame(2, large)
            + serverFrame(1, Array("frag".utf8), fin: false) + serverFrame(0, Array("ment".utf8))
            + serverFrame(8, [0x03, 0xE8])
    }

    @Test(arguments: [1, 2, 3, 7, 125, 4096, 1 << 20])
    func parsesAnySplitIncludingByteByByte(chunk: Int) throws {
        var reader = MessageReader()
        let events = try collect(&reader, stream, chunk: chunk)
        #expect(events.map(\.0) == ["text", "binary", "ping", "binary", "text", "close"])
        #expect(events[0].1 == small && events[0].2 == 7)
        #expect(events[1].1 == medium && events[1].2 == 304)
        #expect(events[2].1 == [1, 2])
        #expect(events[3].1 == large && events[3].2 == 70_010)
        #expect(events[4].1 == Array("fragment".utf8))
        #expect(events[5].1 == [0x03, 0xE8])
        #expect(reader.parser.bufferedBytes == 0)
    }

    @Test func rejectsMaskedServerFramesAndReservedBits() {
        var masked = [UInt8]()
        FrameEncoder.append(opcode: .text, payload: small, maskKey: 0x0102_0304, to: &masked)
        var reader = MessageReader()
        #expect(throws: FrameError.maskedServerFrame) { _ = try collect(&reader, masked, chunk: 100) }
        var reader2 = MessageReader()
        #expect(throws: FrameError.reservedBits) {
            _ = try collect(&reader2, serverFrame(1, small, rsv1: true), chunk: 100)
        }
    }

    @Test func clientFramesAreMaskedAndRoundTrip() throws {
        for payload in [small, medium, large] {
            var bytes = [UInt8]()
            FrameEncoder.append(opcode: .binary, payload: payload, maskKey: 0xDEAD_BEEF, to: &bytes)
            #expect(bytes[1] & 0x80 != 0)
            #expect(bytes.count == FrameEncoder.headerLength(payload: payload.count) + payload.count)
            var reader = MessageReader(expectMasked: true)
            let events = try collect(&reader, bytes, chunk: 1)
            #expect(events.count == 1 && events[0].1 == payload)
        }
    }

    @Test(arguments: [1, 5, 1000])
    func inflatesCompressedMessages(chunk: Int) throws {
        let text = Payload.encode(time: 123_456_789, seq: 42, publisher: 3, size: 1024)
        let compressed = deflateMessage(text)
        #expect(compressed.count < text.count / 2)
        var reader = MessageReader(inflater: try Inflater(resetPerMessage: true))
        let wire =
            serverFrame(1, compressed, rsv1: true) + serverFrame(1, compressed, rsv1: true) + serverFrame(1, small)
        let events = try collect(&reader, wire, chunk: chunk)
        #expect(events.count == 3)
        #expect(events[0].1 == text && events[1].1 == text && events[2].1 == small)
        #expect(events[0].2 == compressed.count + 4)
    }
}

@Suite struct HandshakeTests {
    @Test func buildsRequestAndChecksStatus() throws {
        let url = try #require(WebSocketURL("ws://127.0.0.1:8080/chat"))
        #expect(url == WebSocketURL(host: "127.0.0.1", port: 8080, path: "/chat"))
        var rng = FastRandom(seed: 1)
        let key = Handshake.randomKey(using: &rng)
        #expect(key.utf8.count == 24 && key.hasSuffix("=="))
        let req = String(decoding: Handshake.request(url: url, key: key, offerDeflate: true), as: UTF8.self)
        #expect(req.hasPrefix("GET /chat HTTP/1.1\r\n"))
        #expect(req.contains("Sec-WebSocket-Key: \(key)\r\n"))
        #expect(req.contains("permessage-deflate; client_no_context_takeover; server_no_context_takeover"))
        #expect(req.hasSuffix("\r\n\r\n"))

        let ok =
            Array(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n\r\n"
                    .utf8) + [0x81, 0x00]
        let r = try #require(try ok.withUnsafeBytes { try Handshake.parseResponse($0) })
        #expect(r.deflate && r.serverNoContextTakeover && r.headLength == ok.count - 2)
        #expect(try Array("HTTP/1.1 101 Switching".utf8).withUnsafeBytes { try Handshake.parseResponse($0) } == nil)
        #expect(throws: Handshake.Failure.self) {
            _ = try Array("HTTP/1.1 400 Bad Request\r\n\r\n".utf8).withUnsafeBytes { try Handshake.parseResponse($0) }
        }
    }
}
