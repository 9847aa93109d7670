import ChorusJSON
import ChorusProxy
import ChorusSocketIO
import ChorusWebSocket

/// The JSON the proxies post to the backend and what its answers mean (README, "Backend proxies").
/// Pure: no I/O, so each rule is tested on values.
public enum BackendContract {
    // MARK: message:send (--proxy-message)

    /// What the message proxy decided.
    public enum MessageDecision: Sendable, Equatable {
        /// 2xx: the stored message, completed; broadcast as `message:new` and acked.
        case stored(JSONValue)
        /// 4xx: acked `{ok: false, error}`, nothing broadcast.
        case refused(String)
        /// Timeout, 5xx, no connection, overload, or an unusable answer.
        case unavailable
    }

    public static let unavailable = "unavailable"
    public static let forbidden = "forbidden"

    /// `{"userId", "conversationId", "message": {"content", "type"}}`; the conversation id as the
    /// client sent it (string or number).
    public static func messageRequest(userId: String, _ send: MessageSend) -> JSONValue {
        [
            "userId": .string(userId),
            "conversationId": send.conversationIdValue,
            "message": ["content": .string(send.content), "type": .string(send.type)],
        ]
    }

    /// The answer to a message call. A 2xx must carry `{"message": {...}}` (an object); `id`,
    /// `conversationId`, `senderId` and `createdAt` are filled only where the backend left them out.
    /// `invalid` is true when a 2xx answer could not be used (the caller counts it).
    public static func messageDecision(
        _ outcome: ProxyOutcome, userId: String, _ send: MessageSend,
        id: () -> String = MessageStamp.uuid,
        now: () -> String = { MessageStamp.iso8601(epochMilliseconds: MessageStamp.nowMilliseconds()) }
    ) -> (decision: MessageDecision, invalid: Bool) {
        guard case .answered(let status, let body) = outcome else { return (.unavailable, false) }
        switch status {
        case 200..<300:
            guard let answer = try? JSONValue.parse(body), case .object(var message)? = answer["message"] else {
                return (.unavailable, true)
            }
            if message["id"] == nil { message["id"] = .string(id()) }
            if message["conversationId"] == nil { message["conversationId"] = send.conversationIdValue }
            if message["senderId"] == nil { message["senderId"] = .string(userId) }
            if message["createdAt"] == nil { message["createdAt"] = .string(now()) }
            return (.stored(.object(message)), false)
        case 400..<500:
            return (.refused(errorText(body) ?? (status == 403 ? forbidden : "refused")), false)
        default:
            return (.unavailable, false)
        }
    }

    /// The backend's `{"error": "..."}`, if it sent one (at most 256 bytes of it reach the client).
    static func errorText(_ body: [UInt8]) -> String? {
        guard let text = (try? JSONValue.parse(body))?["error"]?.stringValue, !text.isEmpty else { return nil }
        guard text.utf8.count > 256 else { return text }
        return String(decoding: Array(text.utf8.prefix(256)), as: UTF8.self)
    }

    // MARK: join:project / join:conversation (--proxy-join)

    public enum JoinDecision: Sendable, Equatable {
        case allowed, forbidden, unavailable
    }

    /// `{"userId", "room", "kind", "id"}`: `kind` is `project` or `conversation`, `room` the
    /// Socket.IO room (`project:<id>`).
    public static func joinRequest(userId: String, room: String, kind: String, id: String) -> JSONValue {
        ["userId": .string(userId), "room": .string(room), "kind": .string(kind), "id": .string(id)]
    }

    /// 2xx allows, 403 refuses, anything else (another status, a timeout, no connection) is unavailable.
    public static func joinDecision(_ outcome: ProxyOutcome) -> JoinDecision {
        guard case .answered(let status, _) = outcome else { return .unavailable }
        switch status {
        case 200..<300: return .allowed
        case 403: return .forbidden
        default: return .unavailable
        }
    }

    // MARK: CONNECT (--proxy-connect)

    public enum ConnectDecision: Sendable, Equatable {
        /// 2xx: the user (`userId`, or the verified token's subject) and the backend's `data`.
        case accepted(userId: String, data: JSONValue?)
        /// 401/403: CONNECT_ERROR with this message.
        case refused(String)
        case unavailable
    }

    /// `{"auth", "query", "headers", "address", "userId"?}`: the CONNECT packet's auth payload, the
    /// handshake's query parameters, the headers named by `--proxy-connect-header` (lower-case names;
    /// absent ones left out), the client address, and the token's subject when JWT ran first.
    public static func connectRequest(_ handshake: Handshake, headers names: [String], verifiedUserId: String?)
        -> JSONValue
    {
        var query = JSONObject()
        for (name, value) in handshake.request.query { query[name] = .string(value) }
        var headers = JSONObject()
        for name in names {
            if let value = handshake.header(name) { headers[name.lowercased()] = .string(value) }
        }
        var o: JSONObject = [
            "auth": handshake.auth,
            "query": .object(query),
            "headers": .object(headers),
            "address": .string(handshake.address),
        ]
        if let verifiedUserId { o["userId"] = .string(verifiedUserId) }
        return .object(o)
    }

    /// A 2xx answer names the user (`userId`: a non-empty string or an integer); after JWT it may
    /// leave it out (the token's subject stays) but may not name someone else. `invalid` is true when a
    /// 2xx answer could not be used.
    public static func connectDecision(_ outcome: ProxyOutcome, verifiedUserId: String?) -> (
        decision: ConnectDecision, invalid: Bool
    ) {
        guard case .answered(let status, let body) = outcome else { return (.unavailable, false) }
        switch status {
        case 200..<300:
            guard let answer = try? JSONValue.parse(body), answer.objectValue != nil else {
                return (.unavailable, true)
            }
            let data = answer["data"].flatMap { $0.isNull ? nil : $0 }
            let named = answer["userId"].flatMap { $0.isNull ? nil : $0 }
            switch (named.map(RealtimeIDs.id(from:)), verifiedUserId) {
            case (nil, let verified?):
                return (.accepted(userId: verified, data: data), false)
            case (let id??, nil):
                return (.accepted(userId: id, data: data), false)
            case (let id??, let verified?) where id == verified:
                return (.accepted(userId: id, data: data), false)
            case (.some(.some), .some):
                return (.refused("unauthorized"), false)
            default:
                // No usable userId and nothing verified before.
                return (.unavailable, true)
            }
        case 401:
            return (.refused(errorText(body) ?? "unauthorized"), false)
        case 403:
            return (.refused(errorText(body) ?? forbidden), false)
        default:
            return (.unavailable, false)
        }
    }
}
