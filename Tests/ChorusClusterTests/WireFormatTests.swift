import ChorusJSON
import ChorusMsgPack
import ChorusSocketIO
import Testing

@testable import ChorusCluster

func hex(_ s: String) -> [UInt8] {
    var out: [UInt8] = []
    var it = s.utf8.makeIterator()
    func nibble(_ c: UInt8) -> UInt8 { c <= 57 ? c - 48 : (c | 0x20) - 87 }
    while let hi = it.next(), let lo = it.next() { out.append(nibble(hi) << 4 | nibble(lo)) }
    return out
}

/// Both directions against a fixture: our encoding is the reference's bytes, and the reference's
/// bytes decode to our value.
func expectBroadcast(
    _ value: ClusterBroadcast, _ fixture: String, emitterOrder: Bool = false,
    sourceLocation: SourceLocation = #_sourceLocation
) throws {
    #expect(value.encode(emitterOrder: emitterOrder) == hex(fixture), sourceLocation: sourceLocation)
    #expect(try ClusterBroadcast.decode(hex(fixture)) == value, sourceLocation: sourceLocation)
}

func expectRequest(_ value: ClusterRequest, _ fixture: String, sourceLocation: SourceLocation = #_sourceLocation) throws
{
    #expect(value.encode() == hex(fixture), sourceLocation: sourceLocation)
    #expect(try ClusterRequest.decode(hex(fixture)) == value, sourceLocation: sourceLocation)
}

func expectResponse(
    _ value: ClusterResponse, _ fixture: String, kind: ClusterRequestType,
    sourceLocation: SourceLocation = #_sourceLocation
) throws {
    #expect(value.encode() == hex(fixture), sourceLocation: sourceLocation)
    #expect(try ClusterResponse.decode(hex(fixture), kindOf: { _ in kind }) == value, sourceLocation: sourceLocation)
}

@Suite("Redis adapter wire format (byte for byte against Python-made fixtures)")
struct WireFormatTests {
    let uid = "abc123"

    @Test func channelsAreTheAdapters() {
        let c = ClusterChannels(key: "socket.io", namespace: "/chat")
        #expect(c.broadcast == "socket.io#/chat#")
        #expect(c.broadcastPattern == "socket.io#/chat#*")
        #expect(c.broadcast(room: "r1") == "socket.io#/chat#r1#")
        #expect(c.request == "socket.io-request#/chat#")
        #expect(c.response == "socket.io-response#/chat#")
        #expect(c.response(uid: "abc123") == "socket.io-response#/chat#abc123#")
        #expect(c.broadcastChannel(rooms: ["only"]) == "socket.io#/chat#only#")
        #expect(c.broadcastChannel(rooms: ["a", "b"]) == "socket.io#/chat#")
        #expect(c.broadcastChannel(rooms: []) == "socket.io#/chat#")
    }

    @Test func roomOfABroadcastChannel() {
        let c = ClusterChannels(key: "socket.io", namespace: "/")
        #expect(c.room(ofBroadcastChannel: Array("socket.io#/#".utf8)) == "")
        #expect(c.room(ofBroadcastChannel: Array("socket.io#/#room#1#".utf8)) == "room#1")
        #expect(c.room(ofBroadcastChannel: Array("socket.io#/chat#".utf8)) == nil)
        #expect(c.room(ofBroadcastChannel: Array("other#/#".utf8)) == nil)
        #expect(c.room(ofBroadcastChannel: Array("socket.io#/#x".utf8)) == nil)
    }

    // MARK: Broadcasts

    @Test func broadcastToOneRoom() throws {
        try expectBroadcast(
            ClusterBroadcast(
                uid: uid, packet: ClusterPacket(data: ["chat", ["text": "hi"]], namespace: "/"),
                selector: ClusterSelector(rooms: ["room1"])), WireFixtures.broadcastOneRoom)
    }

    @Test func broadcastToRoomsExcept() throws {
        try expectBroadcast(
            ClusterBroadcast(
                uid: uid, packet: ClusterPacket(data: ["update", 1, 2.5, nil, true, -7], namespace: "/projects"),
                selector: ClusterSelector(rooms: ["a", "b"], except: ["c"])), WireFixtures.broadcastRoomsExcept)
    }

    @Test func broadcastToTheNamespace() throws {
        try expectBroadcast(
            ClusterBroadcast(
                uid: uid, packet: ClusterPacket(data: ["ping"], namespace: "/"), selector: ClusterSelector()),
            WireFixtures.broadcastAll)
    }

    @Test func broadcastWithBinaryArguments() throws {
        try expectBroadcast(
            ClusterBroadcast(
                uid: uid,
                packet: ClusterPacket(
                    data: ["file", .binary([0, 1, 2, 255]), ["name": "x", "blob": .binary([0x61, 0x62])]],
                    namespace: "/"),
                selector: ClusterSelector()), WireFixtures.broadcastBinary)
    }

    @Test func emitterBroadcast() throws {
        try expectBroadcast(
            ClusterBroadcast(
                uid: "emitter", packet: ClusterPacket(data: ["news", "hello"], namespace: "/"),
                selector: ClusterSelector(rooms: ["r"])),
            WireFixtures.emitterBroadcast, emitterOrder: true)
    }

    @Test func emitterBroadcastWithFlags() throws {
        let flags = ClusterFlags(.object(["volatile": true, "compress": false]))
        let value = ClusterBroadcast(
            uid: "emitter", packet: ClusterPacket(data: ["news"], namespace: "/"),
            selector: ClusterSelector(except: ["x"]), flags: flags)
        try expectBroadcast(value, WireFixtures.emitterBroadcastFlags, emitterOrder: true)
        #expect(value.flags.isVolatile && !value.flags.isLocal)
    }

    @Test func integralNumbersAreIntegersAsInNotepack() {
        // JavaScript has one number type: 3.0 is 3, and -0 is written as 0.
        #expect(MsgPackValue(json: .double(3)) == .uint(3))
        #expect(MsgPackEncoder.encode(MsgPackValue(json: .double(-0.0))) == [0x00])
        #expect(MsgPackEncoder.encode(MsgPackValue(json: .double(-2))) == [0xfe])
        #expect(MsgPackEncoder.encode(MsgPackValue(json: .double(0.5)))[0] == 0xcb)
    }

    @Test func undefinedIsDroppedFromObjectsAndNullInArrays() {
        let value = MsgPackValue.array([.undefined, .object(["a": .undefined, "b": 1])])
        #expect(value.json == [nil, ["b": 1]])
    }

    @Test func numericRoomsAndMapKeysBecomeText() throws {
        // [uid, {type: 2, data: ["e"], nsp: "/"}, {rooms: [42], except: [], flags: {}}]
        let bytes = MsgPackEncoder.encode([
            .string("n1"), .object(["type": 2, "data": ["e"], "nsp": "/"]),
            .object(["rooms": [42], "except": [], "flags": .map([])]),
        ])
        #expect(try ClusterBroadcast.decode(bytes).selector.rooms == ["42"])
        #expect(MsgPackValue.map([MsgPackPair(7, "seven")]).json == ["7": "seven"])
    }

    @Test func packetWithoutNamespaceIsTheMainOne() throws {
        let bytes = MsgPackEncoder.encode([.string("n1"), .object(["type": 2, "data": ["e"]]), .object(["rooms": []])])
        let decoded = try ClusterBroadcast.decode(bytes)
        #expect(decoded.packet.namespace == "/")
        #expect(decoded.selector == ClusterSelector())
    }

    // MARK: Requests

    @Test func requestSockets() throws {
        try expectRequest(.sockets(uid: uid, requestId: "req001", rooms: ["r1"]), WireFixtures.requestSockets)
    }

    @Test func requestAllRooms() throws {
        try expectRequest(.allRooms(uid: uid, requestId: "req002"), WireFixtures.requestAllRooms)
    }

    @Test func requestJoinAndLeave() throws {
        try expectRequest(
            .remoteJoin(
                uid: uid, requestId: nil, .selector(ClusterSelector(rooms: ["a"], except: ["b"]), rooms: ["c", "d"])),
            WireFixtures.requestJoinSelector)
        try expectRequest(
            .remoteJoin(uid: nil, requestId: nil, .selector(ClusterSelector(), rooms: ["c"])),
            WireFixtures.requestJoinEmitter)
        try expectRequest(
            .remoteJoin(uid: uid, requestId: "req003", .socket(id: "SOCKETID", room: "r")),
            WireFixtures.requestJoinSocket)
        try expectRequest(
            .remoteLeave(uid: uid, requestId: nil, .selector(ClusterSelector(rooms: ["a"]), rooms: ["c"])),
            WireFixtures.requestLeaveSelector)
        try expectRequest(
            .remoteLeave(
                uid: nil, requestId: nil, .selector(ClusterSelector(rooms: ["a"], except: ["b"]), rooms: ["c"])),
            WireFixtures.requestLeaveEmitter)
    }

    @Test func requestDisconnect() throws {
        try expectRequest(
            .remoteDisconnect(
                uid: uid, requestId: nil, .selector(ClusterSelector(rooms: ["a"], except: ["b"]), close: true)),
            WireFixtures.requestDisconnectSelector)
        try expectRequest(
            .remoteDisconnect(uid: nil, requestId: nil, .selector(ClusterSelector(), close: false)),
            WireFixtures.requestDisconnectEmitter)
        try expectRequest(
            .remoteDisconnect(uid: uid, requestId: "req004", .socket(id: "SOCKETID", close: false)),
            WireFixtures.requestDisconnectSocket)
    }

    @Test func requestFetch() throws {
        try expectRequest(
            .remoteFetch(uid: uid, requestId: "req005", ClusterSelector(rooms: ["r"])), WireFixtures.requestFetch)
    }

    @Test func requestServerSideEmit() throws {
        try expectRequest(
            .serverSideEmit(uid: uid, requestId: nil, data: ["hello", 1, ["a": true]]),
            WireFixtures.requestServerSideEmit)
        try expectRequest(
            .serverSideEmit(uid: uid, requestId: "req006", data: ["hello"]), WireFixtures.requestServerSideEmitAck)
        try expectRequest(
            .serverSideEmit(uid: "emitter", requestId: nil, data: ["from-emitter"]),
            WireFixtures.requestServerSideEmitEmitter)
    }

    @Test func requestBroadcastWithAckIsMessagePack() throws {
        try expectRequest(
            .broadcast(
                uid: uid, requestId: "req007", packet: ClusterPacket(data: ["question", 1], namespace: "/"),
                selector: ClusterSelector(rooms: ["r"]), flags: ClusterFlags(.object(["timeout": 5000]))),
            WireFixtures.requestBroadcastAck)
        #expect(hex(WireFixtures.requestBroadcastAck)[0] != UInt8(ascii: "{"))
    }

    // MARK: Responses

    @Test func responses() throws {
        try expectResponse(
            .sockets(requestId: "req001", socketIds: ["s1", "s2"]), WireFixtures.responseSockets, kind: .sockets)
        try expectResponse(
            .allRooms(requestId: "req002", rooms: ["r1", "SOCKETID"]), WireFixtures.responseAllRooms, kind: .allRooms)
        try expectResponse(.done(requestId: "req003"), WireFixtures.responseDone, kind: .remoteJoin)
        try expectResponse(
            .serverSideEmit(requestId: "req006", data: "pong"), WireFixtures.responseServerSideEmit,
            kind: .serverSideEmit)
        try expectResponse(
            .broadcastClientCount(requestId: "req007", clientCount: 3), WireFixtures.responseClientCount,
            kind: .broadcast)
        try expectResponse(
            .broadcastAck(requestId: "req007", packet: "yes"), WireFixtures.responseBroadcastAck, kind: .broadcast)
    }

    @Test func fetchResponseCarriesHandshakeRoomsAndData() throws {
        let handshake: JSONValue = [
            "headers": ["host": "127.0.0.1:3000"],
            "time": "Thu Dec 03 2026 09:00:00 GMT+0000 (Coordinated Universal Time)",
            "address": "127.0.0.1", "xdomain": false, "secure": false, "issued": 1_764_752_400_000,
            "url": "/socket.io/?EIO=4&transport=websocket", "query": ["EIO": "4", "transport": "websocket"],
            "auth": ["token": "t"],
        ]
        try expectResponse(
            .fetch(
                requestId: "req005",
                sockets: [
                    ClusterRemoteSocket(
                        id: "SOCKETID", handshake: handshake, rooms: ["SOCKETID", "r"], data: ["user": "u1"])
                ]), WireFixtures.responseFetch, kind: .remoteFetch)
    }

    @Test func ackWithoutArgumentsIsNull() throws {
        #expect(
            try ClusterResponse.decode(hex(WireFixtures.responseBroadcastAckUndefined), kindOf: { _ in .broadcast })
                == .broadcastAck(requestId: "req007", packet: nil))
    }

    @Test func responseForAnotherNodeIsIgnored() throws {
        #expect(try ClusterResponse.decode(hex(WireFixtures.responseSockets), kindOf: { _ in nil }) == nil)
    }

    // MARK: Malformed input: an error value, never a crash

    @Test func malformedMessagesAreErrors() {
        #expect(throws: ClusterWireError.shape(field: "message")) {
            try ClusterBroadcast.decode(MsgPackEncoder.encode(["only-uid"]))
        }
        #expect(throws: ClusterWireError.msgpack(.truncated(offset: 0))) { try ClusterBroadcast.decode([]) }
        #expect(throws: ClusterWireError.shape(field: "packet.data")) {
            try ClusterBroadcast.decode(MsgPackEncoder.encode(["u", .object(["type": 2, "data": []]), .map([])]))
        }
        #expect(throws: ClusterWireError.shape(field: "packet.type")) {
            try ClusterBroadcast.decode(MsgPackEncoder.encode(["u", .object(["type": 0, "data": ["e"]]), .map([])]))
        }
        #expect(throws: ClusterWireError.shape(field: "opts.rooms")) {
            try ClusterBroadcast.decode(
                MsgPackEncoder.encode(["u", .object(["type": 2, "data": ["e"]]), .object(["rooms": [true]])]))
        }
        #expect(throws: ClusterWireError.unknownRequestType(42)) {
            try ClusterRequest.decode(Array(#"{"type":42}"#.utf8))
        }
        #expect(throws: ClusterWireError.shape(field: "requestId")) {
            try ClusterRequest.decode(Array(#"{"uid":"u","type":1}"#.utf8))
        }
        #expect(throws: ClusterWireError.shape(field: "data")) {
            try ClusterRequest.decode(Array(#"{"uid":"u","type":6}"#.utf8))
        }
        do {
            _ = try ClusterRequest.decode(Array(#"{"type":1"#.utf8))
            Issue.record("truncated JSON decoded")
        } catch {
            guard case .json = error else { Issue.record("\(error)"); return }
        }
    }

    @Test func randomBytesNeverCrashTheDecoders() {
        var state: UInt64 = 7
        for length in 0..<2000 {
            var bytes: [UInt8] = []
            for _ in 0..<(length % 64) {
                state = state &* 6364136223846793005 &+ 1442695040888963407
                bytes.append(UInt8(truncatingIfNeeded: state >> 33))
            }
            if length % 3 == 0 { bytes.insert(0x93, at: 0) }
            if length % 5 == 0 { bytes.insert(UInt8(ascii: "{"), at: 0) }
            _ = try? ClusterBroadcast.decode(bytes)
            _ = try? ClusterRequest.decode(bytes)
            _ = try? ClusterResponse.decode(bytes, kindOf: { _ in .remoteFetch })
        }
    }
}
