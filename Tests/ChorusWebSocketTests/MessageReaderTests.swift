import Testing

@testable import ChorusWebSocket

@Suite struct MessageReaderTests {
    // MARK: RFC 6455 §5.7 examples, masked as a client sends them

    @Test func rfc5_7_maskedHelloIsOneTextMessage() throws {
        #expect(try readAll([0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]) == [.t("Hello")])
    }

    @Test func rfc5_7_fragmentedHelIsAssembledWithLo() throws {
        #expect(try readAll(cf(.text, "Hel", fin: false) + cf(.continuation, "lo")) == [.t("Hello")])
    }

    @Test func rfc5_7_pingAndPongCarryTheirPayload() throws {
        #expect(
            try readAll(cf(.ping, "Hello") + cf(.pong, "Hello")) == [
                .ping(Array("Hello".utf8)), .pong(Array("Hello".utf8)),
            ])
    }

    @Test func rfc5_7_256ByteAnd64KiBBinaryLengths() throws {
        let p256 = (0..<256).map { UInt8($0) }
        let f256 = cf(.binary, p256)
        #expect(Array(f256.prefix(4)) == [0x82, 0xFE, 0x01, 0x00])
        let p64k = (0..<65536).map { UInt8(truncatingIfNeeded: $0 >> 3) }
        let f64k = cf(.binary, p64k)
        #expect(Array(f64k.prefix(10)) == [0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0])
        #expect(try readAll(f256 + f64k) == [.binary(p256), .binary(p64k)])
    }

    // MARK: fragmentation (§5.4)

    @Test func controlFramesMayBeInterleavedWithFragments() throws {
        let stream =
            cf(.text, "Hel", fin: false) + cf(.ping, "p1") + cf(.continuation, "l", fin: false)
            + cf(.pong, "p2") + cf(.continuation, "o")
        #expect(try readAll(stream) == [.ping(Array("p1".utf8)), .pong(Array("p2".utf8)), .t("Hello")])
    }

    @Test func fragmentedBinaryWithEmptyFragments() throws {
        let stream = cf(.binary, [], fin: false) + cf(.continuation, [1, 2], fin: false) + cf(.continuation, [])
        #expect(try readAll(stream) == [.binary([1, 2])])
    }

    @Test func continuationWithoutAMessageInProgressIs1002() {
        #expect(failureCode(cf(.continuation, "lo")) == 1002)
    }

    @Test func newDataFrameWhileAFragmentedMessageIsInProgressIs1002() {
        #expect(failureCode(cf(.text, "Hel", fin: false) + cf(.text, "lo")) == 1002)
        #expect(failureCode(cf(.binary, [1], fin: false) + cf(.binary, [2], fin: false)) == 1002)
    }

    @Test func partialFramesFedByteByByteProduceIdenticalEvents() throws {
        let stream =
            cf(.text, "Hello") + cf(.binary, (0..<300).map { UInt8(truncatingIfNeeded: $0) })
            + cf(.text, "κό", fin: false) + cf(.ping, "x") + cf(.continuation, "σμε")
            + cf(.binary, [UInt8](repeating: 5, count: 70000)) + cf(.pong, "")
            + WebSocketFrameEncoder.maskedFrame(
                opcode: .close, payload: [0x03, 0xE8, 0x6F, 0x6B], maskKey: 0x1234_5678)
        let whole = try readAll(stream)
        #expect(whole.count == 7)
        for chunk in [1, 2, 3, 7, 64, 1000] {
            var r = WebSocketMessageReader(maxMessageSize: 1 << 20)
            let (events, leftover) = try readIncrementally(&r, stream, chunk: chunk)
            #expect(events == whole, "chunk \(chunk)")
            #expect(leftover == 0)
        }
    }

    @Test func trailingPartialFrameIsLeftUnconsumed() throws {
        let f1 = cf(.text, "one")
        let f2 = cf(.text, "two")
        var r = WebSocketMessageReader(maxMessageSize: 1000)
        let (events, consumed) = try readOnce(&r, f1 + f2.prefix(4))
        #expect(events == [.t("one")])
        #expect(consumed == f1.count)
    }

    @Test func bytesNeededForCurrentFrameIsKnownOnceTheHeaderIsComplete() throws {
        let f = cf(.binary, [UInt8](repeating: 1, count: 1000))  // 4 + 4 + 1000 bytes
        var r = WebSocketMessageReader(maxMessageSize: 2000)
        _ = try readOnce(&r, Array(f.prefix(3)))
        #expect(r.bytesNeededForCurrentFrame == nil)
        _ = try readOnce(&r, Array(f.prefix(8)))
        #expect(r.bytesNeededForCurrentFrame == 1008)
        let (events, consumed) = try readOnce(&r, f)
        #expect(consumed == 1008 && events.count == 1)
        #expect(r.bytesNeededForCurrentFrame == nil)
    }

    @Test func returningFalseFromOnEventStopsRightAfterThatFrame() throws {
        let f1 = cf(.text, "a")
        var r = WebSocketMessageReader(maxMessageSize: 100)
        let (events, consumed) = try readOnce(&r, f1 + cf(.text, "b") + cf(.text, "c"), stopAfter: 1)
        #expect(events == [.t("a")])
        #expect(consumed == f1.count)
    }

    @Test func unfragmentedMessagesAreDeliveredZeroCopyFromTheBuffer() throws {
        var buf = cf(.binary, [1, 2, 3])
        var r = WebSocketMessageReader(maxMessageSize: 100)
        try buf.withUnsafeMutableBytes { p in
            var inside = false
            _ = try r.read(p) { e in
                if case .binary(let b) = e { inside = b.baseAddress == UnsafeRawPointer(p.baseAddress! + 6) }
                return true
            }
            #expect(inside)
        }
    }

    @Test func assemblyBufferIsReleasedAfterAMessageOver64KiB() throws {
        var r = WebSocketMessageReader(maxMessageSize: 1 << 20)
        _ = try readOnce(&r, cf(.binary, [1], fin: false) + cf(.continuation, [2]))
        #expect(r.assembly.capacity > 0)
        _ = try readOnce(&r, cf(.binary, [UInt8](repeating: 0, count: 100_000), fin: false) + cf(.continuation, [2]))
        #expect(r.assembly.capacity == 0)
    }

    // MARK: framing violations (§5.1-§5.5) → 1002

    @Test func unmaskedClientFrameIs1002() {
        #expect(failureCode([0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]) == 1002)
    }

    @Test func rsvBitsWithoutAnExtensionAre1002() {
        for bits: UInt8 in [0x40, 0x20, 0x10] {
            var f = cf(.text, "Hello")
            f[0] |= bits
            #expect(failureCode(f) == 1002, "bits \(bits)")
            #expect(failureCode(Array(f.prefix(2))) == 1002, "decided on the first two bytes")
        }
    }

    @Test func reservedOpcodesAre1002() {
        for op: UInt8 in [0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF] {
            #expect(failureCode([0x80 | op, 0x80, 0, 0, 0, 0]) == 1002, "opcode \(op)")
        }
    }

    @Test func controlFrameOver125BytesIs1002() throws {
        #expect(failureCode(cf(.ping, [UInt8](repeating: 0, count: 126))) == 1002)
        #expect(failureCode([0x89, 0xFE]) == 1002)  // on the first two bytes
        #expect(try readAll(cf(.ping, [UInt8](repeating: 0, count: 125))).count == 1)
    }

    @Test func fragmentedControlFrameIs1002() {
        #expect(failureCode(cf(.ping, "a", fin: false)) == 1002)
        #expect(failureCode(cf(.close, [0x03, 0xE8], fin: false)) == 1002)
    }

    @Test func sixtyFourBitLengthWithTheHighBitSetIs1002() {
        #expect(failureCode([0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0]) == 1002)
    }

    @Test func nonMinimalLengthEncodingIsAccepted() throws {
        // "Hi" with a 16-bit length field.
        var f: [UInt8] = [0x81, 0xFE, 0x00, 0x02, 0, 0, 0, 0]
        f += Array("Hi".utf8)
        #expect(try readAll(f) == [.t("Hi")])
    }

    // MARK: size limit (§10.4) → 1009

    @Test func oversizedMessageIs1009OnTheHeaderAlone() {
        #expect(failureCode([0x82, 0xFE, 0x01, 0x00], maxMessageSize: 255) == 1009)
        #expect(failureCode([0x82, 0xFF, 0, 0, 0, 1, 0, 0, 0, 0], maxMessageSize: 1 << 20) == 1009)
    }

    @Test func messageOfExactlyMaxMessageSizeIsAccepted() throws {
        #expect(try readAll(cf(.binary, [UInt8](repeating: 1, count: 256)), maxMessageSize: 256).count == 1)
    }

    @Test func fragmentedMessageOverTheLimitIs1009OnTheHeaderOfTheFragmentThatCrossesIt() {
        let first = cf(.binary, [UInt8](repeating: 1, count: 200), fin: false)
        let second = cf(.continuation, [UInt8](repeating: 1, count: 100))
        #expect(failureCode(first + Array(second.prefix(2)), maxMessageSize: 250) == 1009)
    }

    // MARK: UTF-8 (§8.1) → 1007

    @Test func invalidUTF8InATextMessageIs1007() {
        #expect(failureCode(cf(.text, [0xC0, 0x80])) == 1007)
        #expect(failureCode(cf(.text, [0xED, 0xA0, 0x80])) == 1007)
        #expect(failureCode(cf(.text, [0xF4, 0x90, 0x80, 0x80])) == 1007)
    }

    @Test func binaryMessagesAreNotUTF8Checked() throws {
        #expect(try readAll(cf(.binary, [0xFF, 0xC0])) == [.binary([0xFF, 0xC0])])
    }

    @Test func textEndingInsideAUTF8SequenceIs1007() {
        #expect(failureCode(cf(.text, [0xE2, 0x82])) == 1007)
        #expect(failureCode(cf(.text, [0xE2], fin: false) + cf(.continuation, [0x82])) == 1007)
    }

    @Test func textSplitAcrossFragmentsAtEveryOffsetIsValid() throws {
        let text = Array("κόσμε 🎉€".utf8)
        for cut in 0...text.count {
            let stream = cf(.text, Array(text[..<cut]), fin: false) + cf(.continuation, Array(text[cut...]))
            #expect(try readAll(stream) == [.text(text)], "cut \(cut)")
        }
    }

    @Test func invalidUTF8FailsFastOnTheFragmentHoldingTheBadByte() throws {
        var r = WebSocketMessageReader(maxMessageSize: 1000)
        _ = try readOnce(&r, cf(.text, "κόσμε", fin: false))
        var code: UInt16? = nil
        do { _ = try readOnce(&r, cf(.continuation, [0xED, 0xA0, 0x80, 0x41], fin: false)) } catch {
            code = error.closeCode.rawValue
        }
        #expect(code == 1007)
    }

    // MARK: close frames (§5.5.1, §7.4)

    @Test func emptyCloseHasNoCode() throws {
        #expect(try readAll(cf(.close, [])) == [.close(nil, [])])
    }

    @Test func closeWithCodeAndReason() throws {
        #expect(try readAll(cf(.close, [0x03, 0xE8] + Array("bye".utf8))) == [.close(1000, Array("bye".utf8))])
    }

    @Test func closeWithOneBytePayloadIs1002() {
        #expect(failureCode(cf(.close, [0x03])) == 1002)
    }

    @Test func closeWithACodeNotValidOnTheWireIs1002() {
        for code: UInt16 in [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535] {
            #expect(failureCode(cf(.close, [UInt8(code >> 8), UInt8(code & 0xFF)])) == 1002, "code \(code)")
        }
    }

    @Test func closeWithAnyCodeValidOnTheWireIsDelivered() throws {
        for code: UInt16 in [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999,
        ] {
            #expect(try readAll(cf(.close, [UInt8(code >> 8), UInt8(code & 0xFF)])) == [.close(code, [])])
        }
    }

    @Test func closeWithANonUTF8ReasonIs1007() {
        #expect(failureCode(cf(.close, [0x03, 0xE8, 0xCE, 0xBA, 0xE1, 0xBD])) == 1007)
    }
}
