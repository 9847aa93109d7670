import ChorusDeflate
import ChorusUTF8
import Testing

@testable import ChorusWebSocket

/// Text validated before its frame is complete (§8.1 fail fast; Autobahn 6.4.x): the reader
/// unmasks and validates the available prefix of a partial text frame in place, and the
/// caller hands that frame back, as left, at the start of the next buffer.
@Suite struct PartialTextFrameTests {
    /// Autobahn 6.4.3/6.4.4's payload: "κόσμε", then F4 90 80 80 (above U+10FFFF), then "edited".
    static let autobahnPayload: [UInt8] = Array("κόσμε".utf8) + [0xF4, 0x90, 0x80, 0x80] + Array("edited".utf8)
    /// Offset of 0x90, the first byte that cannot continue valid UTF-8.
    static let autobahnBadByte = Array("κόσμε".utf8).count + 1

    static let unicode = "κόσμε 🎉€ – ASCII runs long enough for the word loop, ünïcödé, 中文, 𝄞 end"

    private func code(_ body: () throws(WebSocketProtocolError) -> Void) -> UInt16? {
        do throws(WebSocketProtocolError) {
            try body()
            return nil
        } catch {
            return error.closeCode.rawValue
        }
    }

    // MARK: invalid UTF-8 fails as soon as it arrives

    @Test func invalidUTF8FailsOnThePartialReadThatBringsIt() {
        let frame = cf(.text, Self.autobahnPayload)
        let bad = 6 + Self.autobahnBadByte  // 2-byte header + 4-byte key
        for cut in 0..<frame.count {
            var c = ConnectionBuffer()
            let first = code { () throws(WebSocketProtocolError) in try c.feed(frame[..<cut]) }
            if cut > bad {
                #expect(first == 1007, "cut \(cut): the bad byte is in the first, partial read")
            } else {
                #expect(first == nil, "cut \(cut)")
                #expect(c.events.isEmpty && c.pending.count == cut)
                let second = code { () throws(WebSocketProtocolError) in try c.feed(frame[cut...]) }
                #expect(second == 1007, "cut \(cut)")
            }
        }
    }

    @Test func byteByByteTheFailureIsOnTheBadByteNotAtTheEndOfTheFrame() {
        for (payload, badIndex) in [
            (Self.autobahnPayload, Self.autobahnBadByte),
            (
                Array(repeating: UInt8(ascii: "a"), count: 300) + [0xC0, 0xAF]
                    + Array(repeating: UInt8(ascii: "b"), count: 50), 300
            ),
            (Array("ab".utf8) + [0xED, 0xA0, 0x80] + Array("cd".utf8), 3),  // a UTF-16 surrogate
            ([0x80] + Array("x".utf8), 0),  // a stray continuation byte, first in the payload
        ] {
            let frame = cf(.text, payload)
            let header = frame.count - payload.count
            var c = ConnectionBuffer()
            var failedAt: Int? = nil
            for i in frame.indices {
                if code({ () throws(WebSocketProtocolError) in try c.feed(frame[i...i]) }) == 1007 {
                    failedAt = i
                    break
                }
            }
            #expect(failedAt == header + badIndex, "payload of \(payload.count) bytes")
        }
    }

    @Test func invalidUTF8InAPartialContinuationFailsBeforeThatFrameCompletes() throws {
        // The message validator's state carries over: the first fragment ends inside "κ" (CE BA).
        let first = cf(.text, [0x61, 0xCE], fin: false)
        let ping = cf(.ping, "p")
        let second = cf(.continuation, [0x41] + Array(repeating: 0x42, count: 40))
        var c = ConnectionBuffer()
        try c.feed(first + ping + second.prefix(6))  // up to the continuation's payload
        #expect(c.events == [.ping(Array("p".utf8))])
        #expect(code { () throws(WebSocketProtocolError) in try c.feed(second[6...6]) } == 1007)

        let third = cf(.continuation, Array("σμ".utf8) + [0xED, 0xA0, 0x80] + Array(repeating: 0x42, count: 40))
        var d = ConnectionBuffer()
        try d.feed(cf(.text, "κό", fin: false) + ping)
        try d.feed(third.prefix(6 + 5))  // "σμ" and ED: still a valid prefix
        #expect(code { () throws(WebSocketProtocolError) in try d.feed(third[11...11]) } == 1007)  // A0 after ED
    }

    @Test func aPartialTextFrameAfterCompleteFramesInTheSameBufferIsValidatedToo() {
        let frame = cf(.text, Self.autobahnPayload)
        var c = ConnectionBuffer()
        let failure = code { () throws(WebSocketProtocolError) in
            try c.feed(cf(.text, "one") + cf(.binary, [0xFF]) + frame.prefix(6 + Self.autobahnBadByte + 1))
        }
        #expect(failure == 1007)
        #expect(c.events == [.t("one"), .binary([0xFF])])
    }

    // MARK: valid text split anywhere is delivered intact

    @Test func validTextSplitAtEveryPairOfOffsetsIsDeliveredExactly() throws {
        let text = Array("κόσμε 🎉€ ok".utf8)
        let stream = cf(.text, text) + cf(.text, "€") + cf(.binary, [0xFF, 0xC0])
        let expected: [Ev] = [.text(text), .t("€"), .binary([0xFF, 0xC0])]
        for a in 0...stream.count {
            for b in a...stream.count {
                let (events, leftover) = try readSplit(stream, at: [a, b])
                #expect(events == expected, "cuts \(a), \(b)")
                #expect(leftover == 0)
            }
        }
    }

    @Test func longTextWith16And64BitLengthsSplitAnywhere() throws {
        let text16 = Array(String(repeating: Self.unicode, count: 4).utf8)  // 126...65535 bytes
        let f16 = cf(.text, text16)
        #expect(f16[1] & 0x7F == 126)
        for cut in 0...f16.count {
            let (events, leftover) = try readSplit(f16, at: [cut])
            #expect(events == [.text(text16)], "cut \(cut)")
            #expect(leftover == 0)
        }
        var r = WebSocketMessageReader(maxMessageSize: 1 << 20)
        #expect(try readIncrementally(&r, f16, chunk: 1).events == [.text(text16)])

        let text64 = Array(String(repeating: Self.unicode, count: 1000).utf8)  // > 65535 bytes
        let f64 = cf(.text, text64)
        #expect(f64[1] & 0x7F == 127)
        for chunk in [3, 997, 4096, 20_001] {
            var r = WebSocketMessageReader(maxMessageSize: 1 << 20)
            let (events, leftover) = try readIncrementally(&r, f64, chunk: chunk)
            #expect(events == [.text(text64)], "chunk \(chunk)")
            #expect(leftover == 0)
        }
    }

    @Test func anUnfragmentedTextMessageIsStillDeliveredZeroCopyAndFullyUnmasked() throws {
        let text = Array("κόσμε, zero copy".utf8)
        let frame = cf(.text, text)
        var r = WebSocketMessageReader(maxMessageSize: 100)
        // First read: header and half the payload; it is unmasked in place.
        var buf = Array(frame.prefix(6 + 9))
        #expect(try buf.withUnsafeMutableBytes { p in try r.read(p) { _ in true } } == 0)
        #expect(Array(buf[6...]) == Array(text.prefix(9)))
        #expect(r.bytesNeededForCurrentFrame == frame.count)
        // Second read, elsewhere in memory, with the rest still masked.
        var next = [UInt8](repeating: 0, count: 3) + buf + frame[(6 + 9)...]
        var delivered: [UInt8]? = nil
        var inside = false
        let consumed = try next.withUnsafeMutableBytes { raw -> Int in
            let p = UnsafeMutableRawBufferPointer(rebasing: raw[3...])
            return try r.read(p) { e in
                if case .text(let b) = e {
                    delivered = Array(b)
                    inside = b.baseAddress == UnsafeRawPointer(p.baseAddress! + 6)
                }
                return true
            }
        }
        #expect(consumed == frame.count)
        #expect(delivered == text)
        #expect(inside)
        #expect(r.bytesNeededForCurrentFrame == nil)
    }

    @Test func readingTheSamePartialFrameAgainWithNoNewBytesChangesNothing() throws {
        let text = Array("κόσμε 🎉 again".utf8)
        let frame = cf(.text, text)
        for cut in 0...frame.count {
            var c = ConnectionBuffer()
            try c.feed(frame[..<cut])
            try c.feed([UInt8]())
            try c.feed([UInt8]())
            try c.feed(frame[cut...])
            #expect(c.events == [.text(text)], "cut \(cut)")
            #expect(c.pending.isEmpty)
        }
    }

    @Test func bytesNeededForCurrentFrameIsUnchangedForPartialText() throws {
        let frame = cf(.text, Array(String(repeating: "κ", count: 100).utf8))  // 200-byte payload, 16-bit length
        var c = ConnectionBuffer()
        try c.feed(frame.prefix(3))
        #expect(c.reader.bytesNeededForCurrentFrame == nil)
        try c.feed(frame[3..<8])
        #expect(c.reader.bytesNeededForCurrentFrame == frame.count)
        try c.feed(frame[8..<101])
        #expect(c.reader.bytesNeededForCurrentFrame == frame.count)
        try c.feed(frame[101...])
        #expect(c.reader.bytesNeededForCurrentFrame == nil)
        #expect(c.events.count == 1)
    }

    // MARK: fragmented messages

    @Test func fragmentedTextWithControlFramesBetweenFragmentsSplitAtEveryPairOfOffsets() throws {
        let stream =
            cf(.text, "κό", fin: false) + cf(.ping, "p") + cf(.continuation, "σμε 🎉", fin: false)
            + cf(.pong, "") + cf(.continuation, [0xE2], fin: false) + cf(.continuation, [0x82, 0xAC, 0x21])
        let expected: [Ev] = [.ping(Array("p".utf8)), .pong([]), .t("κόσμε 🎉€!")]
        #expect(try readAll(stream) == expected)
        for a in 0...stream.count {
            for b in a...stream.count {
                let (events, leftover) = try readSplit(stream, at: [a, b])
                #expect(events == expected, "cuts \(a), \(b)")
                #expect(leftover == 0)
            }
        }
    }

    @Test func fragmentedTextEndingInsideASequenceIsStill1007AtTheEnd() {
        let stream = cf(.text, "κ", fin: false) + cf(.continuation, [0x61, 0xE2, 0x82])
        for cut in 0...stream.count {
            #expect(
                code { () throws(WebSocketProtocolError) in _ = try readSplit(stream, at: [cut]) } == 1007, "cut \(cut)"
            )
        }
    }

    @Test func returningFalseWithATrailingPartialTextFrameLeavesItForTheNextRead() throws {
        let close = cf(.close, [0x03, 0xE8])
        let text = cf(.text, "κόσμε after close")
        var c = ConnectionBuffer()
        try c.feed(close + text.prefix(12)) { _ in false }
        #expect(c.events == [.close(1000, [])])
        #expect(c.pending.count == 12)
        try c.feed(text[12...])
        #expect(c.events == [.close(1000, []), .t("κόσμε after close")])
        #expect(c.pending.isEmpty)
    }

    // MARK: what is not validated early

    @Test func compressedTextIsNotValidatedBeforeItIsInflated() throws {
        // The fake inflater copies, so the "compressed" bytes are what gets validated after inflating.
        let frame = cf(.text, Self.autobahnPayload, rsv1: true)
        for cut in 0..<frame.count {
            var c = ConnectionBuffer(inflater: FakeInflater())
            try c.feed(frame[..<cut])  // no 1007 on raw compressed bytes
            #expect(code { () throws(WebSocketProtocolError) in try c.feed(frame[cut...]) } == 1007, "cut \(cut)")
        }
    }

    @Test func realDeflatedTextSplitAtEveryOffsetInflatesExactly() throws {
        let text = Array(String(repeating: Self.unicode, count: 3).utf8)
        let compressed = PerMessageDeflater(windowBits: 15, memLevel: 8, noContextTakeover: true).compressMessage(text)
        #expect(!compressed.withUnsafeBytes { UTF8Validator.validate($0) }, "the compressed bytes are not UTF-8")
        let half = compressed.count / 2
        let single = cf(.text, compressed, rsv1: true)
        let fragmented =
            cf(.text, Array(compressed[..<half]), fin: false, rsv1: true) + cf(.ping, "p")
            + cf(.continuation, Array(compressed[half...]))
        for (stream, expected) in [(single, [Ev.text(text)]), (fragmented, [.ping(Array("p".utf8)), .text(text)])] {
            for cut in 0...stream.count {
                let inflater = PerMessageInflater(windowBits: 15, noContextTakeover: true)
                let (events, leftover) = try readSplit(stream, at: [cut], inflater: inflater)
                #expect(events == expected, "cut \(cut)")
                #expect(leftover == 0)
            }
        }
    }

    @Test func binaryAndControlFramesAreNotUTF8CheckedWhilePartial() throws {
        let stream =
            cf(.binary, [0xC0, 0xFF, 0xED, 0xA0, 0x80], fin: false) + cf(.ping, [0xFF, 0xFE])
            + cf(.continuation, [0xF5, 0x80]) + cf(.pong, [0xC0])
        let expected: [Ev] = [
            .ping([0xFF, 0xFE]), .binary([0xC0, 0xFF, 0xED, 0xA0, 0x80, 0xF5, 0x80]), .pong([0xC0]),
        ]
        var r = WebSocketMessageReader(maxMessageSize: 1000)
        #expect(try readIncrementally(&r, stream, chunk: 1).events == expected)
    }
}
