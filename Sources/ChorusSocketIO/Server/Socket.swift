import ChorusJSON
import ChorusLoop
import ChorusServer
import ChorusWebSocket

/// What the client sent when it connected.
public struct Handshake: Sendable {
    /// Kept packed (one block, not a String per header) for as long as the socket lives.
    private let packedRequest: PackedRequestHead
    private let remoteAddress: SocketAddress
    /// The request head (parsed again from the packed copy at each call: read it once).
    public var request: HTTPRequestHead { packedRequest.head }
    /// The client's address, as `host:port`.
    public var address: String { remoteAddress.description }
    /// The CONNECT packet's auth payload (`{}` when absent).
    public let auth: JSONValue
    /// When the client connected to the namespace (milliseconds since 1970, wall clock).
    public let issued: Int64
    public func query(_ name: String) -> String? { request.queryValue(name) }
    public func header(_ name: String) -> String? { request.value(of: name) }

    init(request: PackedRequestHead, address: SocketAddress, auth: JSONValue, issued: Int64) {
        self.packedRequest = request
        self.remoteAddress = address
        self.auth = auth
        self.issued = issued
    }
}

/// The answer to an event the client emitted with an ack callback. Call it once.
public struct Ack {
    let socket: Socket
    public let id: Int

    public func callAsFunction(_ args: JSONValue...) { send(args) }

    public func send(_ args: [JSONValue]) {
        guard socket.connected else { return }
        socket.session.send(SocketIOPacket(type: .ack, namespace: socket.namespace.name, ackId: id, data: .array(args)))
    }
}

/// What connection state recovery leaves for a socket's admission (in `SocketExtras`: a few
/// sockets hold it for a moment).
enum PendingRestore {
    /// The client's offset: admission restores the session from this node's log.
    case fromOffset(String)
    /// Rooms and missed events of a session restored from the cluster's store, kept while the
    /// middleware runs (admission joins and replays them).
    case fromCluster(rooms: [String], missed: [[OutgoingFrame]])
}

public enum AckError: Error, Sendable, Equatable {
    case timeout
    case disconnected
}

/// One client in one namespace. Lives on its connection's loop thread: use it only in the
/// callbacks it is handed to (or via `SocketIOServer.withSocket`).
public final class Socket {
    /// The Socket.IO socket id (also a room the socket is in).
    public let id: String
    public let namespace: Namespace
    /// What the client sent when it connected: its session's upgrade request and address, read
    /// from the session (one copy per client, not per socket), with this CONNECT's auth and time.
    public var handshake: Handshake {
        Handshake(request: session.request, address: session.connection.remoteAddress, auth: auth, issued: issued)
    }
    private let auth: JSONValue
    private let issued: Int64
    /// Whatever middleware attaches (e.g. the authenticated user).
    @exclusivity(unchecked) public var data: AnyObject?
    /// The private session id recovery restores it by (nil: recovery is off). Never shared.
    var pid: String? { privateID?.string }
    // The object fits a 144-byte malloc chunk (SessionTableTests checks it; 224 before): the
    // handshake's request and address are the session's, its rooms its connection's, what few
    // sockets use is boxed in `extras`, and `privateID` is 16 bytes.
    private let privateID: PrivateSessionID?
    /// The rooms it joined (its own id's room aside); none once it is disconnected (its connection
    /// may hold a later socket of the same namespace by then).
    public var rooms: Set<String> { connected ? Set(joined.names) : [] }
    /// Its rooms, as its connection holds them.
    var joined: SocketRooms { SocketRooms(connection: session.connection, namespace: namespace.name, ownID: id) }
    @exclusivity(unchecked) public internal(set) var connected = false
    /// Whether this socket is a disconnected one restored by connection state recovery (same id,
    /// rooms and data; the events it missed were sent before its CONNECT reply).
    @exclusivity(unchecked) public internal(set) var recovered = false
    /// Connection state recovery's work left for admission (nil for nearly every socket: kept in `extras`).
    var pendingRestore: PendingRestore? {
        get { extras?.pendingRestore }
        set {
            guard newValue != nil || extras != nil else { return }
            withExtras.pendingRestore = newValue
        }
    }
    let session: EngineSession

    /// The first disconnect handler inline (a socket has one at most, usually), any others in `extras`.
    @exclusivity(unchecked) var disconnectHandler: ((Socket, DisconnectReason) -> Void)?
    /// Its own event handlers, more disconnect handlers, the acks it awaits: nil until first used.
    @exclusivity(unchecked) private var extras: SocketExtras?

    /// `handshake`: this CONNECT's, on `session`'s request and address (the socket keeps its auth
    /// and time, and reads the rest from the session).
    init(id: String, namespace: Namespace, handshake: Handshake, session: EngineSession, pid: String? = nil) {
        self.id = id
        self.namespace = namespace
        self.auth = handshake.auth
        self.issued = handshake.issued
        self.session = session
        self.privateID = pid.map(PrivateSessionID.init)
    }

    public var connectionID: ConnectionID { session.connection.id }
    /// The Engine.IO session id (shared by the sockets of one connection).
    public var engineID: String { session.sid }

    // MARK: Handlers

    public func on(_ event: String, _ handler: @escaping EventHandler) { withExtras.handlers[event] = handler }

    public func onDisconnect(_ handler: @escaping (Socket, DisconnectReason) -> Void) {
        if disconnectHandler == nil {
            disconnectHandler = handler
        } else {
            withExtras.moreDisconnectHandlers.append(handler)
        }
    }

    /// This socket's own handler of `event`, if it registered one.
    func handler(of event: String) -> EventHandler? { extras?.handlers[event] }

    var hasPendingAcks: Bool { extras.map { !$0.pendingAcks.isEmpty } ?? false }

    /// The callback awaiting the ack `id`, taken out.
    func takePendingAck(_ id: Int) -> ((Result<[JSONValue], AckError>) -> Void)? {
        extras?.pendingAcks.removeValue(forKey: id)?.callback
    }

    private var withExtras: SocketExtras {
        if let extras { return extras }
        let created = SocketExtras()
        extras = created
        return created
    }

    // MARK: Rooms

    public func join(_ room: String) { _ = join(room, limit: .max) }

    /// Joins `room` unless this node's sockets fill it to `limit` already (0 or less: nobody may
    /// join); true when the socket is in it (it was, or it joined). Counted and joined in one step under the room directory's lock,
    /// so that concurrent joins on different loops cannot overshoot (e.g. connections per user,
    /// counted as the sockets in the user's room).
    public func join(_ room: String, limit: Int) -> Bool {
        // A closing connection takes no room: the directory must not get one it would keep.
        guard connected, session.connection.isOpen else { return false }
        if room == id || joined.key(of: room) != nil { return true }
        // The directory's own copy of the key, if the room exists: shared, not one per member.
        guard
            let key = namespace.io.rooms.join(SocketIOServer.roomKey(namespace.name, room), connectionID, limit: limit)
        else { return false }
        session.connection.join(key)
        return true
    }

    public func leave(_ room: String) {
        guard connected, let key = joined.key(of: room) else { return }
        session.connection.leave(key)
        namespace.io.rooms.leave(key, connectionID)
    }

    public func isIn(_ room: String) -> Bool { connected && joined.key(of: room) != nil }

    // MARK: Emitting

    /// To this socket only.
    public func emit(_ event: String, _ args: JSONValue...) { emit(event, args) }

    public func emit(_ event: String, _ args: [JSONValue]) {
        if privateID != nil, let cluster = namespace.io.clusterRecovery {
            if connected {
                namespace.io.countEmit(namespace: namespace.name, event: event, loopIndex: session.connection.loopIndex)
            }
            emitPublished(event, args, cluster)
            return
        }
        if let recovery = namespace.recovery, privateID != nil {
            if connected {
                namespace.io.countEmit(namespace: namespace.name, event: event, loopIndex: session.connection.loopIndex)
            }
            emitLogged(event, args, recovery)
            return
        }
        guard connected else { return }
        namespace.io.countEmit(namespace: namespace.name, event: event, loopIndex: session.connection.loopIndex)
        session.send(SocketIOPacket.event(namespace: namespace.name, event, args))
    }

    /// With recovery, as Socket.IO does it: logged for this socket's room, with an offset, and
    /// sent through this loop's task queue behind the broadcasts numbered before it. While the
    /// socket is disconnected the event is only logged: a recovery replays it.
    private func emitLogged(_ event: String, _ args: [JSONValue], _ recovery: RecoveryLog) {
        let connection = session.connection
        let server = connection.server
        let (text, attachments) = SocketIOPacket.event(namespace: namespace.name, event, args).encode(
            engineIOPrefix: true)
        let live = connected
        recovery.append(
            rooms: [id], except: [], now: monotonicNanoseconds(),
            build: { offset in BroadcastOperator.frames(server, text, attachments, offset: offset) },
            deliver: { frames in
                guard live else { return }
                server.withConnection(connection.id) { connection in
                    if frames.count == 1 { connection.send(frames[0]) } else { connection.send(group: frames) }
                }
            })
    }

    /// The same with a cluster store: published for this socket's room, so that whichever node
    /// the client comes back to replays it, and sent here once the cluster numbered it.
    private func emitPublished(_ event: String, _ args: [JSONValue], _ cluster: any ClusterRecoveryAdapter) {
        let connection = session.connection
        let server = connection.server
        let (text, attachments) = SocketIOPacket.event(namespace: namespace.name, event, args).encode(
            engineIOPrefix: true)
        let live = connected
        let id = connection.id
        cluster.publishReplayable(
            AdapterBroadcast(namespace: namespace.name, data: [.string(event)] + args, rooms: [self.id], except: [])
        ) { offset in
            guard live else { return }
            let frames = BroadcastOperator.frames(server, text, attachments, offset: offset)
            server.withConnection(id) { connection in
                if frames.count == 1 { connection.send(frames[0]) } else { connection.send(group: frames) }
            }
        }
    }

    /// With an ack callback: called once with the client's answer, or `.timeout` after `timeout`
    /// seconds, or `.disconnected`.
    public func emit(
        _ event: String, _ args: [JSONValue], timeout: Double,
        ack: @escaping (Result<[JSONValue], AckError>) -> Void
    ) {
        emit(event, args, timeout: timeout, counted: true, ack: ack)
    }

    /// `counted: false` for one recipient of a broadcast with acks whose caller counted the emit
    /// once (`SocketIOServer.countEmit`), so a broadcast is not counted per recipient.
    public func emit(
        _ event: String, _ args: [JSONValue], timeout: Double, counted: Bool,
        ack: @escaping (Result<[JSONValue], AckError>) -> Void
    ) {
        guard connected else { ack(.failure(.disconnected)); return }
        if counted {
            namespace.io.countEmit(namespace: namespace.name, event: event, loopIndex: session.connection.loopIndex)
        }
        let extras = withExtras
        let id = extras.nextAckId
        extras.nextAckId += 1
        extras.pendingAcks[id] = (session.now &+ UInt64(max(timeout, 0) * 1e9), ack)
        session.armAckTimers()
        session.send(SocketIOPacket.event(namespace: namespace.name, event, args, ackId: id))
    }

    /// To the given rooms of this namespace, except this socket.
    public func to(_ rooms: String...) -> BroadcastOperator { broadcast.to(rooms) }

    /// To every socket of the namespace except this one.
    public var broadcast: BroadcastOperator {
        BroadcastOperator(
            io: namespace.io, namespace: namespace.name, exceptConnection: connectionID, exceptSocketID: id)
    }

    // MARK: Leaving

    /// Leaves the namespace (client gets DISCONNECT); `close` also closes the whole connection.
    public func disconnect(close: Bool = false) {
        if close {
            session.close(.closedByServer)
            return
        }
        guard connected else { return }
        session.send(SocketIOPacket.disconnect(namespace: namespace.name))
        session.removeSocket(self, reason: .serverNamespaceDisconnect)
    }

    func didDisconnect(reason: DisconnectReason) {
        guard connected else { return }
        connected = false
        let joinedKeys = joined.keys
        let keys = [namespace.name, SocketIOServer.roomKey(namespace.name, id)] + joinedKeys
        for key in keys { session.connection.leave(key) }
        namespace.io.rooms.leave(keys, connectionID)
        let joinedNames = joined.names(of: joinedKeys)
        if let recovery = namespace.recovery, let pid, reason.isRecoverable, let cluster = namespace.io.clusterRecovery
        {
            cluster.persistSession(
                PersistedSession(
                    sid: id, pid: pid, rooms: [id] + joinedNames.sorted(),
                    data: (data as? SocketDataRepresentable)?.socketDataJSON ?? .null),
                namespace: namespace.name)
            recovery.countPersisted()
        } else if let recovery = namespace.recovery, let pid, reason.isRecoverable {
            recovery.persist(
                SavedSession(
                    sid: id, pid: pid, rooms: joinedNames, data: data,
                    disconnectedAt: monotonicNanoseconds())
            )
        }
        let acks = extras?.pendingAcks ?? [:]
        extras?.pendingAcks.removeAll()
        for (_, pending) in acks.sorted(by: { $0.key < $1.key }) { pending.callback(.failure(.disconnected)) }
        disconnectHandler?(self, reason)
        for handler in extras?.moreDisconnectHandlers ?? [] { handler(self, reason) }
        namespace.io.recordDisconnect(reason)
    }

    func expireAcks(now: UInt64) {
        guard let extras, !extras.pendingAcks.isEmpty else { return }
        let expired = extras.pendingAcks.filter { $0.value.deadline <= now }.keys.sorted()
        for id in expired {
            if let pending = extras.pendingAcks.removeValue(forKey: id) { pending.callback(.failure(.timeout)) }
        }
    }
}

/// What few sockets use, boxed: 8 bytes in every socket instead of 40 (its own event handlers are
/// an application's choice, acks awaited and a restore in progress come and go); the socket
/// allocates it on first use.
final class SocketExtras {
    var handlers: [String: EventHandler] = [:]
    var moreDisconnectHandlers: [(Socket, DisconnectReason) -> Void] = []
    var nextAckId = 0
    var pendingRestore: PendingRestore?
    var pendingAcks: [Int: (deadline: UInt64, callback: (Result<[JSONValue], AckError>) -> Void)] = [:]
}
