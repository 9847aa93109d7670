import Testing

@testable import ChorusWebSocket

/// The one table of close codes and reasons for a peer's protocol errors (WebSocketProtocolError.swift),
/// and the case the reader picks for each rule (RFC 6455 §5, §7.4.1, §8.1; RFC 7692 §6).
@Suite struct WebSocketProtocolErrorTests {
    /// Every case with the code RFC 6455 §7.4.1 gives it: framing faults 1002, data that is not
    /// what it claims 1007, over the size limit 1009.
    static let table: [(WebSocketProtocolError, UInt16)] = [
        (.reservedBits, 1002),
        (.reservedOpcode, 1002),
        (.unmaskedFrame, 1002),
        (.fragmentedControlFrame, 1002),
        (.controlFrameTooLong, 1002),
        (.compressedControlFrame, 1002),
        (.payloadLengthHighBit, 1002),
        (.continuationWithoutMessage, 1002),
        (.compressedContinuation, 1002),
        (.interleavedMessage, 1002),
        (.compressionNotNegotiated, 1002),
        (.oneByteClosePayload, 1002),
        (.invalidCloseCode(1005), 1002),
        (.invalidCloseCode(65535), 1002),
        (.invalidUTF8, 1007),
        (.truncatedUTF8, 1007),
        (.invalidCloseReason, 1007),
        (.invalidCompressedData, 1007),
        (.messageTooBig, 1009),
        (.compressedFrameTooBig, 1009),
        (.inflatedMessageTooBig, 1009),
    ]

    /// The table's row for each case. No `default`: a new case does not compile until it is given
    /// a row here, and `theTableHasEveryCase` fails until that row is in `table`.
    static func row(_ error: WebSocketProtocolError) -> Int {
        switch error {
        case .reservedBits: 0
        case .reservedOpcode: 1
        case .unmaskedFrame: 2
        case .fragmentedControlFrame: 3
        case .controlFrameTooLong: 4
        case .compressedControlFrame: 5
        case .payloadLengthHighBit: 6
        case .continuationWithoutMessage: 7
        case .compressedContinuation: 8
        case .interleavedMessage: 9
        case .compressionNotNegotiated: 10
        case .oneByteClosePayload: 11
        case .invalidCloseCode: 12
        case .invalidUTF8: 13
        case .truncatedUTF8: 14
        case .invalidCloseReason: 15
        case .invalidCompressedData: 16
        case .messageTooBig: 17
        case .compressedFrameTooBig: 18
        case .inflatedMessageTooBig: 19
        }
    }

    @Test func theTableHasEveryCase() {
        #expect(Set(Self.table.map { Self.row($0.0) }) == Set(0...19))
    }

    @Test func eachCaseHasItsCloseCode() {
        for (error, code) in Self.table {
            #expect(error.closeCode.rawValue == code, "\(error.reason)")
            #expect(error.description == "\(code) \(error.reason)")
        }
    }

    /// §5.5: a close frame's payload is at most 125 bytes, 2 of them the code.
    @Test func eachReasonFitsInACloseFrameAndNamesOneRule() {
        let reasons = Self.table.map(\.0.reason)
        for reason in reasons {
            #expect(!reason.isEmpty && reason.utf8.count <= 123, "\(reason)")
        }
        // The two invalidCloseCode rows differ only in the code they quote.
        #expect(Set(reasons).count == reasons.count)
        #expect(WebSocketProtocolError.invalidCloseCode(1005).reason == "invalid close code 1005")
    }

    // MARK: the case the reader picks for each rule

    enum Inflater: Sendable {
        case copying, corrupt, expandingTenfold

        func make() -> FakeInflater {
            let inflater = FakeInflater()
            switch self {
            case .copying: break
            case .corrupt: inflater.failWith = .corrupt
            case .expandingTenfold: inflater.expansion = 10
            }
            return inflater
        }
    }

    struct Violation: Sendable, CustomTestStringConvertible {
        var error: WebSocketProtocolError
        var bytes: [UInt8]
        var maxMessageSize = 1 << 20
        var inflater: Inflater? = nil
        var testDescription: String { "\(error)" }
    }

    static let violations: [Violation] = {
        var rsv3 = cf(.text, "Hello")
        rsv3[0] |= 0x10
        return [
            Violation(error: .reservedBits, bytes: rsv3),
            Violation(error: .reservedOpcode, bytes: [0x83, 0x80, 0, 0, 0, 0]),
            Violation(error: .unmaskedFrame, bytes: [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]),
            Violation(error: .fragmentedControlFrame, bytes: cf(.ping, "a", fin: false)),
            Violation(error: .controlFrameTooLong, bytes: [0x89, 0xFE]),
            Violation(error: .compressedControlFrame, bytes: cf(.ping, "a", rsv1: true), inflater: .copying),
            Violation(error: .payloadLengthHighBit, bytes: [0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0]),
            Violation(error: .continuationWithoutMessage, bytes: cf(.continuation, "a")),
            Violation(
                error: .compressedContinuation,
                bytes: cf(.text, "a", fin: false, rsv1: true) + cf(.continuation, "b", rsv1: true), inflater: .copying),
            Violation(error: .interleavedMessage, bytes: cf(.text, "a", fin: false) + cf(.binary, "b")),
            Violation(error: .compressionNotNegotiated, bytes: cf(.text, "a", rsv1: true)),
            Violation(error: .oneByteClosePayload, bytes: cf(.close, [0x03])),
            Violation(error: .invalidCloseCode(1005), bytes: cf(.close, [0x03, 0xED])),
            Violation(error: .invalidUTF8, bytes: cf(.text, [0xC0, 0x80])),
            // (A whole message in one frame says only "invalid UTF-8", as it always did.)
            Violation(error: .truncatedUTF8, bytes: cf(.text, [0xE2], fin: false) + cf(.continuation, [0x82])),
            Violation(error: .invalidCloseReason, bytes: cf(.close, [0x03, 0xE8, 0xC0])),
            Violation(error: .invalidCompressedData, bytes: cf(.binary, [1], rsv1: true), inflater: .corrupt),
            Violation(error: .messageTooBig, bytes: [0x82, 0xFE, 0x01, 0x00], maxMessageSize: 255),
            Violation(
                error: .compressedFrameTooBig, bytes: cf(.binary, [UInt8](repeating: 0, count: 2000), rsv1: true),
                maxMessageSize: 100, inflater: .copying),
            Violation(
                error: .inflatedMessageTooBig, bytes: cf(.binary, [UInt8](repeating: 0, count: 50), rsv1: true),
                maxMessageSize: 400, inflater: .expandingTenfold),
        ]
    }()

    @Test func everyCaseIsReachedByTheReader() {
        #expect(Set(Self.violations.map { Self.row($0.error) }) == Set(0...19))
    }

    @Test(arguments: violations)
    func theReaderFailsWithTheCaseOfTheRuleBroken(_ violation: Violation) {
        var reader = WebSocketMessageReader(
            maxMessageSize: violation.maxMessageSize, inflater: violation.inflater?.make())
        var failure: WebSocketProtocolError? = nil
        do throws(WebSocketProtocolError) {
            _ = try readOnce(&reader, violation.bytes)
        } catch {
            failure = error
        }
        #expect(failure == violation.error)
    }
}
