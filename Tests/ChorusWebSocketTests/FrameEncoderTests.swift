import ChorusUTF8
import Testing

@testable import ChorusWebSocket

@Suite struct FrameEncoderTests {
    let hello = Array("Hello".utf8)

    @Test func rfc5_7_singleFrameUnmaskedText() {
        #expect(
            WebSocketFrameEncoder.frame(opcode: .text, payload: hello) == [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f])
    }

    @Test func rfc5_7_singleFrameMaskedText() {
        #expect(
            WebSocketFrameEncoder.maskedFrame(opcode: .text, payload: hello, maskKey: rfcKey)
                == [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58])
    }

    @Test func rfc5_7_fragmentedUnmaskedText() {
        #expect(
            WebSocketFrameEncoder.frame(opcode: .text, payload: Array("Hel".utf8), fin: false) == [
                0x01, 0x03, 0x48, 0x65, 0x6c,
            ])
        #expect(
            WebSocketFrameEncoder.frame(opcode: .continuation, payload: Array("lo".utf8)) == [0x80, 0x02, 0x6c, 0x6f])
    }

    @Test func rfc5_7_unmaskedPingAndPong() {
        #expect(
            WebSocketFrameEncoder.frame(opcode: .ping, payload: hello) == [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f])
        #expect(
            WebSocketFrameEncoder.frame(opcode: .pong, payload: hello) == [0x8a, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f])
    }

    @Test func rfc5_7_256ByteBinaryUses16BitLength() {
        let payload = [UInt8](repeating: 7, count: 256)
        let f = WebSocketFrameEncoder.frame(opcode: .binary, payload: payload)
        #expect(Array(f.prefix(4)) == [0x82, 0x7E, 0x01, 0x00])
        #expect(Array(f.dropFirst(4)) == payload)
    }

    @Test func rfc5_7_64KiBBinaryUses64BitLength() {
        let payload = [UInt8](repeating: 9, count: 65536)
        let f = WebSocketFrameEncoder.frame(opcode: .binary, payload: payload)
        #expect(Array(f.prefix(10)) == [0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0])
        #expect(f.count == 65546)
    }

    @Test func headerSizeSwitchesAt126And65536() {
        #expect(WebSocketFrameEncoder.maxHeaderSize == 10)
        #expect(WebSocketFrameEncoder.headerSize(payloadLength: 0) == 2)
        #expect(WebSocketFrameEncoder.headerSize(payloadLength: 125) == 2)
        #expect(WebSocketFrameEncoder.headerSize(payloadLength: 126) == 4)
        #expect(WebSocketFrameEncoder.headerSize(payloadLength: 65535) == 4)
        #expect(WebSocketFrameEncoder.headerSize(payloadLength: 65536) == 10)
    }

    @Test func writeHeaderSetsFinRsv1AndOpcodeBits() {
        var buf = [UInt8](repeating: 0xEE, count: 10)
        let n = buf.withUnsafeMutableBytes {
            WebSocketFrameEncoder.writeHeader(
                to: $0.baseAddress!, opcode: .binary, fin: false, rsv1: true, payloadLength: 300)
        }
        #expect(n == 4)
        #expect(Array(buf.prefix(4)) == [0x42, 0x7E, 0x01, 0x2C])
        let m = buf.withUnsafeMutableBytes {
            WebSocketFrameEncoder.writeHeader(to: $0.baseAddress!, opcode: .text, rsv1: true, payloadLength: 5)
        }
        #expect(m == 2)
        #expect(Array(buf.prefix(2)) == [0xC1, 0x05])
    }

    @Test func closeFrameCarriesBigEndianCodeAndReason() {
        #expect(
            WebSocketFrameEncoder.closeFrame(code: .normalClosure, reason: "bye") == [
                0x88, 0x05, 0x03, 0xE8, 0x62, 0x79, 0x65,
            ])
        #expect(WebSocketFrameEncoder.closeFrame(code: .goingAway, reason: "") == [0x88, 0x02, 0x03, 0xE9])
    }

    @Test func closeReasonIsTruncatedTo125BytesOnACharacterBoundary() {
        let reason = String(repeating: "é", count: 100)  // 200 bytes of 2-byte characters
        let f = WebSocketFrameEncoder.closeFrame(code: .policyViolation, reason: reason)
        let payload = Array(f.dropFirst(2))
        #expect(Int(f[1]) == payload.count)
        #expect(payload.count <= 125)
        #expect(payload.count == 124)
        #expect(withBytes(Array(payload.dropFirst(2))) { UTF8Validator.validate($0) })
        let ascii = String(repeating: "a", count: 200)
        #expect(WebSocketFrameEncoder.closeFrame(code: .policyViolation, reason: ascii).count == 127)
    }

    @Test func maskedClientCloseRoundTripsThroughTheReader() throws {
        let payload = WebSocketFrameEncoder.closePayload(code: .goingAway, reason: "later")
        #expect(try readAll(cf(.close, payload)) == [.close(1001, Array("later".utf8))])
    }

    @Test func maskedFrameRoundTripsThroughTheReaderAtEveryLengthClass() throws {
        for n in [0, 1, 125, 126, 65535, 65536] {
            let payload = (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 31) }
            let events = try readAll(cf(.binary, payload, key: 0xA1B2_C3D4))
            #expect(events == [.binary(payload)])
        }
    }
}
