import ChorusWebSocket
import Testing

@testable import ChorusServer

/// The close handshake (RFC 6455 §7) on the state machine alone: no socket, no loop.
@Suite("Connection lifecycle")
struct ConnectionLifecycleTests {
    static func open() -> ConnectionLifecycle {
        var lifecycle = ConnectionLifecycle()
        lifecycle.upgraded()
        return lifecycle
    }

    @Test func aServerCloseSendsItsCodeAndLeavesOpen() {
        var lifecycle = Self.open()
        let step1 = lifecycle.close(code: .goingAway, reason: "idle timeout")
        #expect(step1 == .sendClose(.goingAway, reason: "idle timeout"))
        #expect(!lifecycle.isOpen && lifecycle.closeSent)
        #expect(lifecycle.serverCloseCode == .goingAway)
        // A second close (the application, then shutdown) sends nothing more.
        let step2 = lifecycle.close(code: .normalClosure, reason: "")
        #expect(step2 == .none)
        #expect(lifecycle.serverCloseCode == .goingAway)
    }

    @Test func aConnectionStillInItsRequestIsDroppedOnClose() {
        var lifecycle = ConnectionLifecycle()
        let step3 = lifecycle.close(code: .goingAway, reason: "")
        #expect(step3 == .finalize)
        #expect(lifecycle.serverCloseCode == nil)
    }

    /// §7.1.1: after sending and receiving a close, the server closes the TCP connection first.
    @Test func afterBothClosesTheServerClosesTheSocketOnceItsCloseIsWritten() {
        var lifecycle = Self.open()
        _ = lifecycle.close(code: .normalClosure, reason: "")
        // The peer answers while our close is still queued: wait for the write.
        let step4 = lifecycle.receivedClose(code: .normalClosure, nothingQueued: false)
        #expect(step4 == .none)
        let step5 = lifecycle.drained()
        #expect(step5 == .finalize)
        let step6 = lifecycle.finalize()
        #expect(step6)
        let step7 = lifecycle.finalize()
        #expect(!step7)
    }

    @Test func aPeersCloseAfterOursIsWrittenClosesAtOnce() {
        var lifecycle = Self.open()
        _ = lifecycle.close(code: .normalClosure, reason: "")
        let step8 = lifecycle.drained()
        #expect(step8 == .shutdownWrite)
        let step9 = lifecycle.receivedClose(code: .normalClosure, nothingQueued: true)
        #expect(step9 == .finalize)
    }

    /// Waiting for the peer's close, our side is half-closed once, not on every drain.
    @Test func aWrittenCloseHalfClosesOnce() {
        var lifecycle = Self.open()
        _ = lifecycle.close(code: .normalClosure, reason: "")
        let step10 = lifecycle.drained()
        #expect(step10 == .shutdownWrite)
        #expect(lifecycle.writeShutDown)
        let step11 = lifecycle.drained()
        #expect(step11 == .none)
    }

    /// §5.5.1: the endpoint that receives a close echoes its status code.
    @Test func aPeersCloseIsEchoedWithItsCode() {
        var lifecycle = Self.open()
        let step12 = lifecycle.receivedClose(code: .goingAway, nothingQueued: true)
        #expect(step12 == .sendClose(.goingAway, reason: ""))
        #expect(lifecycle.serverCloseCode == nil)
        #expect(lifecycle.closeCodeForApplication == .goingAway)
        let step13 = lifecycle.drained()
        #expect(step13 == .finalize)
    }

    @Test func anEmptyCloseIsAnsweredEmptyAndReportedAs1005() {
        var lifecycle = Self.open()
        let step14 = lifecycle.receivedClose(code: nil, nothingQueued: true)
        #expect(step14 == .sendClose(nil, reason: ""))
        #expect(lifecycle.closeCodeForApplication == .noStatusReceived)
    }

    @Test func aVanishedPeerReportsNoCode() {
        var lifecycle = Self.open()
        let step15 = lifecycle.finalize()
        #expect(step15)
        #expect(lifecycle.closeCodeForApplication == nil)
    }

    /// §7.1.7: a protocol error fails the connection: our close goes out, the peer's bytes are ignored.
    @Test func aProtocolErrorSendsItsCodeAndDiscardsInput() {
        var lifecycle = Self.open()
        let step16 = lifecycle.fail(code: .protocolError, reason: "bad frame")
        #expect(step16 == .sendClose(.protocolError, reason: "bad frame"))
        #expect(lifecycle.discardInput)
        #expect(lifecycle.serverCloseCode == .protocolError)
        // Already closing: nothing more is sent, input stays ignored.
        let step17 = lifecycle.fail(code: .messageTooBig, reason: "")
        #expect(step17 == .none)
        #expect(lifecycle.serverCloseCode == .protocolError)
    }

    @Test func aWrittenHTTPAnswerHalfClosesAndIgnoresInput() {
        var lifecycle = ConnectionLifecycle()
        lifecycle.answered()
        #expect(!lifecycle.awaitsDeferredAnswer)
        let step18 = lifecycle.drained()
        #expect(step18 == .shutdownWrite)
        #expect(lifecycle.discardInput)
        let step19 = lifecycle.close(code: .goingAway, reason: "")
        #expect(step19 == .none)
    }

    @Test func aDeferredAnswerIsAwaitedUntilOneIsQueued() {
        var lifecycle = ConnectionLifecycle()
        lifecycle.awaitDeferredAnswer()
        #expect(lifecycle.awaitsDeferredAnswer)
        lifecycle.answered()
        #expect(!lifecycle.awaitsDeferredAnswer)
    }

    @Test func aKeptAliveConnectionReadsItsNextRequest() {
        var lifecycle = ConnectionLifecycle()
        lifecycle.readBody()
        lifecycle.awaitNextRequest()
        guard case .http = lifecycle.state else { Issue.record("state \(lifecycle.state)"); return }
        #expect(!lifecycle.closeSent)
    }
}
