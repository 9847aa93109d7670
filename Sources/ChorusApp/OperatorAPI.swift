import ChorusJSON
import ChorusServer
import ChorusSocketIO
import ChorusWebSocket

/// Operator routes on the sockets of rooms, on every node with `--adapter redis` (this process
/// otherwise). Same bearer token as the emit API.
///
///     GET  /api/v1/sockets?room=R[&room=R2][&except=X][&namespace=/]   200 {"sockets": [{id, handshake, rooms, data}]}
///     POST /api/v1/sockets/join        {"rooms": [...], "except": [...], "join": [...], "namespace": "/"}   202 {}
///     POST /api/v1/sockets/leave       {"rooms": [...], "except": [...], "leave": [...]}                   202 {}
///     POST /api/v1/sockets/disconnect  {"rooms": [...], "except": [...], "close": false}                   202 {}
///
/// No `rooms`: every socket of the namespace. A socket is in the room named after its id.
/// GET waits for every node (`--redis-request-timeout`); 504 if one does not answer, 503 if Redis
/// is unreachable.
extension RealtimeApplication {
    static let socketsPath = apiPrefix + "sockets"

    /// `GET /api/v1/sockets`, answered once every node has (see `SocketIOServer.deferredHTTPHandler`).
    func handleDeferredAPI(_ request: HTTPRequest, _ respond: @escaping @Sendable (HTTPResponse) -> Void) -> Bool {
        if request.head.path == Self.apiPrefix + "stats", request.head.method == "GET", io.isClustered,
            authorized(request.head)
        {
            // The cluster's counters come from the adapter's loop.
            let local = stats
            io.adapter.stats { cluster in
                guard case .object(var o) = local else { return respond(Self.json(200, local)) }
                o["cluster"] = cluster ?? .null
                respond(Self.json(200, .object(o)))
            }
            return true
        }
        guard request.head.path == Self.socketsPath, request.head.method == "GET" else { return false }
        guard authorized(request.head) else {
            respond(Self.json(401, ["error": "unauthorized"], headers: [("WWW-Authenticate", "Bearer")]))
            return true
        }
        let query = request.head.query
        let namespace = query.first(where: { $0.name == "namespace" })?.value ?? "/"
        guard io.hasNamespace(namespace) else {
            respond(Self.badRequest("unknown namespace \(namespace)"))
            return true
        }
        let rooms = query.filter { $0.name == "room" }.map(\.value)
        let except = query.filter { $0.name == "except" }.map(\.value)
        guard !rooms.contains(""), !except.contains("") else {
            respond(Self.badRequest("room and except must be non-empty"))
            return true
        }
        let op = io.of(namespace).to(rooms).except(except)
        Task {
            do throws(AdapterError) {
                let sockets = try await op.fetchSockets()
                respond(
                    Self.json(
                        200,
                        [
                            "sockets": .array(
                                sockets.map { s in
                                    [
                                        "id": .string(s.id), "handshake": s.handshake,
                                        "rooms": .array(s.rooms.map(JSONValue.string)), "data": s.data,
                                    ]
                                })
                        ]))
            } catch {
                switch error {
                case .timeout(let received, let expected):
                    respond(
                        Self.json(504, ["error": .string("only \(received) of \(expected) nodes answered in time")]))
                case .unavailable(let why):
                    respond(Self.json(503, ["error": .string("cluster unavailable: \(why)")]))
                case .notRunning:
                    respond(Self.json(503, ["error": "server not running"]))
                }
            }
        }
        return true
    }

    /// `POST /api/v1/sockets/{join,leave,disconnect}` (`action`).
    func socketsRoute(_ action: String, _ body: JSONValue) -> HTTPResponse {
        guard let o = body.objectValue else { return Self.badRequest("body must be a JSON object") }
        func list(_ key: String) -> [String]?? {
            guard let v = o[key], !v.isNull else { return .some(nil) }
            guard let items = v.arrayValue else { return nil }
            var out: [String] = []
            for item in items {
                guard let s = item.stringValue, !s.isEmpty else { return nil }
                out.append(s)
            }
            return .some(out)
        }
        guard let rooms = list("rooms") else { return Self.badRequest("rooms must be an array of non-empty strings") }
        guard let except = list("except") else {
            return Self.badRequest("except must be an array of non-empty strings")
        }
        let namespace = o["namespace"]?.stringValue ?? "/"
        guard io.hasNamespace(namespace) else { return Self.badRequest("unknown namespace \(namespace)") }
        let op = io.of(namespace).to(rooms ?? []).except(except ?? [])
        switch action {
        case "join", "leave":
            guard let target = list(action), let target, !target.isEmpty else {
                return Self.badRequest("\(action) must be a non-empty array of non-empty strings")
            }
            if action == "join" { op.socketsJoin(target) } else { op.socketsLeave(target) }
        case "disconnect":
            if let close = o["close"], close.boolValue == nil { return Self.badRequest("close must be a boolean") }
            op.disconnectSockets(close: o["close"]?.boolValue ?? false)
        default:
            return Self.json(404, ["error": "no such route"])
        }
        return Self.json(202, [:])
    }
}

extension AuthenticatedUser: SocketDataRepresentable {
    /// What other nodes see of `socket.data` in `fetchSockets`, and what a cluster store keeps for
    /// connection state recovery (so `init(socketData:)` rebuilds the same user on any node).
    public var socketDataJSON: JSONValue {
        var o: JSONObject = ["userId": .string(id), "projects": projects.claim, "conversations": conversations.claim]
        if let data { o["data"] = data }
        return .object(o)
    }

    /// The user of a session restored from another node (`socketDataJSON`'s form).
    public convenience init?(socketData json: JSONValue) {
        guard let id = json["userId"].flatMap(RealtimeIDs.id(from:)) else { return nil }
        self.init(
            id: id, projects: Grant(claim: json["projects"]), conversations: Grant(claim: json["conversations"]),
            data: json["data"])
    }
}

extension Grant {
    /// The claim this grant reads from (`init(claim:)`'s inverse).
    var claim: JSONValue {
        switch self {
        case .all: .string("*")
        case .ids(let ids): .array(ids.sorted().map(JSONValue.string))
        }
    }
}
