import ChorusJSON
import ChorusMsgPack
import ChorusSocketIO
import Testing

@testable import ChorusCluster

/// The Redis Streams adapter's wire forms (socket.io-redis-streams-adapter 0.3.x) and the restore's
/// choice of what to replay, without Redis. The end-to-end tests check the same forms against a
/// Python stand-in for a Node.js node (StreamsRecoveryE2ETests).
@Suite("Redis Streams adapter wire")
struct StreamsWireTests {
    let decoder = MsgPackDecoder()

    static func fields(_ pairs: [[UInt8]]) -> [String: [UInt8]] {
        var out: [String: [UInt8]] = [:]
        for i in stride(from: 0, to: pairs.count - 1, by: 2) {
            out[String(decoding: pairs[i], as: UTF8.self)] = pairs[i + 1]
        }
        return out
    }

    @Test("a broadcast entry is the reference's: uid, nsp, type \"3\", data as JSON.stringify writes it")
    func broadcastEntry() throws {
        let b = StreamBroadcast(
            event: "project:update", args: [["n": 1]], options: StreamOptions(rooms: ["project:1"], except: ["u1"]))
        let message = StreamMessage(uid: "0123456789abcdef", nsp: "/", type: .broadcast, data: b.json)
        let f = Self.fields(message.streamFields)
        #expect(
            f["uid"] == Array("0123456789abcdef".utf8) && f["nsp"] == Array("/".utf8) && f["type"] == Array("3".utf8))
        #expect(
            String(decoding: f["data"]!, as: UTF8.self)
                == #"{"packet":{"type":2,"data":["project:update",{"n":1}]},"opts":{"rooms":["project:1"],"except":["u1"],"flags":{}}}"#
        )
        let back = try #require(StreamMessage(streamFields: f, decoder: decoder))
        #expect(back == message && StreamBroadcast(json: back.data) == b && b.isReplayable)
    }

    @Test("binary data goes as base64 MessagePack and comes back as binary")
    func binaryEntry() throws {
        let b = StreamBroadcast(
            event: "blob", args: [.binary([0, 1, 255])], options: StreamOptions(rooms: [], except: []))
        let f = Self.fields(StreamMessage(uid: "u", nsp: "/", type: .broadcast, data: b.json).streamFields)
        #expect(f["data"]?.first != UInt8(ascii: "{"))
        let back = try #require(StreamMessage(streamFields: f, decoder: decoder))
        #expect(StreamBroadcast(json: back.data)?.args == [.binary([0, 1, 255])])
    }

    @Test(
        "entries that are not messages or do not decode are refused, not guessed",
        arguments: [
            ["uid": "u", "type": "3"],  // no nsp: the reference skips it too
            ["uid": "u", "nsp": "/", "type": "three"],
            ["uid": "u", "nsp": "/", "type": "3", "data": "{not json"],
            ["uid": "u", "nsp": "/", "type": "3", "data": "%%%"],
        ])
    func malformedEntries(_ raw: [String: String]) {
        #expect(StreamMessage(streamFields: raw.mapValues { Array($0.utf8) }, decoder: decoder) == nil)
    }

    @Test("acknowledged and volatile broadcasts get no offset; a non-event packet is not a broadcast")
    func replayable() {
        let opts = StreamOptions(rooms: [], except: [])
        #expect(!StreamBroadcast(event: "e", args: [], options: opts, requestId: "r").isReplayable)
        #expect(
            !StreamBroadcast(
                event: "e", args: [], options: StreamOptions(rooms: [], except: [], flags: ["volatile": true])
            ).isReplayable)
        #expect(StreamBroadcast(json: ["packet": ["type": 3, "data": ["e"]], "opts": opts.json]) == nil)
        #expect(StreamBroadcast(json: ["packet": ["type": 2, "data": [1]], "opts": opts.json]) == nil)
    }

    @Test("which sessions a broadcast reaches, as the reference's shouldIncludePacket")
    func reaches() {
        let session = ["sid1", "project:1"]
        #expect(StreamOptions(rooms: [], except: []).reaches(session))
        #expect(StreamOptions(rooms: ["project:1"], except: []).reaches(session))
        #expect(StreamOptions(rooms: ["sid1"], except: []).reaches(session))
        #expect(!StreamOptions(rooms: ["project:2"], except: []).reaches(session))
        #expect(!StreamOptions(rooms: [], except: ["sid1"]).reaches(session))
        #expect(!StreamOptions(rooms: ["project:1"], except: ["project:1"]).reaches(session))
    }

    @Test("stream ids: exactly digits-digits, ordered as Redis orders them, next is the smallest after")
    func streamIDs() {
        #expect(StreamID("1733-0") == StreamID(milliseconds: 1733, sequence: 0))
        for bad in ["", "17", "1-", "-1", "1-2-3", "a-1", "1-+2", " 1-2", "18446744073709551616-0"] {
            #expect(StreamID(bad) == nil)
        }
        #expect(StreamID("9-5")! < StreamID("10-0")! && StreamID("10-0")! < StreamID("10-1")!)
        #expect(StreamID("10-1")!.next == StreamID("10-2")!)
        #expect(StreamID("10-18446744073709551615")!.next == StreamID("11-0")!)
    }

    @Test("a session is base64 MessagePack {sid, pid, rooms, data}, both ways; garbage is no session")
    func sessions() throws {
        let s = PersistedSession(
            sid: "sid1", pid: "pid1", rooms: ["sid1", "project:1"], data: ["userId": "alice", "projects": "*"])
        let back = try #require(PersistedSession(storedValue: s.storedValue, decoder: decoder))
        #expect(back == s)
        #expect(PersistedSession(storedValue: Array("not base64!".utf8), decoder: decoder) == nil)
        // {sid: "sid"}, no pid.
        #expect(PersistedSession(storedValue: Array("gaNzaWSjc2lk".utf8), decoder: decoder) == nil)
    }

    @Test("pub/sub messages are MessagePack {uid, nsp, type, data}")
    func pubSub() throws {
        let m = StreamMessage(
            uid: "u", nsp: "/chat", type: .fetchSockets,
            data: ["requestId": "r", "opts": StreamOptions(rooms: ["a"], except: []).json])
        let payload = m.pubSubPayload
        let back = try #require(payload.withUnsafeBytes { StreamMessage(pubSubPayload: $0, decoder: decoder) })
        #expect(back == m && back.kind == .fetchSockets)
    }

    @Test("a restore replays what this node dispatched (read, or its own answered) and leaves the rest to arrive live")
    func replaySelection() {
        let ids = (1...6).map { StreamID(milliseconds: 100, sequence: UInt64($0)) }
        let candidates = ids.map { (id: $0, data: [JSONValue.string($0.description)]) }
        // Read up to 100-3; its own 100-5 answered but not read back yet; 100-4 and 100-6 not dispatched.
        let missed = RedisStreamsAdapter.replayed(candidates, lastRead: ids[2], ownAhead: [ids[4]])
        #expect(missed == [["100-1"], ["100-2"], ["100-3"], ["100-5"]])
        #expect(RedisStreamsAdapter.replayed(candidates, lastRead: .zero, ownAhead: []).isEmpty)
    }
}
