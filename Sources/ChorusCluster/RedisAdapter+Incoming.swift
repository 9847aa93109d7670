// RedisAdapter, incoming: what arrives on the subscribed channels (broadcasts, requests,
// responses) and what this node does for it. Adapter's loop.
import ChorusJSON
import ChorusLoop
import ChorusMsgPack
import ChorusRedis
import ChorusServer
import ChorusSocketIO
import Logging
import Synchronization

extension RedisAdapter {
    // MARK: Incoming (loop thread)

    func received(_ message: RedisPubSubMessage) {
        if let pattern = message.pattern {
            guard let namespace = patternNamespace[Array(pattern)] else { return }
            receivedBroadcast(namespace: namespace, channel: message.channel, payload: message.payload)
            return
        }
        if configuration.subscription == .rooms {
            for (prefix, namespace) in broadcastPrefixes where message.channel.starts(with: prefix) {
                receivedBroadcast(namespace: namespace, channel: message.channel, payload: message.payload)
                return
            }
        }
        let channel = Array(message.channel)
        if let namespace = requestNamespace[channel] {
            receivedRequest(namespace: namespace, payload: message.payload)
        } else if responseNamespace[channel] != nil {
            receivedResponse(payload: message.payload)
        }
    }

    func receivedBroadcast(namespace: String, channel: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer) {
        counters.broadcastsReceived += 1
        guard let io, let channels = channelsByNamespace[namespace],
            let room = channels.room(ofBroadcastChannel: channel)
        else {
            counters.broadcastsSkipped += 1
            return
        }
        if ClusterBroadcast.isPublished(by: uidBytes, payload) {
            counters.broadcastsSkipped += 1
            return
        }
        // A room's own channel and no local member: nothing to decode (as the reference adapter).
        if !room.isEmpty && io.rooms.members(of: namespace + "#" + room) == 0 {
            counters.broadcastsSkipped += 1
            counters.broadcastsNotHeld += 1
            return
        }
        let broadcast: ClusterBroadcast
        do throws(ClusterWireError) {
            broadcast = try ClusterBroadcast.decode(payload, decoder: decoder)
        } catch {
            counters.malformed += 1
            logger.debug("malformed broadcast skipped", metadata: ["error": "\(error)"])
            return
        }
        guard broadcast.uid != uid, broadcast.packet.namespace == namespace, let event = broadcast.packet.event else {
            counters.broadcastsSkipped += 1
            return
        }
        counters.broadcastsDelivered += 1
        io.of(namespace).to(broadcast.selector.rooms).except(broadcast.selector.except).local
            .emit(event, Array(broadcast.packet.args))
    }

    func receivedRequest(namespace: String, payload: UnsafeRawBufferPointer) {
        let request: ClusterRequest
        do throws(ClusterWireError) {
            request = try ClusterRequest.decode(payload, decoder: decoder)
        } catch {
            counters.malformed += 1
            logger.debug("malformed request skipped", metadata: ["error": "\(error)"])
            return
        }
        // Our own requests come back to us: the local part is already done.
        if request.uid == uid { return }
        if let id = request.requestId, pending[id] != nil || ackRequests[id] != nil { return }
        counters.requestsReceived += 1
        guard let io, let channels = channelsByNamespace[namespace] else { return }
        let ns = io.of(namespace)
        let respond: @Sendable (ClusterResponse) -> Void = { [weak self] response in
            guard let self else { return }
            let bytes = response.encode()
            onLoop { [self] in
                publish(channels.response, bytes)
                counters.responsesPublished += 1
            }
        }
        switch request {
        case .sockets(_, let requestId, let rooms):
            io.withLocalSockets(SocketSelector(namespace: namespace, rooms: rooms), { $0.id }) { ids in
                respond(.sockets(requestId: requestId, socketIds: ids))
            }
        case .allRooms(_, let requestId):
            respond(.allRooms(requestId: requestId, rooms: io.localRooms(namespace: namespace).sorted()))
        case .remoteJoin(_, let requestId, let target), .remoteLeave(_, let requestId, let target):
            let join = request.type == .remoteJoin
            switch target {
            case .selector(let s, let rooms):
                let selector = SocketSelector(namespace: namespace, rooms: s.rooms, except: s.except)
                if join {
                    io.localSocketsJoin(selector, rooms: rooms)
                } else {
                    io.localSocketsLeave(selector, rooms: rooms)
                }
            case .socket(let id, let room):
                io.withLocalSockets(
                    SocketSelector(namespace: namespace, rooms: [id]),
                    { socket -> Bool? in
                        if join { socket.join(room) } else { socket.leave(room) }
                        return true
                    }
                ) { found in
                    if let requestId, !found.isEmpty { respond(.done(requestId: requestId)) }
                }
            }
        case .remoteDisconnect(_, let requestId, let target):
            switch target {
            case .selector(let s, let close):
                io.localDisconnectSockets(
                    SocketSelector(namespace: namespace, rooms: s.rooms, except: s.except), close: close)
            case .socket(let id, let close):
                io.withLocalSockets(
                    SocketSelector(namespace: namespace, rooms: [id]),
                    { socket -> Bool? in
                        socket.disconnect(close: close)
                        return true
                    }
                ) { found in
                    if let requestId, !found.isEmpty { respond(.done(requestId: requestId)) }
                }
            }
        case .remoteFetch(_, let requestId, let s):
            io.localSocketDescriptions(SocketSelector(namespace: namespace, rooms: s.rooms, except: s.except)) {
                sockets in
                respond(.fetch(requestId: requestId, sockets: sockets))
            }
        case .serverSideEmit(_, let requestId, let data):
            guard let requestId else {
                ns.receiveServerSideEmit(data, ack: nil)
                return
            }
            // The requester waits for one answer per node: a node without a handler for the event
            // answers null at once rather than leaving it to time out.
            guard let event = data.first?.stringValue, ns.hasServerSideHandler(event) else {
                respond(.serverSideEmit(requestId: requestId, data: .null))
                return
            }
            let once = AnswerOnce()
            ns.receiveServerSideEmit(data) { value in
                if once.claim() { respond(.serverSideEmit(requestId: requestId, data: value)) }
            }
        case .broadcast(_, let requestId, let packet, let s, let flags):
            guard let event = packet.event else { return }
            let args = Array(packet.args)
            let timeout = Double(flags.timeout ?? Int64(configuration.requestTimeout * 1000)) / 1000
            io.countEmit(namespace: namespace, event: event, loopIndex: io.webSocketServer?.currentLoopIndex)
            io.withLocalSockets(
                SocketSelector(namespace: namespace, rooms: s.rooms, except: s.except),
                { socket -> Bool? in
                    socket.emit(event, args, timeout: timeout, counted: false) { result in
                        if case .success(let answer) = result {
                            respond(.broadcastAck(requestId: requestId, packet: answer.first ?? .null))
                        }
                    }
                    return true
                }
            ) { reached in
                respond(.broadcastClientCount(requestId: requestId, clientCount: reached.count))
            }
        }
    }

    func receivedResponse(payload: UnsafeRawBufferPointer) {
        let response: ClusterResponse?
        do throws(ClusterWireError) {
            response = try ClusterResponse.decode(payload, decoder: decoder) { [pending, ackRequests] id in
                ackRequests[id] != nil ? .broadcast : pending[id]?.type
            }
        } catch {
            counters.malformed += 1
            return
        }
        if let response, let waiting = ackRequests[response.requestId] {
            counters.responsesReceived += 1
            switch response {
            case .broadcastClientCount(_, let count): waiting.clientCount(count)
            case .broadcastAck(_, let value): waiting.ack(value)
            default: break
            }
            return
        }
        guard let response, let entry = pending[response.requestId] else { return }
        counters.responsesReceived += 1
        entry.received += 1
        switch (response, entry.accumulator) {
        case (.fetch(_, let sockets), .sockets(var all)):
            all += sockets
            entry.accumulator = .sockets(all)
        case (.allRooms(_, let rooms), .rooms(var all)):
            all.formUnion(rooms)
            entry.accumulator = .rooms(all)
        case (.serverSideEmit(_, let data), .responses(var all)):
            all.append(data)
            entry.accumulator = .responses(all)
        default:
            break
        }
        if entry.received >= entry.expected {
            pending[response.requestId] = nil
            if let timer = entry.timer { loop?.cancel(timer) }
            counters.recordRequest(nanoseconds: monotonicNanoseconds() &- entry.publishedAt)
            entry.done(.success(entry.accumulator))
        }
    }
}
