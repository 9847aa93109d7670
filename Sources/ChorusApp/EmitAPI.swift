import ChorusJSON
import ChorusServer
import ChorusSocketIO
import ChorusWebSocket

/// The HTTP emit API on the Socket.IO port (`Authorization: Bearer <--api-token>`):
///
///     POST /api/v1/emit                                {"rooms":[...],"except":[...],"event":"...","data":...,"namespace":"/"}
///     POST /api/v1/projects/{projectId}/updates        body = data of project:update
///     POST /api/v1/projects/{projectId}/stages/completed  body = data of stage:completed
///     POST /api/v1/users/{userId}/notifications        body = data of notification:new
///     GET  /api/v1/stats
///
/// 202 `{"recipients": N}`: sockets of this process in the target rooms at the moment of the
/// emit (all event loops; counted from the process-wide room directory). With `--adapter redis`
/// the emit reaches every node, but N still counts this node's sockets only, and the answer says
/// so: `{"recipients": N, "scope": "node"}`. Operator routes on sockets: see OperatorAPI.swift.
extension RealtimeApplication {
    public static let apiPrefix = "/api/v1/"

    /// A route of the API, with its path parameter.
    enum APIRoute: Equatable {
        case stats
        case emit
        case projectUpdates(String)
        case stageCompleted(String)
        case notifications(String)
        /// `GET /api/v1/sockets` (answered later, see OperatorAPI.swift).
        case fetchSockets
        /// `POST /api/v1/sockets/{join,leave,disconnect}`.
        case sockets(String)
    }

    /// The route `head` asks for, or the refusal (404 unknown route, 405 wrong method, 400 bad
    /// path parameter): decided on the head alone. `head.path` starts with `apiPrefix`.
    enum RouteDecision {
        case route(APIRoute)
        case refuse(HTTPResponse)
    }

    static func route(_ head: HTTPRequestHead) -> RouteDecision {
        let path = head.path
        let segments = path.dropFirst(apiPrefix.count).split(separator: "/", omittingEmptySubsequences: false).map(
            String.init)
        let route: APIRoute
        switch segments.count {
        case 1 where segments[0] == "stats":
            guard head.method == "GET" else { return .refuse(methodNotAllowed("GET")) }
            return .route(.stats)
        case 1 where segments[0] == "sockets":
            guard head.method == "GET" else { return .refuse(methodNotAllowed("GET")) }
            return .route(.fetchSockets)
        case 2 where segments[0] == "sockets":
            route = .sockets(segments[1])
        case 1 where segments[0] == "emit":
            route = .emit
        case 3 where segments[0] == "projects" && segments[2] == "updates":
            guard let id = pathID(segments[1]) else { return .refuse(badRequest("invalid projectId")) }
            route = .projectUpdates(id)
        case 4 where segments[0] == "projects" && segments[2] == "stages" && segments[3] == "completed":
            guard let id = pathID(segments[1]) else { return .refuse(badRequest("invalid projectId")) }
            route = .stageCompleted(id)
        case 3 where segments[0] == "users" && segments[2] == "notifications":
            guard let id = pathID(segments[1]) else { return .refuse(badRequest("invalid userId")) }
            route = .notifications(id)
        default:
            return .refuse(json(404, ["error": "no such route"]))
        }
        guard head.method == "POST" else { return .refuse(methodNotAllowed("POST")) }
        return .route(route)
    }

    /// The API's verdict on a request's head, before its body is read: not the API → 404,
    /// no valid token → 401, then the route's 404/405/400; nil when the body is wanted.
    public func checkAPIHead(_ head: HTTPRequestHead) -> HTTPResponse? {
        guard head.path.hasPrefix(Self.apiPrefix) else { return .webSocketEndpointNotFound }
        guard authorized(head) else { return Self.unauthorized }
        if case .refuse(let refusal) = Self.route(head) { return refusal }
        return nil
    }

    static var unauthorized: HTTPResponse {
        json(401, ["error": "unauthorized"], headers: [("WWW-Authenticate", "Bearer")])
    }

    public func handleAPI(_ request: HTTPRequest) -> HTTPResponse? {
        guard request.head.path.hasPrefix(Self.apiPrefix) else { return nil }
        guard authorized(request.head) else { return Self.unauthorized }
        let route: APIRoute
        switch Self.route(request.head) {
        case .refuse(let refusal): return refusal
        case .route(let r): route = r
        }
        if route == .stats { return Self.json(200, stats) }
        // Answered through the deferred handler; reaching here means it declined.
        if route == .fetchSockets { return Self.json(404, ["error": "no such route"]) }
        let body: JSONValue
        if request.body.isEmpty {
            body = .object([:])
        } else {
            do { body = try JSONValue.parse(request.body) } catch {
                return Self.badRequest("body is not valid JSON: \(error)")
            }
        }
        switch route {
        case .stats:
            return Self.json(200, stats)
        case .fetchSockets:
            return Self.json(404, ["error": "no such route"])
        case .sockets(let action):
            return socketsRoute(action, body)
        case .emit:
            return emitRoute(body)
        case .projectUpdates(let id):
            guard body.objectValue != nil else { return Self.badRequest("body must be a JSON object") }
            return accepted(emitProjectUpdate(projectId: id, data: body))
        case .stageCompleted(let id):
            guard body.objectValue != nil else { return Self.badRequest("body must be a JSON object") }
            return accepted(emitStageCompletion(projectId: id, data: body))
        case .notifications(let id):
            guard body.objectValue != nil else { return Self.badRequest("body must be a JSON object") }
            return accepted(emitNotification(userId: id, data: body))
        }
    }

    private func emitRoute(_ body: JSONValue) -> HTTPResponse {
        guard let o = body.objectValue else { return Self.badRequest("body must be a JSON object") }
        guard let event = o["event"]?.stringValue, !event.isEmpty else {
            return Self.badRequest("event must be a non-empty string")
        }
        if SocketIODecoder.reservedEventNames.contains(event) { return Self.badRequest("event \(event) is reserved") }
        func rooms(_ key: String) -> [String]?? {
            guard let v = o[key], !v.isNull else { return .some(nil) }
            guard let list = v.arrayValue else { return nil }
            var out: [String] = []
            for item in list {
                guard let s = item.stringValue, !s.isEmpty else { return nil }
                out.append(s)
            }
            return .some(out)
        }
        guard let targetRooms = rooms("rooms") else {
            return Self.badRequest("rooms must be an array of non-empty strings")
        }
        guard let exceptRooms = rooms("except") else {
            return Self.badRequest("except must be an array of non-empty strings")
        }
        let namespace = o["namespace"]?.stringValue ?? "/"
        guard namespace.hasPrefix("/") else { return Self.badRequest("namespace must start with /") }
        guard io.hasNamespace(namespace) else { return Self.badRequest("unknown namespace \(namespace)") }
        if targetRooms?.isEmpty ?? true, o["rooms"] != nil {
            return Self.badRequest("rooms must not be empty (omit it to emit to the whole namespace)")
        }
        let data = o["data"]
        return accepted(
            emit(rooms: targetRooms ?? [], except: exceptRooms ?? [], event: event, data: data, namespace: namespace))
    }

    func authorized(_ head: HTTPRequestHead) -> Bool {
        guard let expected = configuration.apiToken, !expected.isEmpty,
            let header = head.value(of: "authorization")
        else { return false }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return false }
        return Self.constantTimeEquals(Array(String(parts[1]).trimmingSpaces().utf8), Array(expected.utf8))
    }

    static func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var diff = UInt8(a.count == b.count ? 0 : 1)
        for i in 0..<max(a.count, b.count) {
            diff |= (i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 0)
        }
        return diff == 0
    }

    static func pathID(_ segment: String) -> String? {
        let decoded = HTTPRequestHead(method: "GET", target: "/?x=" + segment).queryValue("x") ?? segment
        return RealtimeIDs.id(from: .string(decoded))
    }

    static func json(_ status: Int, _ body: JSONValue, headers: [(String, String)] = []) -> HTTPResponse {
        HTTPResponse(status: status, headers: [("Content-Type", "application/json")] + headers, body: body.serialized)
    }

    static func badRequest(_ message: String) -> HTTPResponse { json(400, ["error": .string(message)]) }
    func accepted(_ recipients: Int) -> HTTPResponse {
        io.isClustered
            ? Self.json(202, ["recipients": JSONValue(recipients), "scope": "node"])
            : Self.json(202, ["recipients": JSONValue(recipients)])
    }
    static func methodNotAllowed(_ allow: String) -> HTTPResponse {
        json(405, ["error": "method not allowed"], headers: [("Allow", allow)])
    }
}
