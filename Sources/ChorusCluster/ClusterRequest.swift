// Requests between nodes and their responses, as socket.io-redis-adapter 8.x (and older 7.x forms
// it still answers) and socket.io-redis-emitter 5.x write them: JSON (first byte `{`), except the
// broadcast with acknowledgements (type 7) and its acknowledgements (type 9), which are MessagePack.
// Keys are written in the order the adapter writes them, so the bytes match byte for byte.
import ChorusJSON
import ChorusMsgPack
import ChorusSocketIO

/// The adapter's request types.
public enum ClusterRequestType: Int64, Sendable, Hashable, CaseIterable {
    case sockets = 0
    case allRooms = 1
    case remoteJoin = 2
    case remoteLeave = 3
    case remoteDisconnect = 4
    case remoteFetch = 5
    case serverSideEmit = 6
    case broadcast = 7
    case broadcastClientCount = 8
    case broadcastAck = 9
}

/// What a REMOTE_JOIN / REMOTE_LEAVE applies to: the sockets a selector matches (8.x, emitter),
/// or one socket by id (the 7.x form, answered with `{requestId}`).
public enum ClusterMembershipTarget: Sendable, Hashable {
    case selector(ClusterSelector, rooms: [String])
    case socket(id: String, room: String)
}

/// What a REMOTE_DISCONNECT applies to.
public enum ClusterDisconnectTarget: Sendable, Hashable {
    case selector(ClusterSelector, close: Bool)
    case socket(id: String, close: Bool)
}

/// A request on `<key>-request#<nsp>#`. `uid` is the requesting node's (nil from the emitter's
/// join/leave/disconnect, which carry none); `requestId` is present when an answer is expected.
public enum ClusterRequest: Sendable, Hashable {
    case sockets(uid: String, requestId: String, rooms: [String])
    case allRooms(uid: String, requestId: String)
    case remoteJoin(uid: String?, requestId: String?, ClusterMembershipTarget)
    case remoteLeave(uid: String?, requestId: String?, ClusterMembershipTarget)
    case remoteDisconnect(uid: String?, requestId: String?, ClusterDisconnectTarget)
    case remoteFetch(uid: String, requestId: String, ClusterSelector)
    /// `requestId` present: the sender waits for one acknowledgement per node.
    case serverSideEmit(uid: String, requestId: String?, data: [JSONValue])
    /// Broadcast with acknowledgements (MessagePack).
    case broadcast(
        uid: String, requestId: String, packet: ClusterPacket, selector: ClusterSelector, flags: ClusterFlags)

    public var type: ClusterRequestType {
        switch self {
        case .sockets: .sockets
        case .allRooms: .allRooms
        case .remoteJoin: .remoteJoin
        case .remoteLeave: .remoteLeave
        case .remoteDisconnect: .remoteDisconnect
        case .remoteFetch: .remoteFetch
        case .serverSideEmit: .serverSideEmit
        case .broadcast: .broadcast
        }
    }

    public var uid: String? {
        switch self {
        case .sockets(let uid, _, _), .allRooms(let uid, _), .remoteFetch(let uid, _, _),
            .serverSideEmit(let uid, _, _),
            .broadcast(let uid, _, _, _, _):
            uid
        case .remoteJoin(let uid, _, _), .remoteLeave(let uid, _, _), .remoteDisconnect(let uid, _, _):
            uid
        }
    }

    public var requestId: String? {
        switch self {
        case .sockets(_, let id, _), .allRooms(_, let id), .remoteFetch(_, let id, _), .broadcast(_, let id, _, _, _):
            id
        case .remoteJoin(_, let id, _), .remoteLeave(_, let id, _), .remoteDisconnect(_, let id, _),
            .serverSideEmit(_, let id, _):
            id
        }
    }

    // MARK: Encoding

    public func encode() -> [UInt8] {
        if case .broadcast(let uid, let requestId, let packet, let selector, let flags) = self {
            let opts = MsgPackValue.map([
                MsgPackPair("rooms", .array(selector.rooms.map(MsgPackValue.string))),
                MsgPackPair("except", .array(selector.except.map(MsgPackValue.string))),
                MsgPackPair("flags", flags.value),
            ])
            return MsgPackEncoder.encode(
                .map([
                    MsgPackPair("uid", .string(uid)), MsgPackPair("requestId", .string(requestId)),
                    MsgPackPair("type", .uint(7)), MsgPackPair("packet", packet.msgpack), MsgPackPair("opts", opts),
                ]))
        }
        var o = JSONObject()
        if let uid { o.appendUnchecked(key: "uid", value: .string(uid)) }
        // The selector forms of join/leave/disconnect carry no requestId (nothing answers them).
        if let requestId { o.appendUnchecked(key: "requestId", value: .string(requestId)) }
        o.appendUnchecked(key: "type", value: .int(type.rawValue))
        switch self {
        case .sockets(_, _, let rooms):
            o.appendUnchecked(key: "rooms", value: .array(rooms.map(JSONValue.string)))
        case .allRooms, .broadcast:
            break
        case .remoteJoin(_, _, let target), .remoteLeave(_, _, let target):
            switch target {
            case .selector(let selector, let rooms):
                o.appendUnchecked(key: "opts", value: selector.json)
                o.appendUnchecked(key: "rooms", value: .array(rooms.map(JSONValue.string)))
            case .socket(let id, let room):
                o.appendUnchecked(key: "sid", value: .string(id))
                o.appendUnchecked(key: "room", value: .string(room))
            }
        case .remoteDisconnect(_, _, let target):
            switch target {
            case .selector(let selector, let close):
                o.appendUnchecked(key: "opts", value: selector.json)
                o.appendUnchecked(key: "close", value: .bool(close))
            case .socket(let id, let close):
                o.appendUnchecked(key: "sid", value: .string(id))
                o.appendUnchecked(key: "close", value: .bool(close))
            }
        case .remoteFetch(_, _, let selector):
            o.appendUnchecked(key: "opts", value: selector.json)
        case .serverSideEmit(_, _, let data):
            o.appendUnchecked(key: "data", value: .array(data))
        }
        return JSONValue.object(o).serialized
    }

    // MARK: Decoding

    public static func decode(_ bytes: UnsafeRawBufferPointer, decoder: MsgPackDecoder = MsgPackDecoder())
        throws(ClusterWireError) -> ClusterRequest
    {
        guard bytes.first == UInt8(ascii: "{") else { return try decodeMsgPack(bytes, decoder: decoder) }
        let json: JSONValue
        do throws(JSONError) { json = try JSONValue.parse(bytes) } catch { throw .json(error.description) }
        guard case .object = json else { throw .shape(field: "request") }
        guard let rawType = json["type"]?.int64Value else { throw .shape(field: "type") }
        guard let type = ClusterRequestType(rawValue: rawType) else { throw .unknownRequestType(rawType) }
        let uid = try optionalString(json["uid"], field: "uid")
        let requestId = try optionalString(json["requestId"], field: "requestId")
        func required(_ value: String?, _ field: String) throws(ClusterWireError) -> String {
            guard let value else { throw .shape(field: field) }
            return value
        }
        switch type {
        case .sockets:
            return .sockets(
                uid: try required(uid, "uid"), requestId: try required(requestId, "requestId"),
                rooms: try roomList(json["rooms"], field: "rooms"))
        case .allRooms:
            return .allRooms(uid: try required(uid, "uid"), requestId: try required(requestId, "requestId"))
        case .remoteJoin, .remoteLeave:
            let target: ClusterMembershipTarget
            if json["opts"] != nil {
                target = .selector(
                    try ClusterSelector(json: json["opts"]), rooms: try roomList(json["rooms"], field: "rooms"))
            } else {
                guard let sid = json["sid"]?.stringValue else { throw .shape(field: "sid") }
                guard let room = json["room"]?.stringValue ?? json["room"]?.int64Value.map({ String($0) }) else {
                    throw .shape(field: "room")
                }
                target = .socket(id: sid, room: room)
            }
            return type == .remoteJoin
                ? .remoteJoin(uid: uid, requestId: requestId, target)
                : .remoteLeave(uid: uid, requestId: requestId, target)
        case .remoteDisconnect:
            let close = json["close"]?.boolValue ?? false
            if json["opts"] != nil {
                return .remoteDisconnect(
                    uid: uid, requestId: requestId, .selector(try ClusterSelector(json: json["opts"]), close: close))
            }
            guard let sid = json["sid"]?.stringValue else { throw .shape(field: "sid") }
            return .remoteDisconnect(uid: uid, requestId: requestId, .socket(id: sid, close: close))
        case .remoteFetch:
            return .remoteFetch(
                uid: try required(uid, "uid"), requestId: try required(requestId, "requestId"),
                try ClusterSelector(json: json["opts"]))
        case .serverSideEmit:
            guard case .array(let data)? = json["data"] else { throw .shape(field: "data") }
            return .serverSideEmit(uid: try required(uid, "uid"), requestId: requestId, data: data)
        case .broadcast, .broadcastClientCount, .broadcastAck:
            // Type 7 comes as MessagePack; 8 and 9 are responses.
            throw .shape(field: "type")
        }
    }

    public static func decode(_ bytes: [UInt8], decoder: MsgPackDecoder = MsgPackDecoder()) throws(ClusterWireError)
        -> ClusterRequest
    {
        let r = bytes.withUnsafeBytes { raw in
            Result { () throws(ClusterWireError) in try decode(raw, decoder: decoder) }
        }
        return try r.get()
    }

    private static func decodeMsgPack(_ bytes: UnsafeRawBufferPointer, decoder: MsgPackDecoder) throws(ClusterWireError)
        -> ClusterRequest
    {
        let value: MsgPackValue
        do throws(MsgPackDecodingError) { value = try decoder.decode(bytes) } catch { throw .msgpack(error) }
        guard case .map = value else { throw .shape(field: "request") }
        guard let rawType = value["type"]?.int64Value else { throw .shape(field: "type") }
        guard rawType == ClusterRequestType.broadcast.rawValue else {
            if ClusterRequestType(rawValue: rawType) == nil { throw .unknownRequestType(rawType) }
            throw .shape(field: "type")
        }
        guard let uid = value["uid"]?.stringValue else { throw .shape(field: "uid") }
        guard let requestId = value["requestId"]?.stringValue else { throw .shape(field: "requestId") }
        let packet = try ClusterPacket(msgpack: value["packet"])
        guard let opts = value["opts"], opts.mapValue != nil else { throw .shape(field: "opts") }
        let selector = ClusterSelector(
            rooms: try roomList(opts["rooms"], field: "opts.rooms"),
            except: try roomList(opts["except"], field: "opts.except"))
        let flags = opts["flags"].flatMap { $0.mapValue != nil ? ClusterFlags($0) : nil } ?? ClusterFlags()
        return .broadcast(uid: uid, requestId: requestId, packet: packet, selector: selector, flags: flags)
    }
}

/// A socket as REMOTE_FETCH describes it, `{id, handshake, rooms, data}`: exactly the server API's
/// `SocketDescription`, given its wire form here.
public typealias ClusterRemoteSocket = SocketDescription

extension SocketDescription {
    var json: JSONValue {
        ["id": .string(id), "handshake": handshake, "rooms": .array(rooms.map(JSONValue.string)), "data": data]
    }

    init(json: JSONValue) throws(ClusterWireError) {
        guard case .object = json, let id = json["id"]?.stringValue else { throw .shape(field: "sockets.id") }
        self.init(
            id: id, handshake: json["handshake"] ?? .null,
            rooms: try roomList(json["rooms"], field: "sockets.rooms"), data: json["data"] ?? .null)
    }
}

/// A response on `<key>-response#<nsp>#` (or the node-specific channel). The adapter's responses
/// to SOCKETS, ALL_ROOMS, REMOTE_FETCH and the 7.x single-socket forms carry no type: the pending
/// request's type tells them apart (`decode(_:kindOf:)`).
public enum ClusterResponse: Sendable, Hashable {
    case sockets(requestId: String, socketIds: [String])
    case allRooms(requestId: String, rooms: [String])
    /// The single-socket join/leave/disconnect answer.
    case done(requestId: String)
    case fetch(requestId: String, sockets: [ClusterRemoteSocket])
    /// One node's acknowledgement of a server-side emit (its first argument).
    case serverSideEmit(requestId: String, data: JSONValue)
    case broadcastClientCount(requestId: String, clientCount: Int)
    /// One client's acknowledgement of a broadcast (its first argument; MessagePack).
    case broadcastAck(requestId: String, packet: JSONValue)

    public var requestId: String {
        switch self {
        case .sockets(let id, _), .allRooms(let id, _), .done(let id), .fetch(let id, _), .serverSideEmit(let id, _),
            .broadcastClientCount(let id, _), .broadcastAck(let id, _):
            id
        }
    }

    public func encode() -> [UInt8] {
        var o = JSONObject()
        switch self {
        case .sockets(let id, let ids):
            o.appendUnchecked(key: "requestId", value: .string(id))
            o.appendUnchecked(key: "sockets", value: .array(ids.map(JSONValue.string)))
        case .allRooms(let id, let rooms):
            o.appendUnchecked(key: "requestId", value: .string(id))
            o.appendUnchecked(key: "rooms", value: .array(rooms.map(JSONValue.string)))
        case .done(let id):
            o.appendUnchecked(key: "requestId", value: .string(id))
        case .fetch(let id, let sockets):
            o.appendUnchecked(key: "requestId", value: .string(id))
            o.appendUnchecked(key: "sockets", value: .array(sockets.map(\.json)))
        case .serverSideEmit(let id, let data):
            o.appendUnchecked(key: "type", value: .int(ClusterRequestType.serverSideEmit.rawValue))
            o.appendUnchecked(key: "requestId", value: .string(id))
            o.appendUnchecked(key: "data", value: data)
        case .broadcastClientCount(let id, let count):
            o.appendUnchecked(key: "type", value: .int(ClusterRequestType.broadcastClientCount.rawValue))
            o.appendUnchecked(key: "requestId", value: .string(id))
            o.appendUnchecked(key: "clientCount", value: .int(Int64(count)))
        case .broadcastAck(let id, let packet):
            return MsgPackEncoder.encode(
                .map([
                    MsgPackPair("type", .uint(UInt64(ClusterRequestType.broadcastAck.rawValue))),
                    MsgPackPair("requestId", .string(id)),
                    MsgPackPair("packet", MsgPackValue(json: packet)),
                ]))
        }
        return JSONValue.object(o).serialized
    }

    /// `kindOf`: the type of this node's pending request with that id, nil if there is none (the
    /// response is then for another node, or late: `nil` is returned, not an error).
    public static func decode(
        _ bytes: UnsafeRawBufferPointer, decoder: MsgPackDecoder = MsgPackDecoder(),
        kindOf: (String) -> ClusterRequestType?
    ) throws(ClusterWireError) -> ClusterResponse? {
        if bytes.first != UInt8(ascii: "{") {
            let value: MsgPackValue
            do throws(MsgPackDecodingError) { value = try decoder.decode(bytes) } catch { throw .msgpack(error) }
            guard case .map = value, let requestId = value["requestId"]?.stringValue else {
                throw .shape(field: "requestId")
            }
            guard value["type"]?.int64Value == ClusterRequestType.broadcastAck.rawValue else {
                throw .shape(field: "type")
            }
            guard kindOf(requestId) != nil else { return nil }
            // An acknowledgement without arguments is `undefined`, dropped by notepack: null.
            return .broadcastAck(
                requestId: requestId, packet: value["packet"].map { $0.isUndefined ? .null : $0.json } ?? .null)
        }
        let json: JSONValue
        do throws(JSONError) { json = try JSONValue.parse(bytes) } catch { throw .json(error.description) }
        guard case .object = json, let requestId = json["requestId"]?.stringValue else {
            throw .shape(field: "requestId")
        }
        guard let kind = kindOf(requestId) else { return nil }
        switch json["type"]?.int64Value {
        case ClusterRequestType.broadcastClientCount.rawValue?:
            guard let count = json["clientCount"]?.intValue, count >= 0 else { throw .shape(field: "clientCount") }
            return .broadcastClientCount(requestId: requestId, clientCount: count)
        case ClusterRequestType.serverSideEmit.rawValue?:
            return .serverSideEmit(requestId: requestId, data: json["data"] ?? .null)
        default:
            break
        }
        switch kind {
        case .sockets:
            return .sockets(requestId: requestId, socketIds: try roomList(json["sockets"], field: "sockets"))
        case .allRooms:
            return .allRooms(requestId: requestId, rooms: try roomList(json["rooms"], field: "rooms"))
        case .remoteFetch:
            guard case .array(let items)? = json["sockets"] else { throw .shape(field: "sockets") }
            var sockets: [ClusterRemoteSocket] = []
            for item in items { sockets.append(try ClusterRemoteSocket(json: item)) }
            return .fetch(requestId: requestId, sockets: sockets)
        case .remoteJoin, .remoteLeave, .remoteDisconnect:
            return .done(requestId: requestId)
        case .serverSideEmit, .broadcast, .broadcastClientCount, .broadcastAck:
            throw .shape(field: "type")
        }
    }

    public static func decode(_ bytes: [UInt8], kindOf: (String) -> ClusterRequestType?) throws(ClusterWireError)
        -> ClusterResponse?
    {
        let r = bytes.withUnsafeBytes { raw in Result { () throws(ClusterWireError) in try decode(raw, kindOf: kindOf) }
        }
        return try r.get()
    }
}

private func optionalString(_ value: JSONValue?, field: String) throws(ClusterWireError) -> String? {
    switch value {
    case nil, .null?: return nil
    case .string(let s)?: return s
    default: throw .shape(field: field)
    }
}
