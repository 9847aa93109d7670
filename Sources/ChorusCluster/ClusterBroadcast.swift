// A broadcast as socket.io-redis-adapter 8.x publishes it (and socket.io-redis-emitter 5.x):
// MessagePack of `[uid, packet, opts]`, where `packet` is the unencoded Socket.IO packet
// `{type: 2, data: [event, ...args], nsp}` (Buffers inline as bin) and `opts` is
// `{rooms: [...], except: [...], flags: {...}}` (the emitter writes `{rooms, flags, except}`).
import ChorusJSON
import ChorusMsgPack
import ChorusSocketIO

/// Why a message from Redis was not understood. Counted and skipped, never fatal.
public enum ClusterWireError: Error, Sendable, Hashable {
    case msgpack(MsgPackDecodingError)
    case json(String)
    /// A field is missing or of the wrong type (`field` names it).
    case shape(field: String)
    case unknownRequestType(Int64)
}

/// The rooms a broadcast or a request is for, and the rooms it excludes. No rooms: the namespace.
public struct ClusterSelector: Sendable, Hashable {
    public var rooms: [String]
    public var except: [String]

    public init(rooms: [String] = [], except: [String] = []) {
        self.rooms = rooms
        self.except = except
    }

    var json: JSONValue {
        ["rooms": .array(rooms.map(JSONValue.string)), "except": .array(except.map(JSONValue.string))]
    }

    init(json: JSONValue?) throws(ClusterWireError) {
        guard let json, case .object = json else { throw .shape(field: "opts") }
        rooms = try roomList(json["rooms"], field: "opts.rooms")
        except = try roomList(json["except"], field: "opts.except")
    }
}

/// Socket.IO broadcast flags as the adapter carries them (`volatile`, `compress`, `local`,
/// `timeout`...). Kept as received; the known ones are read through accessors.
public struct ClusterFlags: Sendable, Hashable {
    public var value: MsgPackValue

    public init(_ value: MsgPackValue = .map([])) { self.value = value }

    public var isLocal: Bool { value["local"]?.boolValue == true }
    public var isVolatile: Bool { value["volatile"]?.boolValue == true }
    /// Milliseconds the sender waits for acknowledgements (broadcast with ack).
    public var timeout: Int64? { value["timeout"]?.int64Value }
}

/// The unencoded Socket.IO packet inside a broadcast: an EVENT for one namespace.
public struct ClusterPacket: Sendable, Hashable {
    /// Socket.IO packet type: 2 (EVENT), or 5 (BINARY_EVENT) from publishers that encode the type
    /// themselves; both are delivered as an event.
    public var type: Int64
    /// `[event, ...args]`.
    public var data: [JSONValue]
    public var namespace: String

    public init(type: Int64 = 2, data: [JSONValue], namespace: String) {
        self.type = type
        self.data = data
        self.namespace = namespace
    }

    public var event: String? { data.first?.stringValue }
    public var args: ArraySlice<JSONValue> { data.dropFirst() }

    /// `{type, data, nsp}`, the order socket.io 4 builds it in (`nsp` is set by the adapter).
    var msgpack: MsgPackValue {
        .map([
            MsgPackPair("type", .uint(UInt64(max(type, 0)))),
            MsgPackPair("data", .array(data.map(MsgPackValue.init(json:)))),
            MsgPackPair("nsp", .string(namespace)),
        ])
    }

    init(msgpack: MsgPackValue?) throws(ClusterWireError) {
        guard let msgpack, case .map = msgpack else { throw .shape(field: "packet") }
        guard let type = msgpack["type"]?.int64Value, type == 2 || type == 5 else { throw .shape(field: "packet.type") }
        guard case .array(let data)? = msgpack["data"], data.first?.stringValue != nil else {
            throw .shape(field: "packet.data")
        }
        self.type = type
        self.data = data.map(\.json)
        // The adapter reads a packet without nsp as the main namespace's.
        switch msgpack["nsp"] {
        case nil, .nil?: namespace = "/"
        case .string(let s)?: namespace = s
        default: throw .shape(field: "packet.nsp")
        }
    }
}

/// `[uid, packet, opts]` on a broadcast channel.
public struct ClusterBroadcast: Sendable, Hashable {
    /// The emitter's uid: it is not a node, and its messages are never this node's own.
    public static let emitterUID = "emitter"

    public var uid: String
    public var packet: ClusterPacket
    public var selector: ClusterSelector
    public var flags: ClusterFlags

    public init(uid: String, packet: ClusterPacket, selector: ClusterSelector, flags: ClusterFlags = ClusterFlags()) {
        self.uid = uid
        self.packet = packet
        self.selector = selector
        self.flags = flags
    }

    /// The bytes the adapter publishes; `emitterOrder`: the emitter's `{rooms, flags, except}`.
    public func encode(emitterOrder: Bool = false) -> [UInt8] {
        let rooms = MsgPackPair("rooms", .array(selector.rooms.map(MsgPackValue.string)))
        let except = MsgPackPair("except", .array(selector.except.map(MsgPackValue.string)))
        let flags = MsgPackPair("flags", flags.value)
        let opts = MsgPackValue.map(emitterOrder ? [rooms, flags, except] : [rooms, except, flags])
        return MsgPackEncoder.encode(.array([.string(uid), packet.msgpack, opts]))
    }

    /// Whether `bytes` starts as `encode` writes a broadcast of `uid` (a three-element array whose
    /// first element is `uid` as a fixstr), read from its first bytes only: a node's own
    /// broadcasts come back to it through its subscription and are dropped without being decoded.
    /// A message from another publisher that encodes differently is simply decoded.
    public static func isPublished(by uid: [UInt8], _ bytes: UnsafeRawBufferPointer) -> Bool {
        guard uid.count < 32, bytes.count > 2 + uid.count, bytes[0] == 0x93, bytes[1] == 0xA0 | UInt8(uid.count) else {
            return false
        }
        return bytes[2..<(2 + uid.count)].elementsEqual(uid)
    }

    public static func decode(_ bytes: UnsafeRawBufferPointer, decoder: MsgPackDecoder = MsgPackDecoder())
        throws(ClusterWireError) -> ClusterBroadcast
    {
        let value: MsgPackValue
        do throws(MsgPackDecodingError) { value = try decoder.decode(bytes) } catch { throw .msgpack(error) }
        guard case .array(let parts) = value, parts.count >= 3 else { throw .shape(field: "message") }
        guard let uid = parts[0].stringValue else { throw .shape(field: "uid") }
        let packet = try ClusterPacket(msgpack: parts[1])
        let opts = parts[2]
        guard case .map = opts else { throw .shape(field: "opts") }
        let selector = ClusterSelector(
            rooms: try roomList(opts["rooms"], field: "opts.rooms"),
            except: try roomList(opts["except"], field: "opts.except"))
        let flags: ClusterFlags
        switch opts["flags"] {
        case nil, .nil?: flags = ClusterFlags()
        case let f? where f.mapValue != nil: flags = ClusterFlags(f)
        default: throw .shape(field: "opts.flags")
        }
        return ClusterBroadcast(uid: uid, packet: packet, selector: selector, flags: flags)
    }

    public static func decode(_ bytes: [UInt8], decoder: MsgPackDecoder = MsgPackDecoder()) throws(ClusterWireError)
        -> ClusterBroadcast
    {
        let r = bytes.withUnsafeBytes { raw in
            Result { () throws(ClusterWireError) in try decode(raw, decoder: decoder) }
        }
        return try r.get()
    }
}

/// A room list: strings, or numbers (a Node app may use `io.to(42)`; the room is then "42"). Absent
/// or null is empty, as `new Set(undefined)` is.
func roomList(_ value: MsgPackValue?, field: String) throws(ClusterWireError) -> [String] {
    switch value {
    case nil, .nil?: return []
    case .array(let items)?:
        var rooms: [String] = []
        rooms.reserveCapacity(items.count)
        for item in items {
            guard let room = item.objectKey else { throw .shape(field: field) }
            rooms.append(room)
        }
        return rooms
    default: throw .shape(field: field)
    }
}

func roomList(_ value: JSONValue?, field: String) throws(ClusterWireError) -> [String] {
    switch value {
    case nil, .null?: return []
    case .array(let items)?:
        var rooms: [String] = []
        rooms.reserveCapacity(items.count)
        for item in items {
            switch item {
            case .string(let s): rooms.append(s)
            case .int(let i): rooms.append(String(i))
            default: throw .shape(field: field)
            }
        }
        return rooms
    default: throw .shape(field: field)
    }
}
