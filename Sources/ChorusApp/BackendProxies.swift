import ChorusJSON
import ChorusProxy
import ChorusServer
import ChorusSocketIO
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// `--proxy-*`: which events the backend decides, and how it is reached.
public struct BackendProxyConfiguration: Sendable {
    /// Each `message:send` is stored by the backend before it is broadcast.
    public var messageURL: String?
    /// Each `join:project` / `join:conversation` is decided by the backend (instead of `--authz`).
    public var joinURL: String?
    /// Each CONNECT is decided by the backend (alone with `--auth none`, after the JWT with `--auth jwt`).
    public var connectURL: String?
    public var client = ProxyConfiguration()
    /// Seconds a join decision (allowed / forbidden) is reused for the same user and room; 0: never.
    public var joinCacheTTL = 0.0
    /// Join decisions kept at most.
    public var joinCacheSize = 100_000
    /// Request headers forwarded to the connect proxy (names, any case).
    public var connectHeaders = ["authorization", "cookie", "origin", "user-agent"]
    /// `message:send` calls one socket may have in flight; beyond, refused as unavailable at once.
    public var maxPerSocket = 32

    public init() {}

    public var isEnabled: Bool { messageURL != nil || joinURL != nil || connectURL != nil }
}

/// The proxies of one app: the shared HTTP client, one endpoint per configured URL, the join cache.
final class BackendProxies: Sendable {
    let configuration: BackendProxyConfiguration
    let client: ProxyClient
    let message: ProxyEndpoint?
    let join: ProxyEndpoint?
    let connect: ProxyEndpoint?
    let joinCache: JoinDecisionCache

    init(_ configuration: BackendProxyConfiguration) {
        self.configuration = configuration
        let client = ProxyClient(configuration: configuration.client)
        self.client = client
        message = configuration.messageURL.map { client.endpoint("message", url: $0) }
        join = configuration.joinURL.map { client.endpoint("join", url: $0) }
        connect = configuration.connectURL.map { client.endpoint("connect", url: $0) }
        joinCache = JoinDecisionCache(ttl: configuration.joinCacheTTL, capacity: configuration.joinCacheSize)
    }

    var endpoints: [ProxyEndpoint] { [connect, join, message].compactMap { $0 } }

    var stats: JSONValue {
        var o = JSONObject()
        for endpoint in endpoints { o[endpoint.name] = Self.json(endpoint.stats) }
        if join != nil, joinCache.isEnabled {
            o["joinCache"] = [
                "entries": JSONValue(joinCache.count), "hits": JSONValue(joinCache.hits),
                "misses": JSONValue(joinCache.misses),
            ]
        }
        return .object(o)
    }

    static func json(_ s: ProxyStats) -> JSONValue {
        var failures = JSONObject()
        for failure in ProxyFailure.allCases { failures[failure.rawValue] = JSONValue(s.failures[failure] ?? 0) }
        var buckets = JSONObject()
        for (bound, count) in zip(ProxyEndpoint.latencyBoundsMillis, s.latencyBuckets) {
            buckets[String(Int(bound))] = JSONValue(count)
        }
        buckets["+Inf"] = JSONValue(s.latencyCount)
        let quantile = { (q: Double) -> JSONValue in s.latencyQuantileMillis(q).map { .double($0) } ?? .null }
        return [
            "calls": JSONValue(s.calls),
            "inFlight": JSONValue(s.inFlight),
            "answered": [
                "2xx": JSONValue(s.answered2xx), "4xx": JSONValue(s.answered4xx), "5xx": JSONValue(s.answered5xx),
            ],
            "failures": .object(failures),
            "latency": [
                "count": JSONValue(s.latencyCount),
                "sumMicroseconds": JSONValue(s.latencySumMicros),
                "maxMicroseconds": JSONValue(s.latencyMaxMicros),
                "p50Milliseconds": quantile(0.5),
                "p99Milliseconds": quantile(0.99),
                "bucketsMilliseconds": .object(buckets),
            ],
        ]
    }

    static func nowNanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}

/// A loop-confined value carried through a task that only hands it back to the same loop
/// (`WebSocketServer.withConnection` / `execute(onLoop:)`): never touched off that loop.
/// Unchecked Sendable: for that reason.
struct LoopBound<Value>: @unchecked Sendable {
    let value: Value
}

/// One socket's proxied `message:send` calls waiting for their answers, in send order. Lives on
/// the socket's loop thread (see `LoopBound`).
final class SenderQueue {
    struct Pending {
        let socket: Socket
        let ack: Ack?
        let send: MessageSend
        var decision = BackendContract.MessageDecision.unavailable
    }

    var order: SendOrder<Pending>

    init(limit: Int) { order = SendOrder(limit: limit) }
}

// MARK: The flows (loop thread → task → loop thread)

extension RealtimeApplication {
    /// `message:send` with `--proxy-message`: validated and membership-checked on the loop, posted
    /// from a task, answered (ack, broadcast) back on the socket's loop in send order.
    func proxyMessage(_ socket: Socket, _ args: [JSONValue], _ ack: Ack?, queue: SenderQueue, endpoint: ProxyEndpoint) {
        let event = "message:send"
        guard let user = socket.data as? AuthenticatedUser else { return }
        let send: MessageSend
        do throws(PayloadError) {
            send = try RealtimeValidation.messageSend(args, maxContentLength: configuration.maxContentLength)
            guard socket.isIn(Self.conversationRoom(send.conversationId)) else {
                throw PayloadError("not a member of conversation \(send.conversationId)")
            }
        } catch {
            respond(socket, event, ack, .failure(error))
            return
        }
        guard let server = io.webSocketServer,
            let ticket = queue.order.take(SenderQueue.Pending(socket: socket, ack: ack, send: send))
        else {
            // Too many of this socket's messages in flight: refused now (nothing will be broadcast).
            endpoint.countFailure(.overload)
            respond(socket, event, ack, .failure(PayloadError(BackendContract.unavailable)))
            return
        }
        let body = BackendContract.messageRequest(userId: user.id, send).serialized
        let userId = user.id
        let loop = Int(socket.connectionID.loop)
        let queueBox = LoopBound(value: queue)
        Task { [self] in
            let outcome = await endpoint.post(body)
            let (decision, invalid) = BackendContract.messageDecision(outcome, userId: userId, send)
            if invalid { endpoint.countFailure(.invalid) }
            // To the loop even if the sender left: a stored message is broadcast all the same.
            server.execute(onLoop: loop) { [self] in
                let released = queueBox.value.order.answer(ticket) { $0.decision = decision }
                for pending in released { finishMessage(pending) }
            }
        }
    }

    /// Back on the loop, in send order.
    private func finishMessage(_ pending: SenderQueue.Pending) {
        switch pending.decision {
        case .stored(let message):
            io.sockets.to(Self.conversationRoom(pending.send.conversationId)).emit(Self.messageNew, message)
            countMessage()
            respond(pending.socket, "message:send", pending.ack, .success(["message": message]))
        case .refused(let error):
            respond(pending.socket, "message:send", pending.ack, .failure(PayloadError(error)))
        case .unavailable:
            respond(pending.socket, "message:send", pending.ack, .failure(PayloadError(BackendContract.unavailable)))
        }
    }

    /// `join:<kind>` with `--proxy-join`: a cached decision applies at once; otherwise the backend is
    /// asked from a task and the answer applied on the socket's loop (if the socket is still there).
    func proxyJoin(
        _ socket: Socket, event: String, kind: String, id: String, room: String, idKey: String,
        ack: Ack?, endpoint: ProxyEndpoint, proxies: BackendProxies
    ) {
        guard let user = socket.data as? AuthenticatedUser else { return }
        let key = JoinDecisionCache.Key(userId: user.id, room: room)
        if let cached = proxies.joinCache.lookup(key, now: BackendProxies.nowNanoseconds()) {
            applyJoin(socket, event: event, room: room, result: [idKey: .string(id)], ack: ack, cached)
            return
        }
        guard let server = io.webSocketServer else { return }
        let body = BackendContract.joinRequest(userId: user.id, room: room, kind: kind, id: id).serialized
        let connection = socket.connectionID
        let box = LoopBound(value: (socket, ack))
        Task { [self] in
            let decision = BackendContract.joinDecision(await endpoint.post(body))
            proxies.joinCache.store(key, decision, now: BackendProxies.nowNanoseconds())
            server.withConnection(connection) { [self] _ in
                let (socket, ack) = box.value
                applyJoin(socket, event: event, room: room, result: [idKey: .string(id)], ack: ack, decision)
            }
        }
    }

    private func applyJoin(
        _ socket: Socket, event: String, room: String, result: JSONObject, ack: Ack?,
        _ decision: BackendContract.JoinDecision
    ) {
        guard socket.connected else { return }
        switch decision {
        case .allowed:
            socket.join(room)
            respond(socket, event, ack, .success(result))
        case .forbidden:
            respond(socket, event, ack, .failure(PayloadError(BackendContract.forbidden)))
        case .unavailable:
            respond(socket, event, ack, .failure(PayloadError(BackendContract.unavailable)))
        }
    }

    /// CONNECT with `--proxy-connect` (in an asynchronous middleware, off the loops): after the JWT
    /// (`verified`) or alone. Grants (`projects` / `conversations`, as in the token's claims) come
    /// from the backend's `data` when it names them, else from the token.
    func proxyConnect(
        _ handshake: Handshake, verified: AuthenticatedUser?, endpoint: ProxyEndpoint,
        headers: [String]
    ) async -> AsyncMiddlewareResult {
        let body = BackendContract.connectRequest(handshake, headers: headers, verifiedUserId: verified?.id).serialized
        let (decision, invalid) = BackendContract.connectDecision(
            await endpoint.post(body), verifiedUserId: verified?.id)
        if invalid { endpoint.countFailure(.invalid) }
        switch decision {
        case .accepted(let userId, let data):
            let projects = data?["projects"].map { Grant(claim: $0) } ?? verified?.projects ?? .ids([])
            let conversations = data?["conversations"].map { Grant(claim: $0) } ?? verified?.conversations ?? .ids([])
            return .accept(
                data: AuthenticatedUser(id: userId, projects: projects, conversations: conversations, data: data))
        case .refused(let message):
            return .reject(message: message)
        case .unavailable:
            return .reject(message: BackendContract.unavailable)
        }
    }
}
