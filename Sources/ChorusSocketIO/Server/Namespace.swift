import ChorusServer
import ChorusWebSocket

/// The result of a connection middleware.
public enum MiddlewareResult: Sendable {
    case accept
    /// Refuses the connection: the client gets CONNECT_ERROR `{"message": message[, "data": data]}`.
    case reject(message: String, data: JSONValue? = nil)
}

/// The result of an asynchronous connection middleware (`Namespace.use(async:)`).
public enum AsyncMiddlewareResult: Sendable {
    /// Accepts; `data`, if any, becomes `socket.data` (on the loop thread) before the next
    /// middleware and the connection handlers run.
    case accept(data: (any AnyObject & Sendable)? = nil)
    /// Refuses the connection: the client gets CONNECT_ERROR `{"message": message[, "data": data]}`.
    case reject(message: String, data: JSONValue? = nil)
}

/// A connection middleware as registered: synchronous (on the loop thread) or asynchronous
/// (in a Swift concurrency task, the CONNECT parked meanwhile).
enum Middleware {
    case sync(@Sendable (Socket) -> MiddlewareResult)
    case async(@Sendable (Handshake) async -> AsyncMiddlewareResult)
}

public typealias EventHandler = @Sendable (_ socket: Socket, _ args: [JSONValue], _ ack: Ack?) -> Void

/// A Socket.IO namespace ("/" or "/admin"...). Configure it (middleware, handlers) before the
/// server starts; afterwards it is read-only, and its emit methods are safe from any thread.
public final class Namespace: @unchecked Sendable {
    public let name: String
    unowned let io: SocketIOServer
    var middlewares: [Middleware] = []
    var connectionHandlers: [@Sendable (Socket) -> Void] = []
    var eventHandlers: [String: EventHandler] = [:]
    var unknownEventHandler: (@Sendable (Socket, String, [JSONValue], Ack?) -> Void)?

    init(name: String, io: SocketIOServer) {
        self.name = name
        self.io = io
    }

    /// Connection middleware, run in order at each CONNECT (synchronous and asynchronous ones
    /// alike); the first rejection wins. This one runs on the connection's loop thread and must
    /// not block: `socket.handshake` (auth payload, query, headers) is available; set
    /// `socket.data` here.
    public func use(_ middleware: @escaping @Sendable (Socket) -> MiddlewareResult) {
        middlewares.append(.sync(middleware))
    }

    /// Asynchronous connection middleware (token verification, a database look-up...). It runs
    /// in a Swift concurrency task on the global executor, off the loop threads, with the
    /// handshake. Meanwhile the CONNECT is parked: packets the client sends to this namespace are
    /// queued (at most `SocketIOConfiguration.maxPendingPackets` / `maxPayload` bytes, beyond
    /// that the connection is closed) and replayed after the CONNECT reply. The result hops back
    /// to the connection's loop (`WebSocketServer.withConnection`), where the remaining
    /// middleware runs and the client gets CONNECT or CONNECT_ERROR. If the client disconnects
    /// (or leaves the namespace) first, the result is dropped: nothing is sent.
    public func use(async middleware: @escaping @Sendable (Handshake) async -> AsyncMiddlewareResult) {
        middlewares.append(.async(middleware))
    }

    /// Runs for every socket that connected (middleware passed).
    public func onConnection(_ handler: @escaping @Sendable (Socket) -> Void) {
        connectionHandlers.append(handler)
    }

    /// An event handler shared by every socket of the namespace (cheaper than per-socket `on`,
    /// which takes precedence).
    public func on(_ event: String, _ handler: @escaping EventHandler) {
        eventHandlers[event] = handler
    }

    /// Events no handler is registered for.
    public func onUnknownEvent(_ handler: @escaping @Sendable (Socket, String, [JSONValue], Ack?) -> Void) {
        unknownEventHandler = handler
    }

    // MARK: Broadcasting (any thread)

    public func to(_ rooms: [String]) -> BroadcastOperator { BroadcastOperator(io: io, namespace: name).to(rooms) }
    public func to(_ rooms: String...) -> BroadcastOperator { to(rooms) }
    public func except(_ rooms: [String]) -> BroadcastOperator { BroadcastOperator(io: io, namespace: name).except(rooms) }

    /// To every socket of the namespace.
    @discardableResult
    public func emit(_ event: String, _ args: JSONValue...) -> Bool {
        BroadcastOperator(io: io, namespace: name).emit(event, args)
    }

    /// Sockets of this namespace in this process (all loops).
    public var socketCount: Int { io.rooms.members(of: name) }
}

/// `io.to("room").except("other").emit(...)`: serialised once, framed once, delivered by the
/// server's encode-once broadcast. Safe from any thread.
public struct BroadcastOperator: Sendable {
    let io: SocketIOServer
    public let namespace: String
    public private(set) var rooms: [String] = []
    public private(set) var exceptRooms: [String] = []
    var exceptConnection: ConnectionID?

    init(io: SocketIOServer, namespace: String, exceptConnection: ConnectionID? = nil) {
        self.io = io
        self.namespace = namespace
        self.exceptConnection = exceptConnection
    }

    public func to(_ rooms: [String]) -> BroadcastOperator {
        var copy = self
        copy.rooms += rooms
        return copy
    }
    public func to(_ rooms: String...) -> BroadcastOperator { to(rooms) }
    public func `in`(_ rooms: String...) -> BroadcastOperator { to(rooms) }

    public func except(_ rooms: [String]) -> BroadcastOperator {
        var copy = self
        copy.exceptRooms += rooms
        return copy
    }
    public func except(_ rooms: String...) -> BroadcastOperator { except(rooms) }

    /// The server-level target: namespaced room keys; no rooms = the whole namespace.
    public var target: BroadcastTarget {
        BroadcastTarget(
            rooms: rooms.isEmpty ? [namespace] : rooms.map { SocketIOServer.roomKey(namespace, $0) },
            exceptRooms: exceptRooms.map { SocketIOServer.roomKey(namespace, $0) },
            exceptConnection: exceptConnection)
    }

    /// Sockets in this process the emit reaches now (all loops; see `RoomDirectory`).
    public var recipientCount: Int { io.rooms.count(target) }

    /// Emits to the target. False if the server is not running.
    @discardableResult
    public func emit(_ event: String, _ args: JSONValue...) -> Bool { emit(event, args) }

    @discardableResult
    public func emit(_ event: String, _ args: [JSONValue]) -> Bool {
        guard let server = io.webSocketServer else { return false }
        let packet = SocketIOPacket.event(namespace: namespace, event, args)
        let (text, attachments) = packet.encode(engineIOPrefix: true)
        let target = self.target
        let frame = text.withUnsafeBytes { server.makeFrame(.text, $0) }
        if attachments.isEmpty {
            server.emit(frame, to: target)
        } else {
            // A binary event is only meaningful whole: every recipient gets all frames or none.
            let binaries = attachments.map { a in a.withUnsafeBytes { server.makeFrame(.binary, $0) } }
            server.emit(frames: [frame] + binaries, to: target)
        }
        return true
    }
}
