// RedisStreamsAdapter's requests that wait for answers (socket.io-adapter's ClusterAdapter over
// pub/sub, as the Streams adapter 0.3.x sends them: BROADCAST with acks, FETCH_SOCKETS,
// SERVER_SIDE_EMIT) and everything a message from another node asks of this one. Adapter's loop.
import ChorusJSON
import ChorusLoop
import ChorusMsgPack
import ChorusRedis
import ChorusServer
import ChorusSocketIO
import Logging

extension RedisStreamsAdapter {
    // MARK: Pub/sub: requests and responses

    func received(_ message: RedisPubSubMessage) {
        guard let namespace = channelNamespace[Array(message.channel)] else { return }
        guard let decoded = StreamMessage(pubSubPayload: message.payload, decoder: decoder) else {
            counters.malformed += 1
            return
        }
        guard decoded.uid != uid, decoded.nsp == namespace else { return }
        handle(decoded, offset: nil)
    }

    /// A message from another node: from the stream (`offset`: its entry id) or pub/sub.
    func handle(_ message: StreamMessage, offset: String?) {
        guard let io, let kind = message.kind else { return }
        let namespace = message.nsp
        switch kind {
        case .broadcast:
            guard let b = StreamBroadcast(json: message.data) else {
                counters.malformed += 1
                return
            }
            if let requestId = b.requestId {
                broadcastWithAckReceived(b, requestId: requestId, from: message.uid, namespace: namespace)
                return
            }
            counters.broadcastsReceived += 1
            let keys = b.options.rooms.map { namespace + "#" + $0 }
            if !keys.isEmpty && !keys.contains(where: { io.rooms.members(of: $0) > 0 }) {
                counters.broadcastsSkipped += 1
                counters.broadcastsNotHeld += 1
                return
            }
            counters.broadcastsDelivered += 1
            io.of(namespace).to(b.options.rooms).except(b.options.except)
                .deliverFromCluster(b.event, b.args, offset: recoveryOn && b.isReplayable ? offset : nil)
        case .socketsJoin, .socketsLeave, .disconnectSockets:
            guard let options = StreamOptions(json: message.data?["opts"]) else {
                counters.malformed += 1
                return
            }
            counters.requestsReceived += 1
            let selector = SocketSelector(namespace: namespace, rooms: options.rooms, except: options.except)
            let rooms = message.data?["rooms"]?.arrayValue?.compactMap(\.stringValue) ?? []
            switch kind {
            case .socketsJoin: io.localSocketsJoin(selector, rooms: rooms)
            case .socketsLeave: io.localSocketsLeave(selector, rooms: rooms)
            default: io.localDisconnectSockets(selector, close: message.data?["close"]?.boolValue ?? false)
            }
        case .fetchSockets:
            guard let requestId = message.data?["requestId"]?.stringValue,
                let options = StreamOptions(json: message.data?["opts"])
            else {
                counters.malformed += 1
                return
            }
            counters.requestsReceived += 1
            let respond = responder(to: message.uid, namespace: namespace)
            io.localSocketDescriptions(
                SocketSelector(namespace: namespace, rooms: options.rooms, except: options.except)
            ) { sockets in
                respond(
                    .fetchSocketsResponse, ["requestId": .string(requestId), "sockets": .array(sockets.map(\.json))])
            }
        case .serverSideEmit:
            guard let packet = message.data?["packet"]?.arrayValue else {
                counters.malformed += 1
                return
            }
            counters.requestsReceived += 1
            let ns = io.of(namespace)
            guard let requestId = message.data?["requestId"]?.stringValue else {
                ns.receiveServerSideEmit(packet, ack: nil)
                return
            }
            let respond = responder(to: message.uid, namespace: namespace)
            // The requester waits for one answer per node: without a handler, null at once.
            guard let event = packet.first?.stringValue, ns.hasServerSideHandler(event) else {
                respond(.serverSideEmitResponse, ["requestId": .string(requestId), "packet": .null])
                return
            }
            let once = AnswerOnce()
            ns.receiveServerSideEmit(packet) { value in
                if once.claim() {
                    respond(.serverSideEmitResponse, ["requestId": .string(requestId), "packet": value])
                }
            }
        case .fetchSocketsResponse, .serverSideEmitResponse, .broadcastClientCount, .broadcastAck:
            responseReceived(kind, message.data)
        case .initialHeartbeat, .heartbeat, .adapterClose:
            break
        }
    }

    func broadcastWithAckReceived(_ b: StreamBroadcast, requestId: String, from requester: String, namespace: String) {
        guard let io else { return }
        counters.requestsReceived += 1
        let respond = responder(to: requester, namespace: namespace)
        let timeout = Double(b.options.flags["timeout"]?.intValue ?? Int(configuration.requestTimeout * 1000)) / 1000
        let (event, args) = (b.event, b.args)
        io.countEmit(namespace: namespace, event: event, loopIndex: io.webSocketServer?.currentLoopIndex)
        io.withLocalSockets(
            SocketSelector(namespace: namespace, rooms: b.options.rooms, except: b.options.except),
            { socket -> Bool? in
                socket.emit(event, args, timeout: timeout, counted: false) { result in
                    if case .success(let answer) = result {
                        respond(.broadcastAck, ["requestId": .string(requestId), "packet": answer.first ?? .null])
                    }
                }
                return true
            }
        ) { reached in
            respond(.broadcastClientCount, ["requestId": .string(requestId), "clientCount": JSONValue(reached.count)])
        }
    }

    /// Publishes a response on the requester's own channel (from any thread).
    func responder(to requester: String, namespace: String) -> @Sendable (StreamMessageType, JSONObject) -> Void {
        let channel = Array(privateChannel(namespace, uid: requester).utf8)
        let uid = uid
        return { [weak self] type, data in
            let payload = StreamMessage(uid: uid, nsp: namespace, type: type, data: .object(data)).pubSubPayload
            self?.onLoop { [weak self] in
                guard let self else { return }
                client?.publish(channel: channel, message: payload)
                counters.responsesPublished += 1
            }
        }
    }

    func responseReceived(_ kind: StreamMessageType, _ data: JSONValue?) {
        guard let requestId = data?["requestId"]?.stringValue else {
            counters.malformed += 1
            return
        }
        if let waiting = ackRequests[requestId] {
            counters.responsesReceived += 1
            if kind == .broadcastClientCount { waiting.clientCount(data?["clientCount"]?.intValue ?? 0) }
            if kind == .broadcastAck { waiting.ack(data?["packet"] ?? .null) }
            return
        }
        guard let entry = pending[requestId] else { return }
        counters.responsesReceived += 1
        entry.received += 1
        switch (kind, entry.accumulator) {
        case (.fetchSocketsResponse, .sockets(var all)):
            for socket in data?["sockets"]?.arrayValue ?? [] {
                if let description = try? SocketDescription(json: socket) { all.append(description) }
            }
            entry.accumulator = .sockets(all)
        case (.serverSideEmitResponse, .responses(var all)):
            all.append(data?["packet"] ?? .null)
            entry.accumulator = .responses(all)
        default:
            break
        }
        if entry.received >= entry.expected {
            pending[requestId] = nil
            if let timer = entry.timer { loop?.cancel(timer) }
            counters.recordRequest(nanoseconds: monotonicNanoseconds() &- entry.publishedAt)
            entry.done(.success(entry.accumulator))
        }
    }

    // MARK: Requests to the other nodes

    public func fetchSockets(
        _ selector: SocketSelector, local: [SocketDescription],
        completion: @escaping @Sendable (Result<[SocketDescription], AdapterError>) -> Void
    ) {
        ask(
            selector.namespace, type: .remoteFetch, accumulator: .sockets(local),
            make: { id in
                StreamMessage(
                    uid: self.uid, nsp: selector.namespace, type: .fetchSockets,
                    data: [
                        "opts": StreamOptions(rooms: selector.rooms, except: selector.except).json,
                        "requestId": .string(id),
                    ])
            },
            done: { completion($0.map { $0.sockets }) })
    }

    /// socket.io-adapter's `ClusterAdapter` has no cluster-wide room list: this node's rooms (a
    /// Node.js node with the Redis Streams adapter answers the same).
    public func allRooms(
        namespace: String, local: Set<String>,
        completion: @escaping @Sendable (Result<Set<String>, AdapterError>) -> Void
    ) {
        completion(.success(local))
    }

    public func serverSideEmit(
        namespace: String, data: [JSONValue], ack: (@Sendable (Result<[JSONValue], AdapterError>) -> Void)?
    ) {
        guard let ack else {
            let message = StreamMessage(uid: uid, nsp: namespace, type: .serverSideEmit, data: ["packet": .array(data)])
            onLoop { [self] in publishRequest(message) }
            return
        }
        ask(
            namespace, type: .serverSideEmit, accumulator: .responses([]),
            make: { id in
                StreamMessage(
                    uid: self.uid, nsp: namespace, type: .serverSideEmit,
                    data: ["packet": .array(data), "requestId": .string(id)])
            },
            done: { ack($0.map { $0.responses }) })
    }

    public func broadcastWithAck(
        _ broadcast: AdapterBroadcast, timeout: Double,
        clientCount: @escaping @Sendable (Int) -> Void, ack: @escaping @Sendable (JSONValue) -> Void
    ) {
        onLoop { [self] in
            let requestId = Self.requestID()
            ackRequests[requestId] = (clientCount, ack)
            let b = StreamBroadcast(
                event: broadcast.data.first?.stringValue ?? "", args: Array(broadcast.data.dropFirst()),
                options: StreamOptions(
                    rooms: broadcast.rooms, except: broadcast.except,
                    flags: ["timeout": JSONValue(Int((timeout * 1000).rounded()))]),
                requestId: requestId)
            publishRequest(StreamMessage(uid: uid, nsp: broadcast.namespace, type: .broadcast, data: b.json))
            loop?.schedule(afterNanoseconds: UInt64(max(timeout, 0) * 1e9)) { [weak self] in
                self?.ackRequests[requestId] = nil
            }
        }
    }

    public func serverCount(completion: @escaping @Sendable (Result<Int, AdapterError>) -> Void) {
        onLoop { [self] in serverCountOnLoop(completion) }
    }

    /// `PUBSUB NUMSUB <prefix>#/#`: the nodes subscribed to the main namespace's channel.
    func serverCountOnLoop(
        namespace: String = "/", _ completion: @escaping @Sendable (Result<Int, AdapterError>) -> Void
    ) {
        guard let client else { return completion(.failure(.notRunning)) }
        client.numSub(publicChannel(namespace), timeout: configuration.requestTimeout, completion)
    }

    func publishRequest(_ message: StreamMessage) {
        client?.publish(channel: Array(publicChannel(message.nsp).utf8), message: message.pubSubPayload)
        counters.requestsPublished += 1
    }

    func ask(
        _ namespace: String, type: ClusterRequestType, accumulator: PendingRequest.Accumulator,
        make: @escaping @Sendable (String) -> StreamMessage,
        done: @escaping @Sendable (Result<PendingRequest.Accumulator, AdapterError>) -> Void
    ) {
        onLoop { [self] in
            serverCountOnLoop(namespace: namespace) { [self] result in
                switch result {
                case .failure(let error): done(.failure(error))
                case .success(let nodes):
                    guard nodes - 1 > 0 else { return done(.success(accumulator)) }
                    let requestId = Self.requestID()
                    let entry = PendingRequest(type: type, expected: nodes - 1, accumulator: accumulator, done: done)
                    pending[requestId] = entry
                    entry.timer = loop?.schedule(afterNanoseconds: UInt64(configuration.requestTimeout * 1e9)) {
                        [weak self] in
                        guard let self, let entry = pending.removeValue(forKey: requestId) else { return }
                        counters.requestsTimedOut += 1
                        counters.recordRequest(nanoseconds: monotonicNanoseconds() &- entry.publishedAt)
                        entry.done(.failure(.timeout(received: entry.received, expected: entry.expected)))
                    }
                    publishRequest(make(requestId))
                }
            }
        }
    }

    static func requestID() -> String {
        var rng = SystemRandomNumberGenerator()
        return (0..<8).map { _ in String(UInt8.random(in: 0...255, using: &rng), radix: 16).leftPadded(to: 2) }.joined()
    }

}
