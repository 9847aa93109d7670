import ChorusJSON
import ChorusWebSocket

/// Why Engine.IO refuses a request before any session: the reference server's error table
/// (engine.io `Server.errors` and its messages), answered as `{"code": n, "message": "..."}` with the
/// status decided here, not where the request is judged. Its `FORBIDDEN` (4, 403) has no case: no
/// `allowRequest` hook refuses requests here.
enum EngineIOHandshakeError: Int, CaseIterable {
    case unknownTransport = 0
    case unknownSessionID = 1
    case badHandshakeMethod = 2
    case badRequest = 3
    case unsupportedProtocolVersion = 5

    var message: String {
        switch self {
        case .unknownTransport: "Transport unknown"
        case .unknownSessionID: "Session ID unknown"
        case .badHandshakeMethod: "Bad handshake method"
        case .badRequest: "Bad request"
        case .unsupportedProtocolVersion: "Unsupported protocol version"
        }
    }

    /// The reference answers every one of these with 400 (only FORBIDDEN gets 403).
    var status: Int { 400 }

    var response: HTTPResponse {
        let body: JSONValue = ["code": JSONValue(rawValue), "message": .string(message)]
        return HTTPResponse(status: status, headers: [("Content-Type", "application/json")], body: body.serialized)
    }
}
