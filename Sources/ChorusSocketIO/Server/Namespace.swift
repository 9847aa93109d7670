import ChorusLoop
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
    var serverSideHandlers: [String: ServerSideEventHandler] = [:]
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
    public func except(_ rooms: [String]) -> BroadcastOperator { BroadcastOperator(io: io, namespace: name).except(rooms) }

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
    public func disconnectSockets(close: Bool = false) { BroadcastOperator(io: io, namespace: name).disconnectSockets(close: close) }

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
    public func serverSideEmitWithAck(_ event: String, _ args: [JSONValue] = []) async throws(AdapterError) -> [JSONValue] {
        try await withAdapterResult { io.adapter.serverSideEmit(namespace: name, data: [.string(event)] + args, ack: $0) }
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
public typealias ServerSideEventHandler = @Sendable (_ args: [JSONValue], _ ack: (@Sendable (JSONValue) -> Void)?) -> Void

/// `io.to("room").except("other").emit(...)`: serialised once, framed once, delivered by the
/// server's encode-once broadcast. Safe from any thread.
public struct BroadcastOperator: Sendable {
    let io: SocketIOServer
    public let namespace: String
    public private(set) var rooms: [String] = []
    public private(set) var exceptRooms: [String] = []
    var exceptConnection: ConnectionID?
    /// The socket `exceptConnection` belongs to, excluded on the other nodes by its room.
    var exceptSocketID: String?
    /// This node only: nothing is published to the adapter.
    public private(set) var isLocal = false

    init(io: SocketIOServer, namespace: String, exceptConnection: ConnectionID? = nil, exceptSocketID: String? = nil) {
        self.io = io
        self.namespace = namespace
        self.exceptConnection = exceptConnection
        self.exceptSocketID = exceptSocketID
    }

    /// The same target on this node only (Socket.IO's `local` flag).
    public var local: BroadcastOperator {
        var copy = self
        copy.isLocal = true
        return copy
    }

    /// The sockets this operator selects, as the adapter names them (the sender's id excluded).
    public var selector: SocketSelector {
        SocketSelector(namespace: namespace, rooms: rooms, except: exceptRooms + (exceptSocketID.map { [$0] } ?? []))
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

    /// Sockets in this process the emit reaches now (all loops; see `RoomDirectory`). With a cluster
    /// adapter, the other nodes' recipients are not counted.
    public var recipientCount: Int { io.rooms.count(target) }

    /// Emits to the target. False if the server is not running.
    @discardableResult
    public func emit(_ event: String, _ args: JSONValue...) -> Bool { emit(event, args) }

    @discardableResult
    public func emit(_ event: String, _ args: [JSONValue]) -> Bool {
        guard let server = io.webSocketServer else { return false }
        io.countEmit(namespace: namespace, event: event, loopIndex: server.currentLoopIndex)
        let packet = SocketIOPacket.event(namespace: namespace, event, args)
        let (text, attachments) = packet.encode(engineIOPrefix: true)
        let target = self.target
        if io.configuration.recovery != nil, let recovery = io.namespace(namespace)?.recovery {
            // Numbered and delivered in that order on every loop (see RecoveryLog.append).
            let selector = self.selector
            recovery.append(rooms: selector.rooms, except: selector.except, now: monotonicNanoseconds(),
                            build: { offset in Self.frames(server, text, attachments, offset: offset) },
                            deliver: { server.emitInOrder(frames: $0, to: target) })
        } else {
            sendNow(server, text, attachments, target)
        }
        if !isLocal {
            let selector = self.selector
            io.adapter.broadcast(AdapterBroadcast(
                namespace: namespace, data: [.string(event)] + args, rooms: selector.rooms, except: selector.except))
        }
        return true
    }

    /// An event's frames, with `offset` as its last argument: `42["e",...]` becomes
    /// `42["e",...,"<offset>"]` (the data array's closing bracket is the last byte).
    static func frames(_ server: WebSocketServer, _ text: [UInt8], _ attachments: [[UInt8]], offset: String?) -> [OutgoingFrame] {
        var text = text
        if let offset, text.last == UInt8(ascii: "]") {
            text.removeLast()
            text.append(UInt8(ascii: ","))
            text.append(UInt8(ascii: "\""))
            text.append(contentsOf: offset.utf8)
            text.append(UInt8(ascii: "\""))
            text.append(UInt8(ascii: "]"))
        }
        return [text.withUnsafeBytes { server.makeFrame(.text, $0) }]
            + attachments.map { a in a.withUnsafeBytes { server.makeFrame(.binary, $0) } }
    }

    private func sendNow(_ server: WebSocketServer, _ text: [UInt8], _ attachments: [[UInt8]], _ target: BroadcastTarget) {
        let frame = text.withUnsafeBytes { server.makeFrame(.text, $0) }
        if attachments.isEmpty {
            server.emit(frame, to: target)
        } else {
            // A binary event is only meaningful whole: every recipient gets all frames or none.
            let binaries = attachments.map { a in a.withUnsafeBytes { server.makeFrame(.binary, $0) } }
            server.emit(frames: [frame] + binaries, to: target)
        }
    }

    // MARK: Cluster-wide operations (any thread)

    /// Emits to the target, on every node, asking each recipient for an acknowledgement (Socket.IO's
    /// `io.timeout(ms).emit(event, ..., (err, responses) => ...)`): the answers (each client's first
    /// argument) once every recipient answered, or those received within `timeout` seconds with
    /// `timedOut` set. Each recipient's packet carries its own ack id, so it is encoded per socket.
    public func emitWithAck(_ event: String, _ args: [JSONValue] = [], timeout: Double) async -> (answers: [JSONValue], timedOut: Bool) {
        let selector = self.selector
        let io = self.io
        let local = isLocal
        io.countEmit(namespace: namespace, event: event, loopIndex: io.webSocketServer?.currentLoopIndex)
        return await withCheckedContinuation { continuation in
            let collector = AckCollector { answers, timedOut in continuation.resume(returning: (answers, timedOut)) }
            Task {
                try? await Task.sleep(for: .milliseconds(Int64(max(timeout, 0) * 1000)))
                collector.timeout()
            }
            if local {
                collector.nodes(1)
            } else {
                io.serverCount { collector.nodes((try? $0.get()) ?? 1) }
                io.adapter.broadcastWithAck(
                    AdapterBroadcast(namespace: namespace, data: [.string(event)] + args, rooms: selector.rooms, except: selector.except),
                    timeout: timeout, clientCount: { collector.reached($0) }, ack: { collector.answer($0) })
            }
            io.withLocalSockets(selector, { socket -> Bool? in
                // Counted once above, not per recipient.
                socket.emit(event, args, timeout: timeout, counted: false) { result in
                    if case .success(let answer) = result { collector.answer(answer.first ?? .null) }
                }
                return true
            }, completion: { reached in collector.reached(reached.count) })
        }
    }

    /// The sockets selected, on every node (this one's first).
    public func fetchSockets() async throws(AdapterError) -> [SocketDescription] {
        let selector = self.selector
        let local = isLocal
        let io = self.io
        return try await withAdapterResult { completion in
            io.localSocketDescriptions(selector) { found in
                if local { return completion(.success(found)) }
                io.adapter.fetchSockets(selector, local: found, completion: completion)
            }
        }
    }

    /// The selected sockets, on every node, join `rooms`.
    public func socketsJoin(_ rooms: [String]) {
        io.localSocketsJoin(selector, rooms: rooms)
        if !isLocal { io.adapter.addSockets(selector, rooms: rooms) }
    }
    public func socketsJoin(_ rooms: String...) { socketsJoin(rooms) }

    public func socketsLeave(_ rooms: [String]) {
        io.localSocketsLeave(selector, rooms: rooms)
        if !isLocal { io.adapter.delSockets(selector, rooms: rooms) }
    }
    public func socketsLeave(_ rooms: String...) { socketsLeave(rooms) }

    /// The selected sockets, on every node, leave the namespace; `close` also closes their connections.
    public func disconnectSockets(close: Bool = false) {
        io.localDisconnectSockets(selector, close: close)
        if !isLocal { io.adapter.disconnectSockets(selector, close: close) }
    }
}
