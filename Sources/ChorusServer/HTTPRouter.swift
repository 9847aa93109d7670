import ChorusLoop
import ChorusWebSocket

/// Where a plain request goes, decided from the parsed request alone: the upgrade, the health
/// check, the operator's routes (metrics, dashboard), then the application's. It reads no socket
/// and queues nothing; `ServerLoop+HTTP.swift` carries out its answers, so routing is tested on
/// request heads (HTTPRouterTests).
struct HTTPRouter {
    /// What to do with a request head.
    enum HeadRoute {
        /// A WebSocket upgrade: validated and decided by `ServerLoop.upgrade`.
        case upgrade
        /// Answer now; `keepAlive`: the connection then waits for its next request.
        case respond(HTTPResponse, keepAlive: Bool)
        /// No body: the application answers the request (`answer`).
        case answer(HTTPRequest)
        /// Read the body (`framing`) first, after a 100 Continue when the client waits for one.
        case readBody(HTTPBodyFraming, sendContinue: Bool)
    }

    /// What the application made of a whole request.
    enum Answer {
        case respond(HTTPResponse, keepAlive: Bool)
        /// `ServerApplication.handleHTTPLater` took it: the answer arrives through `respondLater`.
        case later
    }

    static let health = HTTPResponse.text(200, "ok\n")

    let maxBodySize: Int
    let application: any ServerApplication

    func route(_ head: HTTPRequestHead, remoteAddress: SocketAddress, server: WebSocketServer) -> HeadRoute {
        if WebSocketHandshake.isUpgradeRequest(head) { return .upgrade }
        if head.method == "GET" && head.path == "/healthz" { return .respond(Self.health, keepAlive: false) }
        // The body's framing first (a malformed one is 400 whatever the route), then the
        // application's verdict on the head: a refused request's body is never read or held.
        let framing: HTTPBodyFraming
        switch HTTPBodyFraming.of(head, maxBodySize: maxBodySize) {
        case .failure(let error): return .respond(error.response, keepAlive: false)
        case .success(let f): framing = f
        }
        // Kept alive only when there is no unread body to skip.
        let keepAlive = framing == .none && head.keepsConnectionAlive
        // The operator's routes (metrics, dashboard) take no body and are answered on the head.
        if let operatorRoutes = server.operatorRoutes,
            let response = operatorRoutes(HTTPRequest(head: head, body: [], remoteAddress: remoteAddress), server)
        {
            return .respond(response, keepAlive: keepAlive)
        }
        if let refusal = application.respondBeforeBody(head, remoteAddress: remoteAddress) {
            return .respond(refusal, keepAlive: keepAlive)
        }
        guard framing != .none else { return .answer(HTTPRequest(head: head, body: [], remoteAddress: remoteAddress)) }
        return .readBody(framing, sendContinue: head.expectsContinue)
    }

    /// The application's answer to a whole request: deferred if it asks to be (`respondLater` is
    /// then called once, from any thread), else `handleHTTP`'s, 404 when it has none.
    func answer(
        _ request: HTTPRequest, server: WebSocketServer,
        respondLater: @escaping @Sendable (HTTPResponse) -> Void
    ) -> Answer {
        if application.handleHTTPLater(request, server: server, respond: respondLater) { return .later }
        let response = application.handleHTTP(request, server: server) ?? .webSocketEndpointNotFound
        return .respond(response, keepAlive: request.head.keepsConnectionAlive)
    }
}
