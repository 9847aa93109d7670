import ChorusWebSocket
import Testing

@testable import ChorusServer

/// The one table of what the server tells a peer it closes or refuses (ServerError.swift).
@Suite("Close codes and refusal statuses")
struct ServerErrorTests {
    @Test(arguments: [
        (CloseReason.backpressureLimit, UInt16(1008), false),
        (.messageTimeout, 1008, true),
        (.rateLimited, 1008, true),
        (.idleTimeout, 1001, false),
        (.shuttingDown, 1001, false),
        (.overloaded, 1013, false),
    ])
    func eachCloseReasonHasItsCode(reason: CloseReason, code: UInt16, fails: Bool) {
        #expect(reason.code.rawValue == code)
        #expect(reason.failsConnection == fails)
        #expect(!reason.reason.isEmpty)
    }

    /// RFC 6455 §7.1.7: a protocol error keeps the code the parser chose, and input is ignored after it.
    @Test func aProtocolViolationKeepsTheParsersCodeAndReason() {
        let error = WebSocketProtocolError.invalidUTF8
        let reason = CloseReason.protocolViolation(error)
        #expect(reason.code == .invalidPayloadData)
        #expect(reason.reason == "invalid UTF-8 in text message")
        #expect(reason.failsConnection)
    }

    @Test(arguments: [
        (RequestRefusal.requestTimeout, 408),
        (.shuttingDown, 503),
        (.connectionLimit, 503),
        (.perAddressConnectionLimit, 503),
        (.malformedRequest(.headerTooLarge), 431),
        (.malformedRequest(.malformed("Malformed request line")), 400),
    ])
    func eachRefusalHasItsStatus(refusal: RequestRefusal, status: Int) {
        #expect(refusal.response.status == status)
        #expect(refusal.response.body.last == UInt8(ascii: "\n"))
    }
}
