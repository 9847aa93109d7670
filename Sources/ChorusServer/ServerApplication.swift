import ChorusLoop
import ChorusWebSocket

/// A complete WebSocket message. The bytes are valid only during the callback.
public enum WebSocketMessage {
    case text(UnsafeRawBufferPointer)
    case binary(UnsafeRawBufferPointer)
}

/// A plain HTTP request (not an upgrade) with its body.
public struct HTTPRequest: Sendable {
    public var head: HTTPRequestHead
    public var body: [UInt8]
    public var remoteAddress: SocketAddress
}

public enum UpgradeDecision: Sendable {
    case accept
    case reject(HTTPResponse)
}

/// What runs on top of the server. Every callback runs on the loop thread that owns the connection;
/// a connection may be used only there. `WebSocketServer.emit` is the thread-safe way to reach others.
public protocol ServerApplication: AnyObject, Sendable {
    func serverDidStart(_ server: WebSocketServer)
    /// A non-upgrade request's head, before any of its body is read: nil to read the body and
    /// call `handleHTTP`, or the answer (a refusal: 401, 404, 405, 413...), in which case the body
    /// is never read. Routing and authorisation belong here, so that an unauthenticated client
    /// cannot make the server hold a body.
    func respondBeforeBody(_ head: HTTPRequestHead, remoteAddress: SocketAddress) -> HTTPResponse?
    /// Non-upgrade requests other than `GET /healthz`. Return nil for 404.
    func handleHTTP(_ request: HTTPRequest, server: WebSocketServer) -> HTTPResponse?
    /// Asked first: a request whose answer is not ready at once (e.g. a cluster-wide query). Return
    /// true and call `respond` once, from any thread; false to be asked `handleHTTP`. Without an
    /// answer within the handshake timeout the connection is closed.
    func handleHTTPLater(
        _ request: HTTPRequest, server: WebSocketServer, respond: @escaping @Sendable (HTTPResponse) -> Void
    ) -> Bool
    /// Decides on a valid WebSocket upgrade (routing, authentication).
    func shouldUpgrade(_ head: HTTPRequestHead, remoteAddress: SocketAddress) -> UpgradeDecision
    func connectionOpened(_ connection: Connection, request: HTTPRequestHead)
    func connection(_ connection: Connection, received message: WebSocketMessage)
    /// Called once per opened connection. `code` is the peer's close code, or nil if it vanished.
    /// The connection is no longer open (nothing reaches it) but still in its rooms, which the
    /// loop leaves right after.
    func connectionClosed(_ connection: Connection, code: WebSocketCloseCode?)
    /// The loop's periodic timer tick (resolution from `ServerConfiguration.tickNanoseconds`), on loop
    /// `loopIndex`'s thread: the place for the application's own timers (Engine.IO pings, ack timeouts).
    func tick(loopIndex: Int, now: UInt64)
    /// Messages from `connection` were dropped for its rate limit (policy `drop`): `dropped` since the
    /// last call. At most one call per connection per second, so that a flood does not become a
    /// flood of warnings. The place to tell the client in the application's own protocol.
    func connectionRateLimited(_ connection: Connection, dropped: Int)
}

extension ServerApplication {
    public func serverDidStart(_ server: WebSocketServer) {}
    public func respondBeforeBody(_ head: HTTPRequestHead, remoteAddress: SocketAddress) -> HTTPResponse? { nil }
    public func handleHTTP(_ request: HTTPRequest, server: WebSocketServer) -> HTTPResponse? { nil }
    public func handleHTTPLater(
        _ request: HTTPRequest, server: WebSocketServer,
        respond: @escaping @Sendable (HTTPResponse) -> Void
    ) -> Bool { false }
    public func shouldUpgrade(_ head: HTTPRequestHead, remoteAddress: SocketAddress) -> UpgradeDecision { .accept }
    public func connectionOpened(_ connection: Connection, request: HTTPRequestHead) {}
    public func connectionClosed(_ connection: Connection, code: WebSocketCloseCode?) {}
    public func tick(loopIndex: Int, now: UInt64) {}
    /// Plain WebSocket apps have no message to warn with: the drop is only counted.
    public func connectionRateLimited(_ connection: Connection, dropped: Int) {}
}

extension HTTPResponse {
    /// The answer to a plain request on a server without HTTP routes.
    public static let webSocketEndpointNotFound = HTTPResponse.text(
        404, "not found: this is a WebSocket endpoint (send an Upgrade: websocket request)\n")
}

/// `--app echo`: every message goes back to its sender (the conformance suite's target).
public final class EchoApplication: ServerApplication {
    public init() {}
    /// No HTTP routes: a plain request is refused on its head, its body never read.
    public func respondBeforeBody(_ head: HTTPRequestHead, remoteAddress: SocketAddress) -> HTTPResponse? {
        .webSocketEndpointNotFound
    }
    public func connection(_ connection: Connection, received message: WebSocketMessage) {
        switch message {
        case .text(let bytes): connection.send(.text, bytes)
        case .binary(let bytes): connection.send(.binary, bytes)
        }
    }
}

/// `--app broadcast`: every connection is in one room; any message goes to all, sender included.
public final class BroadcastApplication: ServerApplication {
    public static let room = "all"
    public init() {}
    public func respondBeforeBody(_ head: HTTPRequestHead, remoteAddress: SocketAddress) -> HTTPResponse? {
        .webSocketEndpointNotFound
    }
    public func connectionOpened(_ connection: Connection, request: HTTPRequestHead) {
        connection.join(Self.room)
    }
    public func connection(_ connection: Connection, received message: WebSocketMessage) {
        let server = connection.server
        switch message {
        case .text(let bytes): server.emit(.text, bytes, to: .rooms([Self.room]))
        case .binary(let bytes): server.emit(.binary, bytes, to: .rooms([Self.room]))
        }
    }
}
