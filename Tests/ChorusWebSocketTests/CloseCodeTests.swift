import Testing

@testable import ChorusWebSocket

@Suite struct CloseCodeTests {
    @Test func namedCodesHaveTheirRFCValues() {
        #expect(WebSocketCloseCode.normalClosure.rawValue == 1000)
        #expect(WebSocketCloseCode.goingAway.rawValue == 1001)
        #expect(WebSocketCloseCode.protocolError.rawValue == 1002)
        #expect(WebSocketCloseCode.unsupportedData.rawValue == 1003)
        #expect(WebSocketCloseCode.noStatusReceived.rawValue == 1005)
        #expect(WebSocketCloseCode.abnormalClosure.rawValue == 1006)
        #expect(WebSocketCloseCode.invalidPayloadData.rawValue == 1007)
        #expect(WebSocketCloseCode.policyViolation.rawValue == 1008)
        #expect(WebSocketCloseCode.messageTooBig.rawValue == 1009)
        #expect(WebSocketCloseCode.mandatoryExtension.rawValue == 1010)
        #expect(WebSocketCloseCode.internalError.rawValue == 1011)
        #expect(WebSocketCloseCode.serviceRestart.rawValue == 1012)
        #expect(WebSocketCloseCode.tryAgainLater.rawValue == 1013)
    }

    @Test func codesBelow1000AreNotValidOnTheWire() {
        for c: UInt16 in [0, 1, 500, 999] { #expect(!WebSocketCloseCode(rawValue: c).isValidOnWire) }
    }

    @Test func definedCodes1000To1003And1007To1014AreValidOnTheWire() {
        for c: UInt16 in [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014] {
            #expect(WebSocketCloseCode(rawValue: c).isValidOnWire, "\(c)")
        }
    }

    @Test func reservedCode1004IsNotValidOnTheWire() {
        #expect(!WebSocketCloseCode(rawValue: 1004).isValidOnWire)
    }

    @Test func apiOnlyCodes1005_1006_1015AreNotValidOnTheWire() {
        for c: UInt16 in [1005, 1006, 1015] { #expect(!WebSocketCloseCode(rawValue: c).isValidOnWire) }
    }

    @Test func reservedRange1016To2999IsNotValidOnTheWire() {
        for c: UInt16 in [1016, 1100, 2000, 2999] { #expect(!WebSocketCloseCode(rawValue: c).isValidOnWire) }
    }

    @Test func registeredAndPrivateRange3000To4999IsValidOnTheWire() {
        for c: UInt16 in [3000, 3999, 4000, 4999] { #expect(WebSocketCloseCode(rawValue: c).isValidOnWire) }
    }

    @Test func codes5000AndAboveAreNotValidOnTheWire() {
        for c: UInt16 in [5000, 60000, 65535] { #expect(!WebSocketCloseCode(rawValue: c).isValidOnWire) }
    }

    @Test func opcodeControlBitIsTheHighBitOfTheNibble() {
        #expect(WebSocketOpcode.close.isControl && WebSocketOpcode.ping.isControl && WebSocketOpcode.pong.isControl)
        #expect(
            !WebSocketOpcode.text.isControl && !WebSocketOpcode.binary.isControl
                && !WebSocketOpcode.continuation.isControl)
    }
}
