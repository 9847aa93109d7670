import ChorusJSON
import ChorusLoop
import ChorusServer
import ChorusWebSocket
import Synchronization

// Operations on this process's sockets, wherever they live: a socket belongs to its connection's
// loop, so an operation hops to every loop (one task each), works there on that loop's sockets,
// and the answers are gathered once per loop — never a lock per socket or per message.

extension SocketIOServer {
    /// Runs `body` on each loop's thread for every local socket `selector` matches; `completion`
    /// gets the non-nil results once every loop has answered (on the last loop's thread).
    public func withLocalSockets<T: Sendable>(
        _ selector: SocketSelector, _ body: @escaping @Sendable (Socket) -> T?,
        completion: @escaping @Sendable ([T]) -> Void
    ) {
        guard let server = webSocketServer, server.loopCount > 0 else { return completion([]) }
        let gather = LoopGather<T>(loops: server.loopCount, completion: completion)
        for index in 0..<server.loopCount {
            server.eventLoop(index).execute { [self] in
                var found: [T] = []
                // Snapshot first: `body` may disconnect the socket (and change the session table).
                var matching: [Socket] = []
                loopSessions[index].forEachSocket { socket in
                    if selector.matches(socket) { matching.append(socket) }
                }
                for socket in matching { if let result = body(socket) { found.append(result) } }
                gather.add(found)
            }
        }
    }

    /// The local sockets `selector` matches, described for `fetchSockets`.
    public func localSocketDescriptions(
        _ selector: SocketSelector, completion: @escaping @Sendable ([SocketDescription]) -> Void
    ) {
        withLocalSockets(selector, { $0.describe() }, completion: completion)
    }

    /// The rooms of `namespace` with at least one local member (socket-id rooms included, as in Node).
    public func localRooms(namespace: String) -> Set<String> { rooms.roomNames(namespace: namespace) }

    /// The local sockets `selector` matches join `rooms` (on their loops; returns at once).
    public func localSocketsJoin(_ selector: SocketSelector, rooms: [String]) {
        withLocalSockets(
            selector,
            { socket -> Bool? in
                for room in rooms { socket.join(room) }
                return nil
            }, completion: { _ in })
    }

    public func localSocketsLeave(_ selector: SocketSelector, rooms: [String]) {
        withLocalSockets(
            selector,
            { socket -> Bool? in
                for room in rooms { socket.leave(room) }
                return nil
            }, completion: { _ in })
    }

    public func localDisconnectSockets(_ selector: SocketSelector, close: Bool) {
        withLocalSockets(
            selector,
            { socket -> Bool? in
                socket.disconnect(close: close)
                return nil
            }, completion: { _ in })
    }
}

/// Answers from every loop, handed over once the last one is in.
final class LoopGather<T: Sendable>: Sendable {
    private let state: Mutex<(items: [T], remaining: Int)>
    private let completion: @Sendable ([T]) -> Void

    init(loops: Int, completion: @escaping @Sendable ([T]) -> Void) {
        state = Mutex(([], loops))
        self.completion = completion
    }

    func add(_ items: [T]) {
        let done: [T]? = state.withLock { s in
            s.items += items
            s.remaining -= 1
            return s.remaining == 0 ? s.items : nil
        }
        if let done { completion(done) }
    }
}

extension LoopSessions {
    func forEachSocket(_ body: (Socket) -> Void) {
        forEachSession { session in
            session.sockets.forEach(body)
        }
    }
}

extension Socket {
    /// This socket as `fetchSockets` describes it (loop thread).
    func describe() -> SocketDescription {
        SocketDescription(
            id: id, handshake: handshake.nodeJSON, rooms: [id] + joined.names.sorted(),
            data: (data as? SocketDataRepresentable)?.socketDataJSON ?? .null)
    }
}

extension Handshake {
    /// The handshake as a Node Socket.IO server describes it:
    /// `{headers, time, address, xdomain, secure, issued, url, query, auth}`.
    public var nodeJSON: JSONValue {
        var headers = JSONObject()
        for (name, value) in request.headers { headers[name.lowercased()] = .string(value) }
        var query = JSONObject()
        for (name, value) in request.query where query[name] == nil { query[name] = .string(value) }
        return [
            "headers": .object(headers),
            "time": .string(JavaScriptDate.string(epochMilliseconds: issued)),
            "address": .string(address),
            "xdomain": .bool(request.value(of: "origin") != nil),
            "secure": false,
            "issued": .int(issued),
            "url": .string(request.target),
            "query": .object(query),
            "auth": auth,
        ]
    }
}

/// `Date.prototype.toString()` in UTC ("Thu Dec 03 2026 09:00:00 GMT+0000 (Coordinated Universal Time)").
enum JavaScriptDate {
    static func string(epochMilliseconds ms: Int64) -> String {
        let seconds = ms >= 0 ? ms / 1000 : (ms - 999) / 1000
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = seconds - days * 86_400
        // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        let weekday = Int((days % 7 + 11) % 7)  // 1970-01-01 was a Thursday
        let names = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return
            "\(names[weekday]) \(months[Int(month) - 1]) \(two(day)) \(year) \(two(secondOfDay / 3600)):\(two(secondOfDay / 60 % 60)):\(two(secondOfDay % 60))"
            + " GMT+0000 (Coordinated Universal Time)"
    }
}
