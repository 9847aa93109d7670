// One Engine.IO connection on its loop: the sockets it has in each namespace, the CONNECT flow
// (middleware, parked CONNECTs, connection state recovery's restore), packets in, heartbeat, close.
// Over the ~400-line guide: the CONNECT flow (middleware, parked CONNECTs, the local and the
// cluster restore) is one sequence over one session's private state; split, its steps would need
// that state opened up.

import ChorusJSON
import ChorusLoop
import ChorusServer
import ChorusWebSocket
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// A loop's sessions (confined to that loop's thread).
/// Unchecked Sendable: created before the loops start, then touched only by its loop's thread.
final class LoopSessions: @unchecked Sendable {
    /// An array, each session knowing its index (`loopSlot`) for an O(1) swap-remove: a dictionary
    /// entry would be ~35 bytes per client at its usual load, an array slot ~12.
    @exclusivity(unchecked) private var sessions: ContiguousArray<EngineSession> = []
    /// Plain counters of this loop's thread; `SocketIOServer.tick` publishes them.
    @exclusivity(unchecked) var counters = SocketIOEventCounters()

    var count: Int { sessions.count }

    func add(_ s: EngineSession) {
        guard s.loopSlot < 0 else { return }
        s.loopSlot = Int32(sessions.count)
        sessions.append(s)
    }

    /// Over a snapshot: `body` may add or remove sessions.
    func forEachSession(_ body: (EngineSession) -> Void) {
        let snapshot = sessions
        for s in snapshot { body(s) }
    }

    func remove(_ s: EngineSession) {
        let slot = Int(s.loopSlot)
        guard slot >= 0, slot < sessions.count, sessions[slot] === s else { return }
        let last = sessions.count - 1
        if slot != last {
            sessions[slot] = sessions[last]
            sessions[slot].loopSlot = Int32(slot)
        }
        sessions.removeLast()
        s.loopSlot = -1
    }

    func tick(now: UInt64) {
        guard !sessions.isEmpty else { return }
        forEachSession { $0.tick(now: now) }
    }
}

/// A namespace CONNECT parked while an asynchronous middleware runs (loop-confined).
final class PendingConnect {
    let socket: Socket
    /// Tells this attempt from a later CONNECT to the same namespace.
    let ticket: UInt64
    /// The middleware after the one awaited.
    let resumeAt: Int
    /// Packets for the namespace received meanwhile, replayed after the CONNECT reply.
    @exclusivity(unchecked) var queued: [SessionInput]
    @exclusivity(unchecked) var queuedBytes: Int
    /// When the middleware has taken too long (nil: no limit).
    @exclusivity(unchecked) var deadline: UInt64?
    /// The middleware's task, cancelled at the deadline.
    @exclusivity(unchecked) var task: Task<Void, Never>?

    init(socket: Socket, ticket: UInt64, resumeAt: Int, queued: [SessionInput], queuedBytes: Int, deadline: UInt64?) {
        self.socket = socket
        self.ticket = ticket
        self.resumeAt = resumeAt
        self.queued = queued
        self.queuedBytes = queuedBytes
        self.deadline = deadline
    }
}

/// One Engine.IO connection and its sockets (one per namespace).
final class EngineSession {
    unowned let io: SocketIOServer
    // Strong: sockets retained by user closures stay safe after close (send on a closed connection is a no-op).
    let connection: Connection
    let sid = EngineIOSessionID.generate()
    /// The upgrade request, packed: every namespace's handshake shares it.
    let request: PackedRequestHead
    @exclusivity(unchecked) var core: SessionCore
    // The small fields follow the 9-byte `heartbeat` (the timing is the server's), in its tail;
    // `sockets` is 8 bytes: a 144-byte malloc chunk (SessionTableTests checks it; 192 before).
    @exclusivity(unchecked) var heartbeat: Heartbeat
    @exclusivity(unchecked) var ackTimersArmed = false
    @exclusivity(unchecked) var closeReason: DisconnectReason?
    /// Its index in its loop's `LoopSessions` (-1: not in it).
    @exclusivity(unchecked) var loopSlot: Int32 = -1
    @exclusivity(unchecked) var now: UInt64
    @exclusivity(unchecked) var sockets = SessionSockets()
    /// CONNECTs awaiting an asynchronous middleware, by namespace.
    @exclusivity(unchecked) var pendingConnects: [String: PendingConnect] = [:]
    @exclusivity(unchecked) private var lastTicket: UInt64 = 0
    /// When the client must have connected to a namespace (0: no limit, or it has).
    @exclusivity(unchecked) var connectDeadline: UInt64 = 0

    init(io: SocketIOServer, connection: Connection, request: HTTPRequestHead, now: UInt64) {
        self.io = io
        self.connection = connection
        self.request = PackedRequestHead(request)
        self.now = now
        let c = io.configuration
        core = io.sessionCoreTemplate
        heartbeat = Heartbeat(io.heartbeatTiming, now: now)
        connectDeadline = c.connectTimeout > 0 ? max(now &+ UInt64(c.connectTimeout * 1e9), 1) : 0
    }

    func send(_ packet: SocketIOPacket) {
        let (text, attachments) = packet.encode(engineIOPrefix: true)
        if attachments.isEmpty {
            connection.send(.text, text)
            return
        }
        // A binary packet is only meaningful whole: never split by the backpressure limit.
        let server = connection.server
        let frames =
            [server.makeFrame(.text, text)]
            + attachments.map { a in server.makeFrame(.binary, a) }
        connection.send(group: frames)
    }

    func sendRaw(_ bytes: [UInt8]) { connection.send(.text, bytes) }

    func armAckTimers() { ackTimersArmed = true }

    /// `size`: the bytes of the message the input came from (bounds what a parked CONNECT queues).
    func handle(_ input: SessionInput, size: Int = 0) {
        switch input {
        case .none:
            break
        case .pong:
            heartbeat.pongReceived(now: now, io.heartbeatTiming)
        case .ping(let data):
            var out: [UInt8] = []
            EngineIOPacket.pong(data).encodeText(into: &out)
            sendRaw(out)
        case .close:
            close(.clientClosed)
        case .tooLarge:
            close(.messageTooLarge)
        case .invalid(let why):
            io.logger.debug("closing connection", metadata: ["reason": "parse error", "detail": "\(why)"])
            close(.invalidPacket)
        case .connect(let name, let auth):
            connect(namespace: name, auth: auth)
        case .disconnect(let name):
            if let socket = sockets[name] {
                removeSocket(socket, reason: .clientNamespaceDisconnect)
            } else if pendingConnects[name] != nil {
                // Leaving while the CONNECT is parked: the middleware's result will be dropped.
                pendingConnects[name] = nil
            } else {
                invalidState("DISCONNECT", name)
            }
        case .event(let name, let event, let args, let ackId):
            guard let socket = sockets[name], socket.connected else {
                if let pending = pendingConnects[name] {
                    queue(input, size: size, in: pending)
                } else {
                    invalidState("EVENT", name)
                }
                return
            }
            let ack = ackId.map { Ack(socket: socket, id: $0) }
            let counters = io.loopSessions[connection.loopIndex]
            if ackId != nil { counters.counters.acksRequested &+= 1 }
            if let handler = socket.handler(of: event) ?? socket.namespace.eventHandlers[event] {
                // Only registered names are counted by name: a client cannot grow the label set.
                counters.counters.eventsIn[.init(namespace: name, event: event), default: 0] &+= 1
                handler(socket, args, ack)
            } else {
                counters.counters.eventsIn[
                    .init(namespace: name, event: SocketIOEventCounters.otherEvent), default: 0] &+= 1
                socket.namespace.unknownEventHandler?(socket, event, args, ack)
            }
        case .ack(let name, let id, let args):
            guard let socket = sockets[name] else {
                invalidState("ACK", name)
                return
            }
            // An ack nobody waits for (late, or a made-up id) is ignored, as the reference does.
            guard let callback = socket.takePendingAck(id) else { return }
            io.loopSessions[connection.loopIndex].counters.acksReceived &+= 1
            callback(.success(args))
        }
    }

    /// A packet that is wrong for the namespace's state (socket.io's `Client.ondecoded`: anything
    /// but CONNECT for a namespace without a socket, a CONNECT for one with a socket): the
    /// reference closes the whole connection ("invalid state"), and so do we. The one extension:
    /// packets for a namespace whose CONNECT is parked on an asynchronous middleware are queued.
    private func invalidState(_ packet: String, _ namespace: String) {
        io.logger.debug(
            "closing connection",
            metadata: ["reason": "invalid state", "packet": "\(packet)", "namespace": "\(namespace)"])
        close(.invalidState)
    }

    private func connect(namespace name: String, auth: JSONValue?) {
        guard let namespace = io.namespace(name) else {
            send(.connectError(namespace: name, message: "Invalid namespace"))
            io.count("connect_error")
            io.count("connect_error:Invalid namespace")
            return
        }
        // Already connected: the reference closes the connection. Being connected (parked on an
        // asynchronous middleware): the duplicate is ignored.
        if sockets[name] != nil {
            invalidState("CONNECT", name)
            return
        }
        if pendingConnects[name] != nil { return }
        let handshake = Handshake(
            request: request, address: connection.remoteAddress, auth: auth ?? .object([:]),
            issued: wallClockMilliseconds())
        if let recovery = namespace.recovery {
            if let pid = auth?["pid"]?.stringValue, let offset = auth?["offset"]?.stringValue,
                let cluster = io.clusterRecovery
            {
                let fresh = Socket(
                    id: EngineIOSessionID.generateSocketID(), namespace: namespace, handshake: handshake, session: self,
                    pid: EngineIOSessionID.generateSecret())
                restoreFromCluster(fresh, pid: pid, offset: offset, cluster: cluster)
                return
            }
            // `{"pid":..., "offset":...}` from a client that had a session: restored if still known.
            if let pid = auth?["pid"]?.stringValue, let offset = auth?["offset"]?.stringValue,
                case .success(let saved) = recovery.check(pid: pid, offset: offset, now: monotonicNanoseconds())
            {
                let socket = Socket(
                    id: saved.sid, namespace: namespace, handshake: handshake, session: self, pid: saved.pid)
                socket.data = saved.data
                socket.pendingRestore = .fromOffset(offset)
                if recovery.configuration.skipMiddlewares {
                    admit(socket, replaying: [])
                } else {
                    runMiddleware(socket, from: 0, queued: [], queuedBytes: 0)
                }
                return
            }
            let socket = Socket(
                id: EngineIOSessionID.generateSocketID(), namespace: namespace, handshake: handshake, session: self,
                pid: EngineIOSessionID.generateSecret())
            runMiddleware(socket, from: 0, queued: [], queuedBytes: 0)
            return
        }
        let socket = Socket(
            id: EngineIOSessionID.generateSocketID(), namespace: namespace, handshake: handshake, session: self)
        runMiddleware(socket, from: 0, queued: [], queuedBytes: 0)
    }

    /// Runs the namespace's middleware from `index`: synchronous ones inline, then either parks
    /// the CONNECT at an asynchronous one, or refuses, or admits the socket.
    private func runMiddleware(_ socket: Socket, from index: Int, queued: [SessionInput], queuedBytes: Int) {
        let middlewares = socket.namespace.middlewares
        var i = index
        while i < middlewares.count {
            switch middlewares[i] {
            case .sync(let middleware):
                if case .reject(let message, let data) = middleware(socket) {
                    refuse(socket.namespace.name, message: message, data: data)
                    return
                }
            case .async(let middleware):
                guard connection.isOpen else { return }
                lastTicket &+= 1
                let name = socket.namespace.name
                let timeout = io.configuration.middlewareTimeout
                let pending = PendingConnect(
                    socket: socket, ticket: lastTicket, resumeAt: i + 1, queued: queued, queuedBytes: queuedBytes,
                    deadline: timeout > 0 ? now &+ UInt64(timeout * 1e9) : nil)
                pendingConnects[name] = pending
                pending.task = io.runAsyncMiddleware(
                    middleware, handshake: socket.handshake, connection: connection.id, namespace: name,
                    ticket: lastTicket)
                return
            }
            i += 1
        }
        admit(socket, replaying: queued)
    }

    /// Refuses the CONNECTs whose asynchronous middleware passed `middlewareTimeout`: a middleware
    /// that never finishes must not hold the namespace (and its queued packets) until the
    /// connection's own timeout.
    private func expireMiddlewares(now: UInt64) {
        for (name, pending) in pendingConnects {
            guard let deadline = pending.deadline, now >= deadline else { continue }
            pendingConnects[name] = nil
            pending.task?.cancel()
            io.count("middleware_timeout")
            refuse(name, message: "middleware timeout", data: nil)
        }
    }

    private func refuse(_ name: String, message: String, data: JSONValue?) {
        send(.connectError(namespace: name, message: message, data: data))
        io.count("connect_error")
        // The middleware's message is the reason (the application's own, bounded set of strings).
        io.count("connect_error:" + String(message.prefix(64)))
    }

    /// An asynchronous middleware's result, back on the loop thread.
    func resumeConnect(namespace name: String, ticket: UInt64, result: AsyncMiddlewareResult) {
        guard let pending = pendingConnects[name], pending.ticket == ticket else {
            io.count("connect_abandoned")
            return
        }
        pendingConnects[name] = nil
        guard connection.isOpen else { return }
        switch result {
        case .reject(let message, let data):
            refuse(name, message: message, data: data)
        case .accept(let data):
            if let data { pending.socket.data = data }
            runMiddleware(
                pending.socket, from: pending.resumeAt, queued: pending.queued, queuedBytes: pending.queuedBytes)
        }
    }

    /// Keeps a packet for a parked CONNECT, within bounds; beyond them the connection is closed.
    private func queue(_ input: SessionInput, size: Int, in pending: PendingConnect) {
        let limits = io.configuration
        guard pending.queued.count < limits.maxPendingPackets, pending.queuedBytes + size <= limits.maxPayload else {
            io.logger.debug(
                "closing connection", metadata: ["reason": "too many packets before the namespace CONNECT completed"])
            close(.tooManyPendingPackets)
            return
        }
        pending.queued.append(input)
        pending.queuedBytes += size
    }

    /// Admits a socket: joins its rooms (`rooms`: a restored socket's), sends the events it missed
    /// (`missed`, a restored socket's), then the CONNECT reply, then runs the connection handlers.
    private func admit(
        _ socket: Socket, replaying queued: [SessionInput], rooms: [String] = [], missed: [[OutgoingFrame]] = []
    ) {
        switch socket.pendingRestore {
        case .fromCluster(let restoredRooms, let restoredMissed):
            // Restored from the cluster's store, then through the middleware (skipMiddlewares off).
            socket.pendingRestore = nil
            admit(socket, replaying: queued, rooms: restoredRooms, missed: restoredMissed)
            return
        case .fromOffset:
            restore(socket, replaying: queued)
            return
        case nil:
            break
        }
        let name = socket.namespace.name
        let namespace = socket.namespace
        guard connection.isOpen else { return }
        if sockets.isEmpty {
            // The first namespace joined: the client has passed its middleware, full-size messages.
            connection.incomingMessageLimit = nil
        }
        connectDeadline = 0
        sockets[name] = socket
        socket.connected = true
        for key in [name, SocketIOServer.roomKey(name, socket.id)] {
            connection.join(key)
            io.rooms.join(key, connection.id)
        }
        for room in rooms { socket.join(room) }
        // Past the backpressure limit: a replay is all or nothing (a gap would go unnoticed), and
        // the CONNECT reply behind it must not be the one frame the limit refuses.
        for frames in missed { connection.sendPastLimit(frames) }
        let reply = SocketIOPacket.connected(namespace: name, sid: socket.id, pid: socket.pid)
        if missed.isEmpty {
            send(reply)
        } else {
            let (text, _) = reply.encode(engineIOPrefix: true)
            connection.sendPastLimit([connection.server.makeFrame(.text, text)])
        }
        io.count("connect")
        for handler in namespace.connectionHandlers {
            guard socket.connected else { break }
            handler(socket)
        }
        for input in queued { handle(input) }
    }

    // MARK: Connection state recovery

    /// Takes the saved session and the events it missed (RecoveryLog.restore), and finishes on this
    /// loop behind every event numbered before: those still queued here reach the socket live once
    /// it is in its rooms, those already delivered are replayed, none twice. Packets the client
    /// sends meanwhile wait as for a parked CONNECT. If the session is gone by now (taken by another
    /// connection, expired, its events dropped), the client gets a fresh one instead.
    private func restore(_ socket: Socket, replaying queued: [SessionInput]) {
        guard let recovery = socket.namespace.recovery, case .fromOffset(let offset) = socket.pendingRestore,
            let pid = socket.pid
        else { return }
        socket.pendingRestore = nil
        let name = socket.namespace.name
        guard connection.isOpen else { return }
        lastTicket &+= 1
        let ticket = lastTicket
        pendingConnects[name] = PendingConnect(
            socket: socket, ticket: ticket, resumeAt: Int.max, queued: queued, queuedBytes: 0, deadline: nil)
        let server = connection.server
        let loop = connection.loopIndex
        let session = UncheckedSession(value: self)
        let refusal = recovery.restore(pid: pid, offset: offset, now: monotonicNanoseconds()) { saved, missed in
            server.execute(onLoop: loop) {
                session.value.finishRestore(name: name, ticket: ticket, saved: saved, missed: missed)
            }
        }
        guard let refusal else { return }
        pendingConnects[name] = nil
        io.logger.debug("session not recovered", metadata: ["reason": "\(refusal)", "namespace": "\(name)"])
        let fresh = Socket(
            id: EngineIOSessionID.generateSocketID(), namespace: socket.namespace, handshake: socket.handshake,
            session: self,
            pid: EngineIOSessionID.generateSecret())
        if recovery.configuration.skipMiddlewares {
            runMiddleware(fresh, from: 0, queued: queued, queuedBytes: 0)
        } else {
            fresh.data = socket.data
            admit(fresh, replaying: queued)
        }
    }

    private func finishRestore(name: String, ticket: UInt64, saved: SavedSession, missed: [[OutgoingFrame]]) {
        guard let pending = pendingConnects[name], pending.ticket == ticket, connection.isOpen else {
            if pendingConnects[name]?.ticket == ticket { pendingConnects[name] = nil }
            // The client left meanwhile: its session stays restorable.
            io.namespace(name)?.recovery?.persist(saved)
            return
        }
        pendingConnects[name] = nil
        let socket = pending.socket
        socket.recovered = true
        io.count("connect_recovered")
        admit(socket, replaying: pending.queued, rooms: saved.rooms, missed: missed)
    }

    /// With a cluster store (`ClusterRecoveryAdapter`): the CONNECT waits while the store is asked
    /// (Redis: the session and the events since `offset`), as for an asynchronous middleware; the
    /// answer comes back through this loop's task queue behind every event delivered before it
    /// and not replayed. `fresh` is the socket the client gets if the session is not restored.
    private func restoreFromCluster(_ fresh: Socket, pid: String, offset: String, cluster: any ClusterRecoveryAdapter) {
        let name = fresh.namespace.name
        lastTicket &+= 1
        let ticket = lastTicket
        pendingConnects[name] = PendingConnect(
            socket: fresh, ticket: ticket, resumeAt: Int.max, queued: [], queuedBytes: 0, deadline: nil)
        let server = connection.server
        let loop = connection.loopIndex
        let session = UncheckedSession(value: self)
        cluster.restoreSession(pid: pid, offset: offset, namespace: name) { result in
            server.execute(onLoop: loop) {
                session.value.finishClusterRestore(name: name, ticket: ticket, result: result)
            }
        }
    }

    private func finishClusterRestore(name: String, ticket: UInt64, result: Result<RestoredSession, RecoveryRefusal>) {
        guard let pending = pendingConnects[name], pending.ticket == ticket, connection.isOpen else {
            if pendingConnects[name]?.ticket == ticket { pendingConnects[name] = nil }
            // The client left meanwhile: the session goes back to the store, restorable again.
            if case .success(let restored) = result {
                io.clusterRecovery?.persistSession(restored.session, namespace: name)
            }
            return
        }
        pendingConnects[name] = nil
        let fresh = pending.socket
        let namespace = fresh.namespace
        let restored: RestoredSession
        switch result {
        case .failure(let refusal):
            namespace.recovery?.countRestore(.failure(refusal))
            io.logger.debug("session not recovered", metadata: ["reason": "\(refusal)", "namespace": "\(name)"])
            runMiddleware(fresh, from: 0, queued: pending.queued, queuedBytes: pending.queuedBytes)
            return
        case .success(let found):
            restored = found
        }
        namespace.recovery?.countRestore(.success(restored.missed.count))
        let saved = restored.session
        let socket = Socket(
            id: saved.sid, namespace: namespace, handshake: fresh.handshake, session: self, pid: saved.pid)
        socket.data = io.socketDataDecoder?(saved.data)
        socket.recovered = true
        io.count("connect_recovered")
        let server = connection.server
        // Each missed event's data already ends with its offset.
        let missed: [[OutgoingFrame]] = restored.missed.compactMap { data in
            guard let event = data.first?.stringValue else { return nil }
            let (text, attachments) = SocketIOPacket.event(namespace: name, event, Array(data.dropFirst())).encode(
                engineIOPrefix: true)
            return BroadcastOperator.frames(server, text, attachments, offset: nil)
        }
        let rooms = saved.rooms.filter { $0 != saved.sid }
        if namespace.recovery?.configuration.skipMiddlewares ?? true {
            admit(socket, replaying: pending.queued, rooms: rooms, missed: missed)
        } else {
            socket.pendingRestore = .fromCluster(rooms: rooms, missed: missed)
            runMiddleware(socket, from: 0, queued: pending.queued, queuedBytes: pending.queuedBytes)
        }
    }

    func removeSocket(_ socket: Socket, reason: DisconnectReason) {
        guard sockets[socket.namespace.name] === socket else { return }
        sockets[socket.namespace.name] = nil
        socket.didDisconnect(reason: reason)
    }

    /// Closes the connection; the sockets see the cause's `disconnectReason`.
    func close(_ cause: SessionCloseCause) {
        let reason = cause.disconnectReason
        if closeReason == nil { closeReason = reason }
        teardown(reason: reason)
        connection.close(code: cause.closeCode, reason: reason.rawValue)
    }

    func teardown(reason: DisconnectReason) {
        pendingConnects.removeAll()
        let all = sockets.values.sorted { $0.namespace.name < $1.namespace.name }
        sockets.removeAll()
        for socket in all { socket.didDisconnect(reason: reason) }
    }

    func tick(now: UInt64) {
        self.now = now
        guard connection.isOpen else { return }
        switch heartbeat.tick(now: now, io.heartbeatTiming) {
        case .none: break
        case .sendPing: sendRaw(EngineIOPacket.pingFrame)
        case .timeout:
            close(.pingTimeout)
            return
        }
        if connectDeadline != 0, now >= connectDeadline {
            close(.connectTimeout)
            return
        }
        if !pendingConnects.isEmpty { expireMiddlewares(now: now) }
        if ackTimersArmed {
            var any = false
            for socket in sockets.values {
                socket.expireAcks(now: now)
                any = any || socket.hasPendingAcks
            }
            ackTimersArmed = any
        }
    }
}

/// A session handed to its own loop's task queue (used only on that loop).
/// Unchecked Sendable: the session goes through a task queue to the loop that owns it, and is
/// used only there.
private struct UncheckedSession: @unchecked Sendable { let value: EngineSession }
