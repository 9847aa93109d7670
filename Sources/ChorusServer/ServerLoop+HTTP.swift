import ChorusLoop
import ChorusWebSocket
import Synchronization

// Plain HTTP requests (answered, kept alive or deferred) and the WebSocket upgrade.
extension ServerLoop {
    // MARK: HTTP

    func handleRequest(_ connection: Connection, _ head: HTTPRequestHead) {
        switch router.route(head, remoteAddress: connection.remoteAddress, server: server) {
        case .upgrade:
            upgrade(connection, head)
        case .respond(let response, let keepAlive):
            respond(connection, response, keepAlive: keepAlive)
        case .answer(let request):
            answerHTTP(connection, request)
        case .readBody(let framing, let sendContinue):
            if sendContinue { queueRaw(connection, Self.continueResponse) }
            guard let http = connection.http else { return }
            http.pendingBody = (head, HTTPBodyReader(framing: framing, maxBodySize: configuration.maxBodySize))
            connection.lifecycle.readBody()
        }
    }

    static let continueResponse = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)

    func answerHTTP(_ connection: Connection, _ request: HTTPRequest) {
        let id = connection.id
        switch router.answer(request, server: server, respondLater: { [server] in server.respondLater(id, $0) }) {
        case .later:
            // Awaiting the answer: input is ignored (.httpDone) and the handshake deadline still
            // runs; `closeSent` stays false until the answer is queued (the connection then closes).
            connection.lifecycle.awaitDeferredAnswer()
            connection.deadline = loop.now + UInt64(max(configuration.handshakeTimeout, 1) * 1e9)
        case .respond(let response, let keepAlive):
            respond(connection, response, keepAlive: keepAlive)
        }
    }

    /// Answers a plain request; with `keepAlive` the connection then waits for the next request
    /// (RFC 9112 §9.3) under a fresh handshake deadline, otherwise it closes after the response.
    func respond(_ connection: Connection, _ response: HTTPResponse, keepAlive: Bool) {
        guard keepAlive && !shuttingDown else {
            respondAndClose(connection, response)
            return
        }
        queueRaw(connection, response.serialize(closeConnection: false))
        connection.lifecycle.awaitNextRequest()
        connection.http?.requestsServed += 1
        connection.deadline =
            configuration.handshakeTimeout > 0 ? loop.now + UInt64(configuration.handshakeTimeout * 1e9) : 0
    }

    func upgrade(_ connection: Connection, _ head: HTTPRequestHead) {
        let request: WebSocketUpgradeRequest
        switch WebSocketHandshake.validate(head, subprotocols: configuration.subprotocols) {
        case .failure(let rejection):
            countRefusedRequest(rejection.response.status)
            respondAndClose(connection, rejection.response)
            return
        case .success(let valid):
            request = valid
        }
        if shuttingDown {
            refuse(connection, .shuttingDown)
            return
        }
        if case .reject(let response) = application.shouldUpgrade(head, remoteAddress: connection.remoteAddress) {
            countRefusedRequest(response.status)
            respondAndClose(connection, response)
            return
        }
        let agreement = request.extensionOffers.flatMap {
            PerMessageDeflateNegotiation.negotiate(offers: $0, config: configuration.deflate)
        }
        queueRaw(
            connection,
            WebSocketHandshake.switchingProtocolsResponse(request, extensions: agreement?.responseHeaderValue))
        connection.upgraded(subprotocol: request.subprotocol, agreement: agreement)
        connection.deadline = 0
        connection.openIndex = Int32(openConnections.count)
        openConnections.append(connection)
        if agreement != nil { server.compressionClients.add(1, ordering: .relaxed) }
        connection.opened = true
        application.connectionOpened(connection, request: head)
    }

    /// A deferred HTTP answer (`ServerApplication.handleHTTPLater`), on the connection's loop.
    func respondLater(_ connection: Connection, _ response: HTTPResponse) {
        guard connection.lifecycle.awaitsDeferredAnswer else { return }
        respondAndClose(connection, response)
    }

    /// A request refused before any upgrade (ServerError.swift decides the status), counted.
    func refuse(_ connection: Connection, _ refusal: RequestRefusal) {
        let response = refusal.response
        countRefusedRequest(response.status)
        respondAndClose(connection, response)
    }

    func respondAndClose(_ connection: Connection, _ response: HTTPResponse) {
        queueRaw(connection, response.serialize())
        connection.lifecycle.answered()
        connection.deadline = loop.now + UInt64(configuration.closeTimeout * 1e9)
    }
}
