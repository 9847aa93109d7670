import ChorusWebSocket

/// Where a connection is in its life (HTTP request, open WebSocket, closing, closed) and the
/// RFC 6455 close handshake (§7), as a state machine: each event changes the state and returns what
/// the loop must do about it. It holds no socket, queue or clock, so every rule of the handshake is
/// tested on the struct alone (ConnectionLifecycleTests); `ServerLoop+Closing.swift` performs the
/// actions. Modelled on hummingbird's `WebSocketStateMachine`.
struct ConnectionLifecycle {
    enum State {
        /// Reading the HTTP request head.
        case http
        /// Reading a request body (non-upgrade routes only; the head waits in `HTTPExchange`).
        case httpBody
        /// Answered a plain HTTP request (or awaiting a deferred answer); closing once it is written.
        case httpDone
        case open
        /// Our close frame is queued or sent; waiting for the peer's close or FIN.
        case closing
        case closed
    }

    /// What the loop does after a close event.
    enum CloseAction: Equatable {
        case none
        /// Queue a close frame with this code (nil: an empty close, RFC 6455 §5.5.1) and reason. The
        /// connection has just left `open`: the loop tells the application, takes it out of its
        /// rooms, and gives the peer `closeTimeout` to answer.
        case sendClose(WebSocketCloseCode?, reason: String)
        /// Close the socket now.
        case finalize
    }

    /// What the loop does once everything queued for the connection is written.
    enum DrainAction: Equatable {
        case none
        /// Half-close: the peer reads what was sent, then sees our FIN.
        case shutdownWrite
        case finalize
    }

    private(set) var state = State.http
    private(set) var closeSent = false
    private(set) var closeReceived = false
    private(set) var writeShutDown = false
    /// After a protocol error or a written HTTP answer: read and discard until the peer's FIN.
    private(set) var discardInput = false
    /// The code of the peer's close frame (nil: none, or one without a code).
    private(set) var peerCloseCode: WebSocketCloseCode?
    /// The code of a close the server started (application, idle timeout, backpressure, protocol
    /// error, shutdown); nil when the peer closed first or vanished.
    private(set) var serverCloseCode: WebSocketCloseCode?

    var isOpen: Bool {
        if case .open = state { return true }
        return false
    }

    var isClosed: Bool {
        if case .closed = state { return true }
        return false
    }

    /// The code reported to the application when an open connection ends: the peer's, 1005 for a
    /// close frame without one, nil when the peer sent none (it vanished, or the server closed).
    var closeCodeForApplication: WebSocketCloseCode? {
        peerCloseCode ?? (closeReceived ? .noStatusReceived : nil)
    }

    // MARK: HTTP

    /// The head asks for a body: it is read next.
    mutating func readBody() {
        state = .httpBody
    }

    /// A response went out on a kept-alive connection: the next request is read.
    mutating func awaitNextRequest() {
        state = .http
    }

    /// The answer comes later (`ServerApplication.handleHTTPLater`): input is ignored meanwhile.
    mutating func awaitDeferredAnswer() {
        state = .httpDone
    }

    /// Still waiting for a deferred answer (none has been queued)?
    var awaitsDeferredAnswer: Bool {
        if case .httpDone = state { return !closeSent }
        return false
    }

    /// The final response is queued: the connection closes once it is written.
    mutating func answered() {
        state = .httpDone
        closeSent = true
    }

    mutating func upgraded() {
        state = .open
    }

    // MARK: The close handshake

    /// The server closes (the application, an idle timeout, backpressure, shutdown): an open
    /// connection sends `code` and waits for the peer's (RFC 6455 §7.1.2); a connection still in its
    /// request is dropped; one already closing goes on as it was.
    mutating func close(code: WebSocketCloseCode, reason: String) -> CloseAction {
        switch state {
        case .open:
            serverCloseCode = code
            closeSent = true
            state = .closing
            return .sendClose(code, reason: reason)
        case .http, .httpBody:
            return .finalize
        case .httpDone, .closing, .closed:
            return .none
        }
    }

    /// The peer broke the protocol (or a limit): "fail the WebSocket connection" (RFC 6455 §7.1.7):
    /// send `code` if still open, and read nothing more from it.
    mutating func fail(code: WebSocketCloseCode, reason: String) -> CloseAction {
        discardInput = true
        guard isOpen else { return .none }
        serverCloseCode = code
        closeSent = true
        state = .closing
        return .sendClose(code, reason: reason)
    }

    /// The peer's close frame. An open connection echoes its code (RFC 6455 §5.5.1; an empty close
    /// is answered empty); a closing one whose own close is already written is done.
    mutating func receivedClose(code: WebSocketCloseCode?, nothingQueued: Bool) -> CloseAction {
        closeReceived = true
        peerCloseCode = code
        if isOpen {
            closeSent = true
            state = .closing
            return .sendClose(code, reason: "")
        }
        if closeSent && nothingQueued { return .finalize }
        return .none
    }

    /// Everything queued is written.
    mutating func drained() -> DrainAction {
        switch state {
        case .httpDone:
            // Half-close so the response is read before the socket goes away.
            writeShutDown = true
            discardInput = true
            return .shutdownWrite
        case .closing where closeSent:
            // Handshake complete: the server closes the TCP connection first (RFC 6455 §7.1.1).
            if closeReceived { return .finalize }
            guard !writeShutDown else { return .none }
            writeShutDown = true
            return .shutdownWrite
        default:
            return .none
        }
    }

    /// The socket is closed (FIN, error, handshake done, timeout). False if it already was.
    mutating func finalize() -> Bool {
        if isClosed { return false }
        state = .closed
        return true
    }
}
