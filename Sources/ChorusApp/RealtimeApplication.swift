import ChorusJSON
import ChorusProxy
import ChorusServer
import ChorusSocketIO
import ChorusWebSocket
import Logging
import Synchronization

public enum AuthMode: String, Sendable, CaseIterable {
    /// Development: trusts the `userId` query parameter (or `auth.userId`).
    case none
    case jwt
}

public enum AuthorizationMode: String, Sendable, CaseIterable {
    /// The token's `projects` / `conversations` claims.
    case claims
    /// Everyone may join everything (development).
    case open
}

public struct RealtimeConfiguration: Sendable {
    public var socketIO = SocketIOConfiguration()
    public var auth = AuthMode.jwt
    /// Required with `.jwt`.
    public var jwt: JWTVerifier?
    public var authorization = AuthorizationMode.claims
    public var maxContentLength = 10_000
    /// Bearer token of the emit API; nil disables the API (every call gets 401).
    public var apiToken: String?
    /// Sockets one user may have connected to the main namespace at once (0: unlimited): a user
    /// with a few tabs on a few devices stays far below; a leaked token opening thousands does not.
    public var maxConnectionsPerUser = 32
    /// The backend proxies (connect, join, message); none by default.
    public var proxies = BackendProxyConfiguration()

    public init() {}
}

/// `--app realtime`: the chat + project-tracking gateway (drop-in for the NestJS Socket.IO gateway).
public final class RealtimeApplication: Sendable {
    public let io: SocketIOServer
    public let configuration: RealtimeConfiguration
    let policy: any AuthorizationPolicy
    let logger: Logger
    /// nil without any `--proxy-*` URL.
    let proxies: BackendProxies?
    private let unknownEventCount = Atomic<Int>(0)
    private let messageCount = Atomic<Int>(0)
    /// Refused JWTs by reason (`JWTVerifier.Failure` case, or "missing"); a rare path, so a lock.
    private let jwtFailureCounts = Mutex<[String: Int]>([:])

    public static let projectUpdate = "project:update"
    public static let stageCompleted = "stage:completed"
    public static let messageNew = "message:new"
    public static let notificationNew = "notification:new"

    public init(configuration: RealtimeConfiguration, logger: Logger = Logger(label: "chorus.realtime")) {
        self.configuration = configuration
        self.logger = logger
        self.policy = configuration.authorization == .claims ? ClaimsPolicy() : OpenPolicy()
        self.io = SocketIOServer(configuration: configuration.socketIO, logger: logger)
        // A session restored from another node (Redis Streams adapter) comes back as JSON.
        io.socketDataDecoder = { AuthenticatedUser(socketData: $0) }
        self.proxies = configuration.proxies.isEnabled ? BackendProxies(configuration.proxies) : nil
        if configuration.auth == .none, configuration.proxies.connectURL == nil {
            logger.warning(
                "authentication is OFF (--auth none): the userId query parameter is trusted; development only")
        }
        precondition(configuration.auth == .none || configuration.jwt != nil, "--auth jwt needs a JWT key")
        if configuration.auth == .jwt, configuration.jwt?.hasWeakSecret == true {
            logger.warning("the JWT secret is shorter than 32 bytes: HS256 wants at least 256 bits (RFC 7518 §3.2)")
        }
        // The events this application emits, counted by name in /metrics (an API emit of any other
        // name counts as "other").
        io.countedEmitEvents = [
            Self.projectUpdate, Self.stageCompleted, Self.messageNew, Self.notificationNew, "error",
        ]
        configure()
        io.httpHandler = { [self] request, _ in handleAPI(request) }
        io.deferredHTTPHandler = { [self] request, respond in handleDeferredAPI(request, respond) }
        io.httpHeadHandler = { [self] head in checkAPIHead(head) }
    }

    /// What the WebSocket server runs.
    public var serverApplication: any ServerApplication { io }

    public var unknownEvents: Int { unknownEventCount.load(ordering: .relaxed) }

    /// Refused JWTs by reason: "missing", or a `JWTVerifier.Failure` case (`expired`, `badSignature`...).
    public var jwtFailures: [String: Int] { jwtFailureCounts.withLock { $0 } }
    func countMessage() { messageCount.add(1, ordering: .relaxed) }

    /// Closes the proxies' HTTP connections (after the server stopped).
    public func shutdownProxies() {
        proxies?.client.syncShutdown()
    }

    static func projectRoom(_ id: String) -> String { "project:" + id }
    static func conversationRoom(_ id: String) -> String { "conversation:" + id }
    static func userRoom(_ id: String) -> String { "user:" + id }

    // MARK: Authentication

    /// The user a CONNECT authenticates as, or nil (→ CONNECT_ERROR "unauthorized").
    public func authenticate(_ handshake: Handshake) async -> AuthenticatedUser? {
        switch configuration.auth {
        case .none:
            return Self.developmentUser(handshake)
        case .jwt:
            guard let verifier = configuration.jwt, let token = Self.token(from: handshake) else {
                jwtFailureCounts.withLock { $0["missing", default: 0] += 1 }
                return nil
            }
            do {
                return AuthenticatedUser(claims: try await verifier.verify(token))
            } catch {
                let reason = "\(error)"
                jwtFailureCounts.withLock { $0[reason, default: 0] += 1 }
                logger.debug("token refused", metadata: ["error": "\(error)", "address": "\(handshake.address)"])
                return nil
            }
        }
    }

    // MARK: Connections per user

    // A user's connections are the sockets in their user room: admission joins it only while it
    // has fewer than the limit (one step under the room directory's lock), and a socket leaves it
    // when it goes. No count of its own to keep, and nothing per socket to release it.

    /// Connected sockets of `userId` now (this node, all loops).
    public func connections(ofUser userId: String) -> Int {
        io.sockets.to(Self.userRoom(userId)).recipientCount
    }

    /// The middleware's early answer (admission's join is the definitive one).
    func hasRoomForConnection(of user: AuthenticatedUser) -> Bool {
        let limit = configuration.maxConnectionsPerUser
        return limit <= 0 || connections(ofUser: user.id) < limit
    }

    /// Joins the socket to its user's room if the user has room for it. A socket restored by
    /// connection state recovery is in the room already (its rooms came back with it): it stays
    /// only if the room, with it, holds no more than the limit.
    func admitConnection(_ socket: Socket, of user: AuthenticatedUser) -> Bool {
        let limit = configuration.maxConnectionsPerUser
        let room = Self.userRoom(user.id)
        if socket.isIn(room) { return limit <= 0 || connections(ofUser: user.id) <= limit }
        return socket.join(room, limit: limit > 0 ? limit : .max)
    }

    /// `--auth none`: the `userId` query parameter (or `auth.userId`), trusted.
    static func developmentUser(_ handshake: Handshake) -> AuthenticatedUser? {
        let id =
            handshake.query("userId").flatMap { RealtimeIDs.id(from: .string($0)) }
            ?? handshake.auth["userId"].flatMap(RealtimeIDs.id(from:))
        return id.map { AuthenticatedUser(id: $0, projects: .all, conversations: .all) }
    }

    /// `auth.token`, then the `token` query parameter, then `Authorization: Bearer`.
    static func token(from handshake: Handshake) -> String? {
        if let t = handshake.auth["token"]?.stringValue, !t.isEmpty { return t }
        if let t = handshake.query("token"), !t.isEmpty { return t }
        if let h = handshake.header("authorization") {
            let parts = h.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "bearer" { return String(parts[1]).trimmingSpaces() }
        }
        return nil
    }

    // MARK: Socket handlers

    /// `join:<kind>` and `leave:<kind>` for one kind of room: the id is validated, a join goes through
    /// the authorisation policy, and the ack carries the id back.
    private func registerRoomEvents(
        on ns: Namespace, kind: String, idKey: String, room: @escaping @Sendable (String) -> String,
        parse: @escaping @Sendable ([JSONValue]) throws(PayloadError) -> String,
        canJoin: @escaping @Sendable (AuthenticatedUser, String) -> Bool
    ) {
        ns.on("join:" + kind) { [self] socket, args, ack in
            if let proxies, let endpoint = proxies.join {
                let id: String
                do throws(PayloadError) { id = try parse(args) } catch {
                    respond(socket, "join:" + kind, ack, .failure(error)); return
                }
                proxyJoin(
                    socket, event: "join:" + kind, kind: kind, id: id, room: room(id), idKey: idKey,
                    ack: ack, endpoint: endpoint, proxies: proxies)
                return
            }
            handle(socket, "join:" + kind, ack) { user throws(PayloadError) in
                let id = try parse(args)
                guard canJoin(user, id) else { throw PayloadError("forbidden") }
                socket.join(room(id))
                return [idKey: .string(id)]
            }
        }
        ns.on("leave:" + kind) { [self] socket, args, ack in
            handle(socket, "leave:" + kind, ack) { _ throws(PayloadError) in
                let id = try parse(args)
                socket.leave(room(id))
                return [idKey: .string(id)]
            }
        }
    }

    private func configure() {
        let ns = io.sockets
        if let endpoint = proxies?.connect {
            // The backend decides each CONNECT: alone (--auth none), or after the JWT (--auth jwt).
            let headers = configuration.proxies.connectHeaders
            let jwt = configuration.auth == .jwt
            ns.use(async: { [self] handshake in
                var verified: AuthenticatedUser?
                if jwt {
                    guard let user = await authenticate(handshake) else { return .reject(message: "unauthorized") }
                    verified = user
                }
                return await proxyConnect(handshake, verified: verified, endpoint: endpoint, headers: headers)
            })
        } else {
            configureAuthentication(ns)
        }
        ns.onConnection { [self] socket in
            guard let user = socket.data as? AuthenticatedUser else { socket.disconnect(); return }
            // The middleware's check can race with another CONNECT of the same user (and the connect
            // proxy does not make it): the join into the user's room, on admission, is definitive.
            guard admitConnection(socket, of: user) else { socket.disconnect(); return }
            if let endpoint = proxies?.message {
                // This socket's own handler: it owns the queue that keeps its messages in send order.
                let queue = LoopBound(value: SenderQueue(limit: configuration.proxies.maxPerSocket))
                socket.on("message:send") { [self] socket, args, ack in
                    proxyMessage(socket, args, ack, queue: queue.value, endpoint: endpoint)
                }
            }
        }
        registerRoomEvents(
            on: ns, kind: "project", idKey: "projectId", room: Self.projectRoom,
            parse: RealtimeValidation.projectId, canJoin: policy.canJoinProject)
        registerRoomEvents(
            on: ns, kind: "conversation", idKey: "conversationId", room: Self.conversationRoom,
            parse: RealtimeValidation.conversationId, canJoin: policy.canJoinConversation)
        if proxies?.message == nil { registerLocalMessageSend(on: ns) }
        ns.onUnknownEvent { [self] socket, event, _, ack in
            unknownEventCount.add(1, ordering: .relaxed)
            logger.debug("unknown event ignored", metadata: ["event": "\(event)", "socket": "\(socket.id)"])
            ack?(["ok": false, "error": .string("unknown event \(event)")])
        }
    }

    /// Without a connect proxy: `--auth none` or `--auth jwt` alone.
    private func configureAuthentication(_ ns: Namespace) {
        switch configuration.auth {
        case .none:
            // Nothing to wait for: synchronous, on the loop thread.
            ns.use { [self] socket in
                guard let user = Self.developmentUser(socket.handshake) else { return .reject(message: "unauthorized") }
                guard hasRoomForConnection(of: user) else { return .reject(message: "too many connections") }
                socket.data = user
                return .accept
            }
        case .jwt:
            // jwt-kit verifies asynchronously: the CONNECT is parked meanwhile (see Namespace.use(async:)).
            ns.use(async: { [self] handshake in
                guard let user = await authenticate(handshake) else { return .reject(message: "unauthorized") }
                guard hasRoomForConnection(of: user) else { return .reject(message: "too many connections") }
                return .accept(data: user)
            })
        }
    }

    /// Without a message proxy: Chorus stamps the message itself and broadcasts it at once.
    private func registerLocalMessageSend(on ns: Namespace) {
        ns.on("message:send") { [self] socket, args, ack in
            handle(socket, "message:send", ack) { user throws(PayloadError) in
                let m = try RealtimeValidation.messageSend(args, maxContentLength: configuration.maxContentLength)
                guard socket.isIn(Self.conversationRoom(m.conversationId)) else {
                    throw PayloadError("not a member of conversation \(m.conversationId)")
                }
                let message: JSONValue = [
                    "id": .string(MessageStamp.uuid()),
                    "conversationId": m.conversationIdValue,
                    "senderId": .string(user.id),
                    "content": .string(m.content),
                    "type": .string(m.type),
                    "createdAt": .string(MessageStamp.iso8601(epochMilliseconds: MessageStamp.nowMilliseconds())),
                ]
                // Every member, sender included: the namespace emit (not socket.broadcast).
                io.sockets.to(Self.conversationRoom(m.conversationId)).emit(Self.messageNew, message)
                messageCount.add(1, ordering: .relaxed)
                return ["message": message]
            }
        }
    }

    /// Runs an event body; answers the ack `{ok: true, ...}` / `{ok: false, error}`, or emits
    /// `error {event, error}` on failure when the client asked for no ack.
    private func handle(
        _ socket: Socket, _ event: String, _ ack: Ack?,
        _ body: (AuthenticatedUser) throws(PayloadError) -> JSONObject
    ) {
        guard let user = socket.data as? AuthenticatedUser else { return }
        do {
            respond(socket, event, ack, .success(try body(user)))
        } catch {
            respond(socket, event, ack, .failure(error))
        }
    }

    /// Answers an event: the ack `{ok: true, ...}` / `{ok: false, error}`, or `error {event, error}`
    /// on failure when the client asked for no ack.
    func respond(_ socket: Socket, _ event: String, _ ack: Ack?, _ result: Result<JSONObject, PayloadError>) {
        switch result {
        case .success(let fields):
            guard let ack else { return }
            var reply: JSONObject = ["ok": true]
            for (k, v) in fields { reply[k] = v }
            ack(.object(reply))
        case .failure(let error):
            if let ack {
                ack(["ok": false, "error": .string(error.message)])
            } else {
                socket.emit("error", ["event": .string(event), "error": .string(error.message)])
            }
        }
    }

    // MARK: Swift emit API (any thread). Each returns the local recipients (see `RoomDirectory`).

    @discardableResult
    public func emit(rooms: [String], except: [String] = [], event: String, data: JSONValue?, namespace: String = "/")
        -> Int
    {
        var op = io.of(namespace).to(rooms)
        if !except.isEmpty { op = op.except(except) }
        let recipients = op.recipientCount
        op.emit(event, data.map { [$0] } ?? [])
        return recipients
    }

    @discardableResult
    public func emitProjectUpdate(projectId: String, data: JSONValue) -> Int {
        emit(
            rooms: [Self.projectRoom(projectId)], event: Self.projectUpdate,
            data: Self.adding("projectId", projectId, to: data))
    }

    @discardableResult
    public func emitStageCompletion(projectId: String, data: JSONValue) -> Int {
        emit(
            rooms: [Self.projectRoom(projectId)], event: Self.stageCompleted,
            data: Self.adding("projectId", projectId, to: data))
    }

    @discardableResult
    public func emitNotification(userId: String, data: JSONValue) -> Int {
        emit(rooms: [Self.userRoom(userId)], event: Self.notificationNew, data: data)
    }

    static func adding(_ key: String, _ value: String, to data: JSONValue) -> JSONValue {
        guard case .object(var o) = data, o[key] == nil else { return data }
        o[key] = .string(value)
        return .object(o)
    }

    public var stats: JSONValue {
        var o: JSONObject = [
            "sockets": JSONValue(io.sockets.socketCount),
            "unknownEvents": JSONValue(unknownEvents),
            "messages": JSONValue(messageCount.load(ordering: .relaxed)),
        ]
        var counters = JSONObject()
        for (k, v) in io.stats.sorted(by: { $0.key < $1.key }) { counters[k] = JSONValue(v) }
        o["counters"] = .object(counters)
        if let proxies { o["proxies"] = proxies.stats }
        if let r = io.sockets.recoveryCounters {
            o["recovery"] = [
                "recovered": JSONValue(r.recovered), "replayed": JSONValue(r.replayed),
                "unknownSession": JSONValue(r.unknownSession), "expired": JSONValue(r.expired),
                "offsetGone": JSONValue(r.offsetGone), "unavailable": JSONValue(r.unavailable),
                "persisted": JSONValue(r.persisted), "sessionsEvicted": JSONValue(r.sessionsEvicted),
                "entriesEvicted": JSONValue(r.entriesEvicted), "entries": JSONValue(r.entries),
                "bytes": JSONValue(r.bytes),
                "sessions": JSONValue(r.sessions),
            ]
        }
        return .object(o)
    }
}

extension String {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while s.first == " " || s.first == "\t" { s.removeFirst() }
        while s.last == " " || s.last == "\t" { s.removeLast() }
        return String(s)
    }
}
