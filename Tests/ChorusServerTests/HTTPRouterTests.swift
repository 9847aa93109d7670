import ChorusLoop
import ChorusWebSocket
import Synchronization
import Testing

@testable import ChorusServer

/// An application with one route: `/refused` is answered 403 on its head, `/later` is deferred,
/// `/hello` answers 200; anything else has no route (nil).
final class OneRouteApp: ServerApplication {
    let heads = Mutex(0)
    func respondBeforeBody(_ head: HTTPRequestHead, remoteAddress: SocketAddress) -> HTTPResponse? {
        heads.withLock { $0 += 1 }
        return head.path == "/refused" ? .text(403, "no\n") : nil
    }
    func handleHTTPLater(
        _ request: HTTPRequest, server: WebSocketServer,
        respond: @escaping @Sendable (HTTPResponse) -> Void
    ) -> Bool {
        request.head.path == "/later"
    }
    func connection(_ connection: Connection, received message: WebSocketMessage) {}
    func handleHTTP(_ request: HTTPRequest, server: WebSocketServer) -> HTTPResponse? {
        request.head.path == "/hello" ? .text(200, "hello \(request.body.count)\n") : nil
    }
}

/// Routing on parsed heads: no socket, no loop (the server is never started).
@Suite("HTTP router")
struct HTTPRouterTests {
    let app = OneRouteApp()
    let server: WebSocketServer
    let router: HTTPRouter
    let address: SocketAddress

    init() throws {
        server = WebSocketServer(configuration: ServerConfiguration(), application: app)
        router = HTTPRouter(maxBodySize: 1000, application: app)
        address = try SocketAddress(host: "127.0.0.1", port: 1)
    }

    func route(
        _ method: String, _ target: String, _ headers: [(name: String, value: String)] = [], versionMinor: Int = 1
    ) -> HTTPRouter.HeadRoute {
        router.route(
            HTTPRequestHead(method: method, target: target, versionMinor: versionMinor, headers: headers),
            remoteAddress: address, server: server)
    }

    /// The status and keep-alive of a `.respond` route (nil for any other route).
    func response(_ route: HTTPRouter.HeadRoute) -> (status: Int, keepAlive: Bool)? {
        guard case .respond(let response, let keepAlive) = route else { return nil }
        return (response.status, keepAlive)
    }

    @Test func anUpgradeGoesToTheHandshakeWhateverItsPath() {
        guard case .upgrade = route("GET", "/anything", [("Upgrade", "websocket"), ("Connection", "Upgrade")]) else {
            Issue.record("not routed to the upgrade"); return
        }
    }

    @Test func healthIsAnsweredWithoutTheApplicationAndCloses() {
        let r = response(route("GET", "/healthz"))
        #expect(r?.status == 200 && r?.keepAlive == false)
        #expect(app.heads.withLock { $0 } == 0)
    }

    /// RFC 9112 §6.3: ambiguous framing is refused before any route, and the connection closes.
    @Test func ambiguousFramingIs400BeforeAnyRoute() {
        let r = response(route("POST", "/hello", [("Content-Length", "5"), ("Content-Length", "5")]))
        #expect(r?.status == 400 && r?.keepAlive == false)
        #expect(app.heads.withLock { $0 } == 0)
    }

    @Test func aDeclaredBodyOverTheLimitIs413() {
        #expect(response(route("POST", "/hello", [("Content-Length", "1001")]))?.status == 413)
    }

    @Test func operatorRoutesAnswerOnTheHeadBeforeTheApplication() {
        server.operatorRoutes = { request, _ in request.head.path == "/metrics" ? .text(200, "m\n") : nil }
        let r = response(route("GET", "/metrics"))
        #expect(r?.status == 200 && r?.keepAlive == true)
        #expect(app.heads.withLock { $0 } == 0)
        // Other paths fall through to the application.
        guard case .answer = route("GET", "/hello") else { Issue.record("not answered by the application"); return }
    }

    /// A refused request's body is never read, so the connection cannot be kept alive past it.
    @Test func aRefusalOnTheHeadKeepsTheConnectionOnlyWithoutABody() {
        #expect(response(route("GET", "/refused"))?.keepAlive == true)
        #expect(response(route("POST", "/refused", [("Content-Length", "10")]))?.keepAlive == false)
        #expect(response(route("GET", "/refused", [("Connection", "close")]))?.keepAlive == false)
        #expect(response(route("GET", "/refused", versionMinor: 0))?.keepAlive == false)
    }

    @Test func aBodyIsReadBeforeTheApplicationAnswers() {
        guard case .readBody(let framing, let sendContinue) = route("POST", "/hello", [("Content-Length", "10")]) else {
            Issue.record("body not read"); return
        }
        #expect(framing == .length(10) && !sendContinue)
        guard
            case .readBody(let chunked, let continues) = route(
                "POST", "/hello", [("Transfer-Encoding", "chunked"), ("Expect", "100-continue")])
        else {
            Issue.record("body not read"); return
        }
        #expect(chunked == .chunked && continues)
    }

    @Test func theApplicationAnswersAWholeRequestOr404() {
        let head = HTTPRequestHead(method: "POST", target: "/hello")
        guard
            case .respond(let hello, let keepAlive) = router.answer(
                HTTPRequest(head: head, body: [1, 2, 3], remoteAddress: address), server: server, respondLater: { _ in }
            )
        else {
            Issue.record("not answered"); return
        }
        #expect(hello.status == 200 && hello.body == Array("hello 3\n".utf8) && keepAlive)
        guard
            case .respond(let missing, _) = router.answer(
                HTTPRequest(head: HTTPRequestHead(method: "GET", target: "/nowhere"), body: [], remoteAddress: address),
                server: server, respondLater: { _ in })
        else {
            Issue.record("not answered"); return
        }
        #expect(missing.status == 404)
    }

    @Test func aDeferredAnswerIsLeftToTheApplication() {
        guard
            case .later = router.answer(
                HTTPRequest(head: HTTPRequestHead(method: "GET", target: "/later"), body: [], remoteAddress: address),
                server: server, respondLater: { _ in })
        else {
            Issue.record("not deferred"); return
        }
    }
}
