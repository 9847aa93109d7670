import ChorusJSON
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
/// Unchecked Sendable: handlers and middleware are mutable only before the server starts (a
/// configuration phase on one thread); afterwards they are only read, and what changes at run time
/// is behind a lock (`RecoveryLog`) or per loop.
public final class Namespace: @unchecked Sendable {
    public let name: String
    unowned let io: SocketIOServer
    @exclusivity(unchecked) var middlewares: [Middleware] = []
    @exclusivity(unchecked) var connectionHandlers: [@Sendable (Socket) -> Void] = []
    @exclusivity(unchecked) var eventHandlers: [String: EventHandler] = [:]
    @exclusivity(unchecked) var unknownEventHandler: (@Sendable (Socket, String, [JSONValue], Ack?) -> Void)?
    @exclusivity(unchecked) var serverSideHandlers: [String: ServerSideEventHandler] = [:]
    /// The events kept for clients that come back (nil: recovery is off).
    let recovery: RecoveryLog?

    init(name: String, io: SocketIOServer) {
        self.name = name
        self.io = io
        recovery = io.configuration.recovery.map(RecoveryLog.init)
    }

    /// What connection state recovery did in this namespace (nil: recovery is off).
    public var recoveryCounters: RecoveryCounters? { recovery?.counters }

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
    public func except(_ rooms: [String]) -> BroadcastOperator {
        BroadcastOperator(io: io, namespace: name).except(rooms)
    }

    /// To every socket of the namespace.
    @discardableResult
    public func emit(_ event: String, _ args: JSONValue...) -> Bool {
        BroadcastOperator(io: io, namespace: name).emit(event, args)
    }

    /// Sockets of this namespace in this process (all loops).
    public var socketCount: Int { io.rooms.members(of: name) }

    // MARK: Cluster-wide (any thread)

    /// This namespace on this node only (`io.local` in Socket.IO).
    public var local: BroadcastOperator { BroadcastOperator(io: io, namespace: name).local }

    public func fetchSockets() async throws(AdapterError) -> [SocketDescription] {
        try await BroadcastOperator(io: io, namespace: name).fetchSockets()
    }

    public func socketsJoin(_ rooms: String...) { BroadcastOperator(io: io, namespace: name).socketsJoin(rooms) }
    public func socketsLeave(_ rooms: String...) { BroadcastOperator(io: io, namespace: name).socketsLeave(rooms) }
    public func disconnectSockets(close: Bool = false) {
        BroadcastOperator(io: io, namespace: name).disconnectSockets(close: close)
    }

    /// Rooms of this namespace with members on any node (socket-id rooms included, as in Node).
    public func allRooms() async throws(AdapterError) -> Set<String> {
        let local = io.localRooms(namespace: name)
        return try await withAdapterResult { io.adapter.allRooms(namespace: name, local: local, completion: $0) }
    }

    /// Handles `event` emitted by another node with `serverSideEmit` (Socket.IO's `io.on(event)`).
    /// `ack`, when the sender waits for one: call it once with one value. Runs on any thread.
    public func onServerSideEmit(_ event: String, _ handler: @escaping ServerSideEventHandler) {
        serverSideHandlers[event] = handler
    }

    /// Emits `event` to the other nodes' `onServerSideEmit` handlers (not to clients).
    public func serverSideEmit(_ event: String, _ args: [JSONValue] = []) {
        io.adapter.serverSideEmit(namespace: name, data: [.string(event)] + args, ack: nil)
    }

    /// The same, waiting for every other node's acknowledgement (`--redis-request-timeout`).
    public func serverSideEmitWithAck(_ event: String, _ args: [JSONValue] = []) async throws(AdapterError)
        -> [JSONValue]
    {
        try await withAdapterResult {
            io.adapter.serverSideEmit(namespace: name, data: [.string(event)] + args, ack: $0)
        }
    }

    /// Whether `onServerSideEmit` registered a handler for `event`.
    public func hasServerSideHandler(_ event: String) -> Bool { serverSideHandlers[event] != nil }

    /// A server-side emit from another node (`data`: `[event, ...args]`), for the adapter.
    public func receiveServerSideEmit(_ data: [JSONValue], ack: (@Sendable (JSONValue) -> Void)?) {
        guard let event = data.first?.stringValue, let handler = serverSideHandlers[event] else { return }
        handler(Array(data.dropFirst()), ack)
    }
}

/// A server-side event handler: the arguments, and the acknowledgement to call once if the
/// sender waits for one.
public typealias ServerSideEventHandler =
    @Sendable (_ args: [JSONValue], _ ack: (@Sendable (JSONValue) -> Void)?) -> Void
