// The wire of Socket.IO's Redis Streams adapter (socket.io-redis-streams-adapter 0.3.x on
// socket.io-adapter's `ClusterAdapter`), as its lib/adapter.ts and cluster-adapter.ts write it:
//
// - Stream entries (`XADD <stream> MAXLEN ~ <n> * uid <uid> nsp <nsp> type <n> data <data>`) for
//   what every node must see in order: BROADCAST without acknowledgements, SOCKETS_JOIN,
//   SOCKETS_LEAVE, DISCONNECT_SOCKETS. `type` is the decimal MessageType; `data` is JSON text, or
//   base64 of MessagePack when a broadcast's data holds binary. The entry id is the offset a
//   replayable event carries to the client.
// - Pub/sub messages, MessagePack of `{uid, nsp, type, data}`, for requests that wait for answers
//   (a BROADCAST with a requestId, FETCH_SOCKETS, SERVER_SIDE_EMIT) on `<prefix>#<nsp>#`, and their
//   responses on the requester's `<prefix>#<nsp>#<uid>#`.
// - Sessions: `SET sio:session:<pid> <base64 of MessagePack {sid, pid, rooms, data}> PX <window>`.
import ChorusJSON
import ChorusMsgPack
import ChorusSocketIO
import ChorusWebSocket

/// socket.io-adapter's `MessageType`.
enum StreamMessageType: Int, Sendable {
    case initialHeartbeat = 1, heartbeat, broadcast, socketsJoin, socketsLeave, disconnectSockets, fetchSockets
    case fetchSocketsResponse, serverSideEmit, serverSideEmitResponse, broadcastClientCount, broadcastAck, adapterClose
}

/// One `ClusterMessage` or `ClusterResponse`: who sent it, for which namespace, and its `data`.
struct StreamMessage: Sendable, Equatable {
    var uid: String
    var nsp: String
    var type: Int
    var data: JSONValue?

    var kind: StreamMessageType? { StreamMessageType(rawValue: type) }

    // MARK: Stream entries

    /// The entry's field/value pairs, as the reference's `encode`.
    var streamFields: [[UInt8]] {
        var fields: [[UInt8]] = [
            Array("uid".utf8), Array(uid.utf8), Array("nsp".utf8), Array(nsp.utf8),
            Array("type".utf8), Array(String(type).utf8),
        ]
        if let data {
            fields.append(Array("data".utf8))
            if data.containsBinary {
                fields.append(Array(Base64.encode(MsgPackEncoder.encode(MsgPackValue(json: data))).utf8))
            } else {
                var text: [UInt8] = []
                data.serialize(into: &text)
                fields.append(text)
            }
        }
        return fields
    }

    /// From an entry's field/value pairs; nil if it is not one (no `nsp`: the reference skips it
    /// too) or its data does not decode.
    init?(streamFields fields: [String: [UInt8]], decoder: MsgPackDecoder) {
        guard let uid = fields["uid"], let nsp = fields["nsp"], let type = fields["type"],
            let number = Int(String(decoding: type, as: UTF8.self))
        else { return nil }
        self.uid = String(decoding: uid, as: UTF8.self)
        self.nsp = String(decoding: nsp, as: UTF8.self)
        self.type = number
        guard let raw = fields["data"], !raw.isEmpty else { data = nil; return }
        if raw.first == UInt8(ascii: "{") {
            guard let value = try? JSONValue.parse(raw) else { return nil }
            data = value
        } else {
            guard let bytes = Base64.decode(String(decoding: raw, as: UTF8.self)),
                let value = try? decoder.decode(bytes)
            else { return nil }
            data = value.json
        }
    }

    init(uid: String, nsp: String, type: StreamMessageType, data: JSONValue?) {
        self.uid = uid
        self.nsp = nsp
        self.type = type.rawValue
        self.data = data
    }

    // MARK: Pub/sub

    var pubSubPayload: [UInt8] {
        var pairs = [
            MsgPackPair(.string("uid"), .string(uid)), MsgPackPair(.string("nsp"), .string(nsp)),
            MsgPackPair(.string("type"), .uint(UInt64(type))),
        ]
        if let data { pairs.append(MsgPackPair(.string("data"), MsgPackValue(json: data))) }
        return MsgPackEncoder.encode(.map(pairs))
    }

    init?(pubSubPayload payload: UnsafeRawBufferPointer, decoder: MsgPackDecoder) {
        guard let value = try? decoder.decode(payload) else { return nil }
        let json = value.json
        guard let uid = json["uid"]?.stringValue, let nsp = json["nsp"]?.stringValue, let type = json["type"]?.intValue
        else { return nil }
        self.uid = uid
        self.nsp = nsp
        self.type = Int(type)
        data = json["data"]
    }
}

/// `opts` of a broadcast or a socket operation: `{rooms, except, flags}`.
struct StreamOptions: Sendable, Equatable {
    var rooms: [String]
    var except: [String]
    var flags: JSONObject = [:]

    var json: JSONValue {
        [
            "rooms": .array(rooms.map(JSONValue.string)), "except": .array(except.map(JSONValue.string)),
            "flags": .object(flags),
        ]
    }

    init(rooms: [String], except: [String], flags: JSONObject = [:]) {
        self.rooms = rooms
        self.except = except
        self.flags = flags
    }

    init?(json: JSONValue?) {
        guard let json, case .object = json else { return nil }
        rooms = json["rooms"]?.arrayValue?.compactMap(\.stringValue) ?? []
        except = json["except"]?.arrayValue?.compactMap(\.stringValue) ?? []
        if case .object(let f)? = json["flags"] { flags = f }
    }

    /// Whether a socket in `sessionRooms` (its own id among them) receives it, as the reference's
    /// `shouldIncludePacket`.
    func reaches(_ sessionRooms: [String]) -> Bool {
        let included = rooms.isEmpty || sessionRooms.contains { rooms.contains($0) }
        return included && !sessionRooms.contains { except.contains($0) }
    }
}

/// A BROADCAST's data: `{packet: {type: 2, data: [event, ...args]}, opts, requestId?}`.
struct StreamBroadcast: Sendable, Equatable {
    var event: String
    var args: [JSONValue]
    var options: StreamOptions
    var requestId: String?

    var json: JSONValue {
        var o: JSONObject = [
            "packet": ["type": 2, "data": .array([.string(event)] + args)],
            "opts": options.json,
        ]
        if let requestId { o["requestId"] = .string(requestId) }
        return .object(o)
    }

    init(event: String, args: [JSONValue], options: StreamOptions, requestId: String? = nil) {
        self.event = event
        self.args = args
        self.options = options
        self.requestId = requestId
    }

    /// nil unless an EVENT packet (type 2) whose data starts with the event's name.
    init?(json: JSONValue?) {
        guard let json, let packet = json["packet"], packet["type"]?.intValue == 2,
            let data = packet["data"]?.arrayValue, let event = data.first?.stringValue,
            let options = StreamOptions(json: json["opts"])
        else { return nil }
        self.event = event
        args = Array(data.dropFirst())
        self.options = options
        requestId = json["requestId"]?.stringValue
    }

    /// Whether the event gets an offset (socket.io-adapter's `addOffsetIfNecessary`: no
    /// acknowledgement asked, not volatile).
    var isReplayable: Bool { requestId == nil && options.flags["volatile"] == nil }
}

/// A stream entry id, `<milliseconds>-<sequence>`, ordered as Redis orders them.
struct StreamID: Comparable, Hashable, Sendable, CustomStringConvertible {
    var milliseconds: UInt64
    var sequence: UInt64

    static let zero = StreamID(milliseconds: 0, sequence: 0)

    init(milliseconds: UInt64, sequence: UInt64) {
        self.milliseconds = milliseconds
        self.sequence = sequence
    }

    /// Exactly `^[0-9]+-[0-9]+$` (the reference refuses any other offset).
    init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, parts.allSatisfy({ !$0.isEmpty && $0.utf8.allSatisfy { $0 >= 48 && $0 <= 57 } }),
            let ms = UInt64(parts[0]), let seq = UInt64(parts[1])
        else { return nil }
        self.init(milliseconds: ms, sequence: seq)
    }

    /// The smallest id after this one (XRANGE's exclusive start without Redis 6.2's `(`).
    var next: StreamID {
        sequence == .max
            ? StreamID(milliseconds: milliseconds + 1, sequence: 0)
            : StreamID(milliseconds: milliseconds, sequence: sequence + 1)
    }

    var description: String { "\(milliseconds)-\(sequence)" }

    static func < (a: StreamID, b: StreamID) -> Bool {
        (a.milliseconds, a.sequence) < (b.milliseconds, b.sequence)
    }
}

extension PersistedSession {
    /// The session key's value: base64 of MessagePack `{sid, pid, rooms, data}`.
    var storedValue: [UInt8] {
        let map = MsgPackValue.map([
            MsgPackPair(.string("sid"), .string(sid)), MsgPackPair(.string("pid"), .string(pid)),
            MsgPackPair(.string("rooms"), .array(rooms.map(MsgPackValue.string))),
            MsgPackPair(.string("data"), MsgPackValue(json: data)),
        ])
        return Array(Base64.encode(MsgPackEncoder.encode(map)).utf8)
    }

    init?(storedValue: [UInt8], decoder: MsgPackDecoder) {
        guard let bytes = Base64.decode(String(decoding: storedValue, as: UTF8.self)),
            let json = (try? decoder.decode(bytes))?.json,
            let sid = json["sid"]?.stringValue, let pid = json["pid"]?.stringValue
        else { return nil }
        self.init(
            sid: sid, pid: pid, rooms: json["rooms"]?.arrayValue?.compactMap(\.stringValue) ?? [],
            data: json["data"] ?? .null)
    }
}

extension JSONValue {
    /// Whether a Buffer would be in it (the reference's `hasBinary`).
    var containsBinary: Bool {
        switch self {
        case .binary: true
        case .array(let a): a.contains { $0.containsBinary }
        case .object(let o): o.contains { $0.value.containsBinary }
        default: false
        }
    }
}
