// `io.to(...).except(...).emit(...)` and the cluster-wide operations on a selection of sockets.

import ChorusJSON
import ChorusLoop
import ChorusServer
import ChorusWebSocket

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
        if let cluster = io.clusterRecovery {
            // The cluster numbers it (a Redis stream entry id); delivered here once numbered, in
            // the cluster's order. A `local` emit is not published and so carries no offset.
            guard !isLocal else {
                sendNow(server, text, attachments, target)
                return true
            }
            let selector = self.selector
            cluster.publishReplayable(
                AdapterBroadcast(
                    namespace: namespace, data: [.string(event)] + args,
                    rooms: selector.rooms, except: selector.except)
            ) { offset in
                server.emitInOrder(frames: Self.frames(server, text, attachments, offset: offset), to: target)
            }
            return true
        }
        if io.configuration.recovery != nil, let recovery = io.namespace(namespace)?.recovery {
            // Numbered and delivered in that order on every loop (see RecoveryLog.append).
            let selector = self.selector
            recovery.append(
                rooms: selector.rooms, except: selector.except, now: monotonicNanoseconds(),
                build: { offset in Self.frames(server, text, attachments, offset: offset) },
                deliver: { server.emitInOrder(frames: $0, to: target) })
        } else {
            sendNow(server, text, attachments, target)
        }
        if !isLocal {
            let selector = self.selector
            io.adapter.broadcast(
                AdapterBroadcast(
                    namespace: namespace, data: [.string(event)] + args, rooms: selector.rooms, except: selector.except)
            )
        }
        return true
    }

    /// A broadcast another node published, numbered by the cluster (`offset`: its stream entry id,
    /// nil without recovery): delivered on this node only, through every loop's task queue, so
    /// that it keeps the cluster's order with this node's own numbered events. Adapter's loop.
    public func deliverFromCluster(_ event: String, _ args: [JSONValue], offset: String?) {
        guard let server = io.webSocketServer else { return }
        io.countEmit(namespace: namespace, event: event, loopIndex: server.currentLoopIndex)
        let (text, attachments) = SocketIOPacket.event(namespace: namespace, event, args).encode(engineIOPrefix: true)
        server.emitInOrder(frames: Self.frames(server, text, attachments, offset: offset), to: target)
    }

    /// An event's frames, with `offset` as its last argument: `42["e",...]` becomes
    /// `42["e",...,"<offset>"]` (the data array's closing bracket is the last byte).
    static func frames(_ server: WebSocketServer, _ text: [UInt8], _ attachments: [[UInt8]], offset: String?)
        -> [OutgoingFrame]
    {
        var text = text
        if let offset, text.last == UInt8(ascii: "]") {
            text.removeLast()
            text.append(UInt8(ascii: ","))
            text.append(UInt8(ascii: "\""))
            text.append(contentsOf: offset.utf8)
            text.append(UInt8(ascii: "\""))
            text.append(UInt8(ascii: "]"))
        }
        return [server.makeFrame(.text, text)]
            + attachments.map { a in server.makeFrame(.binary, a) }
    }

    private func sendNow(
        _ server: WebSocketServer, _ text: [UInt8], _ attachments: [[UInt8]], _ target: BroadcastTarget
    ) {
        let frame = server.makeFrame(.text, text)
        if attachments.isEmpty {
            server.emit(frame, to: target)
        } else {
            // A binary event is only meaningful whole: every recipient gets all frames or none.
            let binaries = attachments.map { a in server.makeFrame(.binary, a) }
            server.emit(frames: [frame] + binaries, to: target)
        }
    }

    // MARK: Cluster-wide operations (any thread)

    /// Emits to the target, on every node, asking each recipient for an acknowledgement (Socket.IO's
    /// `io.timeout(ms).emit(event, ..., (err, responses) => ...)`): the answers (each client's first
    /// argument) once every recipient answered, or those received within `timeout` seconds with
    /// `timedOut` set. Each recipient's packet carries its own ack id, so it is encoded per socket.
    public func emitWithAck(_ event: String, _ args: [JSONValue] = [], timeout: Double) async -> (
        answers: [JSONValue], timedOut: Bool
    ) {
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
                    AdapterBroadcast(
                        namespace: namespace, data: [.string(event)] + args, rooms: selector.rooms,
                        except: selector.except),
                    timeout: timeout, clientCount: { collector.reached($0) }, ack: { collector.answer($0) })
            }
            io.withLocalSockets(
                selector,
                { socket -> Bool? in
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
