import ChorusWebSocket
import Testing

@testable import ChorusSocketIO

/// The one table of how the server ends an Engine.IO session (SessionCloseCause.swift): the reason
/// its sockets see (the reference server's strings) and the close code on the wire.
@Suite struct SessionCloseCauseTests {
    static let table: [(SessionCloseCause, String, UInt16)] = [
        (.clientClosed, "forced close", 1000),
        (.closedByServer, "forced server close", 1000),
        (.pingTimeout, "ping timeout", 1001),
        (.messageTooLarge, "transport error", 1009),
        (.invalidPacket, "parse error", 1008),
        (.invalidState, "forced server close", 1008),
        (.tooManyPendingPackets, "transport error", 1008),
        (.connectTimeout, "transport close", 1008),
    ]

    @Test func eachCauseHasItsReasonAndCode() {
        #expect(
            Self.table.map(\.0).sorted { "\($0)" < "\($1)" } == SessionCloseCause.allCases.sorted { "\($0)" < "\($1)" })
        for (cause, reason, code) in Self.table {
            #expect(cause.disconnectReason.rawValue == reason, "\(cause)")
            #expect(cause.closeCode.rawValue == code, "\(cause)")
            #expect(cause.closeCode.isValidOnWire)
        }
    }

    /// Connection state recovery keeps the session of a client that did not leave on purpose; a
    /// client that broke the protocol (parse error) starts afresh.
    @Test func onlyAnInvalidPacketEndsTheSessionForGood() {
        for cause in SessionCloseCause.allCases {
            #expect(cause.disconnectReason.isRecoverable == (cause != .invalidPacket), "\(cause)")
        }
    }

    /// engine.io's `Server.errors`: code, message, and 400 for each.
    @Test func engineIOHandshakeErrorsAreTheReferenceTable() {
        let table: [(EngineIOHandshakeError, Int, String)] = [
            (.unknownTransport, 0, "Transport unknown"),
            (.unknownSessionID, 1, "Session ID unknown"),
            (.badHandshakeMethod, 2, "Bad handshake method"),
            (.badRequest, 3, "Bad request"),
            (.unsupportedProtocolVersion, 5, "Unsupported protocol version"),
        ]
        #expect(table.map(\.0) == EngineIOHandshakeError.allCases)
        for (error, code, message) in table {
            #expect(error.rawValue == code && error.message == message && error.status == 400)
            let body = String(decoding: error.response.body, as: UTF8.self)
            #expect(body == #"{"code":\#(code),"message":"\#(message)"}"#)
        }
    }
}
