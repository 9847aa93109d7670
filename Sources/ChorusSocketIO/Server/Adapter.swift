import ChorusJSON
import ChorusServer
import ChorusWebSocket
import Synchronization

/// Which sockets an operation is for: those of `namespace` in any of `rooms` (all of them when
/// `rooms` is empty) and in none of `except`. A socket is in the room named after its id.
public struct SocketSelector: Sendable, Hashable {
    public var namespace: String
    public var rooms: [String]
    public var except: [String]

    public init(namespace: String, rooms: [String] = [], except: [String] = []) {
        self.namespace = namespace
        self.rooms = rooms
        self.except = except
    }

    /// Loop thread of `socket` only.
    func matches(_ socket: Socket) -> Bool {
        guard socket.connected, socket.namespace.name == namespace else { return false }
        let inRoom = { (room: String) in room == socket.id || socket.isIn(room) }
        if !rooms.isEmpty && !rooms.contains(where: inRoom) { return false }
        return !except.contains(where: inRoom)
    }
}

/// A socket as `fetchSockets` describes it, on this node or another (Socket.IO's `RemoteSocket`
/// without its methods: use `io.to(id)` and the selector operations with its id as the room).
public struct SocketDescription: Sendable, Hashable {
    public var id: String
    /// Node's handshake shape: `{headers, time, address, xdomain, secure, issued, url, query, auth}`.
    public var handshake: JSONValue
    /// The rooms it is in, its own id first (as Node lists them).
    public var rooms: [String]
    /// `socket.data` as JSON (see `SocketDataRepresentable`), null otherwise.
    public var data: JSONValue

    public init(id: String, handshake: JSONValue, rooms: [String], data: JSONValue) {
        self.id = id
        self.handshake = handshake
        self.rooms = rooms
        self.data = data
    }
}

/// `socket.data` that other nodes may see in `fetchSockets` (Node sends `socket.data` as JSON).
public protocol SocketDataRepresentable {
    var socketDataJSON: JSONValue { get }
}

/// Why a cluster-wide operation did not complete.
public enum AdapterError: Error, Sendable, Hashable {
    /// Not every node answered within the request timeout (`--redis-request-timeout`).
    case timeout(received: Int, expected: Int)
    /// The cluster connection is down (Redis unreachable): only this node's part is known.
    case unavailable(String)
    /// The server is not running.
    case notRunning
}

/// A broadcast just delivered to this process's sockets, for the other nodes.
public struct AdapterBroadcast: Sendable {
    public var namespace: String
    /// `[event, ...args]`.
    public var data: [JSONValue]
    public var rooms: [String]
    /// Excluded rooms; a `socket.broadcast` emit excludes the sender's id (its own room).
    public var except: [String]
}

/// What a `SocketIOServer` tells the other nodes and asks them: the seam of Socket.IO's adapter.
/// Local delivery and local operations are done by the server itself before it calls these; an
/// adapter only adds the other nodes. The default, `InMemoryAdapter`, is one node: nothing to add.
/// Methods are called from any thread; completions may run on any thread.
public protocol SocketIOAdapter: AnyObject, Sendable {
    /// The server is accepting (its loops run): connect, subscribe.
    func start(io: SocketIOServer, server: WebSocketServer)
    /// The server is stopping.
    func stop()
    /// Publishes a broadcast this node just delivered locally.
    func broadcast(_ broadcast: AdapterBroadcast)
    /// The other nodes' sockets matching `selector` join `rooms`.
    func addSockets(_ selector: SocketSelector, rooms: [String])
    func delSockets(_ selector: SocketSelector, rooms: [String])
    func disconnectSockets(_ selector: SocketSelector, close: Bool)
    /// The other nodes' sockets matching `selector`, appended to `local`.
    func fetchSockets(
        _ selector: SocketSelector, local: [SocketDescription],
        completion: @escaping @Sendable (Result<[SocketDescription], AdapterError>) -> Void)
    /// Rooms of `namespace` on every node, `local` included.
    func allRooms(
        namespace: String, local: Set<String>,
        completion: @escaping @Sendable (Result<Set<String>, AdapterError>) -> Void)
    /// Server-side emit to the other nodes (`data`: `[event, ...args]`); with `ack`, one answer per node.
    func serverSideEmit(
        namespace: String, data: [JSONValue], ack: (@Sendable (Result<[JSONValue], AdapterError>) -> Void)?)
    /// Publishes a broadcast whose recipients answer: each other node reports `clientCount` once
    /// (the sockets it reached), then `ack` once per answer (the client's first argument), for
    /// `timeout` seconds at most.
    func broadcastWithAck(
        _ broadcast: AdapterBroadcast, timeout: Double,
        clientCount: @escaping @Sendable (Int) -> Void, ack: @escaping @Sendable (JSONValue) -> Void)
    /// Nodes in the cluster, this one included.
    func serverCount(completion: @escaping @Sendable (Result<Int, AdapterError>) -> Void)
    /// The adapter's counters as JSON (nil: nothing to report).
    func stats(_ completion: @escaping @Sendable (JSONValue?) -> Void)
}

/// A disconnected socket as a cluster-wide store keeps it (Socket.IO's `SessionToPersist`).
public struct PersistedSession: Sendable, Equatable {
    public var sid: String
    public var pid: String
    /// Every room it was in, its own id first (as Node persists `[...socket.rooms]`).
    public var rooms: [String]
    /// `socket.data` as JSON (see `SocketDataRepresentable`; `SocketIOServer.socketDataDecoder`
    /// turns it back into the application's object).
    public var data: JSONValue

    public init(sid: String, pid: String, rooms: [String], data: JSONValue) {
        self.sid = sid
        self.pid = pid
        self.rooms = rooms
        self.data = data
    }
}

/// A session taken back from a cluster-wide store, with what it missed.
public struct RestoredSession: Sendable {
    public var session: PersistedSession
    /// Each missed event's data array, `[event, ...args, offset]`, oldest first.
    public var missed: [[JSONValue]]

    public init(session: PersistedSession, missed: [[JSONValue]]) {
        self.session = session
        self.missed = missed
    }
}

/// An adapter that keeps connection state recovery's events and sessions for the whole cluster
/// (Socket.IO's Redis Streams adapter): a replayable event's offset is the cluster's, and a
/// session kept by one node can be restored by any. With one, the namespaces' local logs are not
/// used. Ordering contract: every callback below runs on the adapter's loop, and whatever it hands
/// to a loop's task queue (`WebSocketServer.emitInOrder`, `execute(onLoop:)`) reaches that loop in
/// the cluster's order.
public protocol ClusterRecoveryAdapter: SocketIOAdapter {
    /// Publishes a replayable broadcast and calls `deliver` with its offset once the cluster gave
    /// it one (nil: the cluster could not take it; it is delivered here without an offset).
    func publishReplayable(_ broadcast: AdapterBroadcast, deliver: @escaping @Sendable (_ offset: String?) -> Void)
    /// Keeps a session whose transport dropped for the recovery window.
    func persistSession(_ session: PersistedSession, namespace: String)
    /// Takes the session `pid` names and the events after `offset` it would have received, to be
    /// replayed on the reconnecting socket. Whatever `completion` hands to a loop runs there
    /// after every event this node delivered before and not replayed, and before those it
    /// delivers later, so the socket gets each event once.
    func restoreSession(
        pid: String, offset: String, namespace: String,
        completion: @escaping @Sendable (Result<RestoredSession, RecoveryRefusal>) -> Void)
}

/// One node: every operation is local and already done.
public final class InMemoryAdapter: SocketIOAdapter {
    public init() {}
    public func start(io: SocketIOServer, server: WebSocketServer) {}
    public func stop() {}
    public func broadcast(_ broadcast: AdapterBroadcast) {}
    public func addSockets(_ selector: SocketSelector, rooms: [String]) {}
    public func delSockets(_ selector: SocketSelector, rooms: [String]) {}
    public func disconnectSockets(_ selector: SocketSelector, close: Bool) {}
    public func fetchSockets(
        _ selector: SocketSelector, local: [SocketDescription],
        completion: @escaping @Sendable (Result<[SocketDescription], AdapterError>) -> Void
    ) {
        completion(.success(local))
    }
    public func allRooms(
        namespace: String, local: Set<String>,
        completion: @escaping @Sendable (Result<Set<String>, AdapterError>) -> Void
    ) {
        completion(.success(local))
    }
    public func serverSideEmit(
        namespace: String, data: [JSONValue], ack: (@Sendable (Result<[JSONValue], AdapterError>) -> Void)?
    ) {
        ack?(.success([]))
    }
    public func serverCount(completion: @escaping @Sendable (Result<Int, AdapterError>) -> Void) {
        completion(.success(1))
    }
    public func broadcastWithAck(
        _ broadcast: AdapterBroadcast, timeout: Double,
        clientCount: @escaping @Sendable (Int) -> Void, ack: @escaping @Sendable (JSONValue) -> Void
    ) {}
    public func stats(_ completion: @escaping @Sendable (JSONValue?) -> Void) { completion(nil) }
}

/// The answers to a broadcast with acknowledgements, from every node: complete once every node
/// reported how many sockets it reached and that many answers came, or at the timeout.
final class AckCollector: Sendable {
    private struct State {
        var expectedNodes: Int?
        var reportedNodes = 0
        var expectedAnswers = 0
        var answers: [JSONValue] = []
        var done = false
    }
    private let state = Mutex(State())
    private let completion: @Sendable ([JSONValue], Bool) -> Void

    init(completion: @escaping @Sendable (_ answers: [JSONValue], _ timedOut: Bool) -> Void) {
        self.completion = completion
    }

    func nodes(_ count: Int) { update { $0.expectedNodes = max(count, 1) } }
    func reached(_ clients: Int) {
        update {
            $0.reportedNodes += 1; $0.expectedAnswers += clients
        }
    }
    func answer(_ value: JSONValue) { update { $0.answers.append(value) } }

    func timeout() {
        let answers: [JSONValue]? = state.withLock { s in
            guard !s.done else { return nil }
            s.done = true
            return s.answers
        }
        if let answers { completion(answers, true) }
    }

    private func update(_ body: (inout State) -> Void) {
        let finished: [JSONValue]? = state.withLock { s in
            guard !s.done else { return nil }
            body(&s)
            guard let nodes = s.expectedNodes, s.reportedNodes >= nodes, s.answers.count >= s.expectedAnswers else {
                return nil
            }
            s.done = true
            return s.answers
        }
        if let finished { completion(finished, false) }
    }
}
