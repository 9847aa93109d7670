import Testing

@testable import ChorusWebSocket

/// Stands in for the RFC 7692 inflater: "inflates" by copying, and records its calls.
final class FakeInflater: WebSocketInflater {
    var calls: [(input: [UInt8], isFinal: Bool)] = []
    var failWith: WebSocketInflateError? = nil
    var expansion = 1

    func inflate(_ input: UnsafeRawBufferPointer, isFinal: Bool, into output: inout [UInt8], limit: Int)
        throws(WebSocketInflateError)
    {
        calls.append((Array(input), isFinal))
        if let failWith { throw failWith }
        for _ in 0..<expansion {
            if output.count + input.count > limit { throw .messageTooBig }
            output.append(contentsOf: input)
        }
    }
}

@Suite struct InflaterHookTests {
    @Test func rsv1MessageIsInflatedFrameByFrameWithIsFinalOnTheLastFragment() throws {
        let inflater = FakeInflater()
        let stream =
            cf(.text, "ab", fin: false, rsv1: true) + cf(.ping, "x") + cf(.continuation, "cd", fin: false)
            + cf(.continuation, "ef")
        #expect(try readAll(stream, inflater: inflater) == [.ping(Array("x".utf8)), .t("abcdef")])
        #expect(inflater.calls.map { String(decoding: $0.input, as: UTF8.self) } == ["ab", "cd", "ef"])
        #expect(inflater.calls.map(\.isFinal) == [false, false, true])
    }

    @Test func singleFrameCompressedMessageIsOneFinalCall() throws {
        let inflater = FakeInflater()
        #expect(try readAll(cf(.binary, [1, 2, 3], rsv1: true), inflater: inflater) == [.binary([1, 2, 3])])
        #expect(inflater.calls.count == 1 && inflater.calls[0].isFinal)
    }

    @Test func uncompressedMessagesDoNotCallTheInflater() throws {
        let inflater = FakeInflater()
        #expect(
            try readAll(cf(.text, "a", fin: false) + cf(.continuation, "b") + cf(.text, "c"), inflater: inflater)
                == [.t("ab"), .t("c")])
        #expect(inflater.calls.isEmpty)
    }

    @Test func rsv1OnAContinuationFrameIs1002() {
        #expect(
            failureCode(
                cf(.text, "a", fin: false, rsv1: true) + cf(.continuation, "b", rsv1: true), inflater: FakeInflater())
                == 1002)
    }

    @Test func rsv1OnAControlFrameIs1002() {
        #expect(failureCode(cf(.ping, "a", rsv1: true), inflater: FakeInflater()) == 1002)
    }

    @Test func inflatedMessageOverTheLimitIs1009() {
        let inflater = FakeInflater()
        inflater.expansion = 10
        #expect(
            failureCode(
                cf(.binary, [UInt8](repeating: 0, count: 50), rsv1: true), maxMessageSize: 400, inflater: inflater)
                == 1009)
    }

    @Test func corruptCompressedDataIs1007() {
        let inflater = FakeInflater()
        inflater.failWith = .corrupt
        #expect(failureCode(cf(.binary, [1], rsv1: true), inflater: inflater) == 1007)
    }

    @Test func invalidUTF8InAnInflatedTextMessageIs1007() {
        #expect(failureCode(cf(.text, [0xC0, 0x80], rsv1: true), inflater: FakeInflater()) == 1007)
    }
}
