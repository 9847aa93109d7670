import ChorusCluster
import ChorusJSON
import ChorusRedis
import ChorusServer
import ChorusSocketIO
import ChorusTestSupport
import Foundation
import Testing

/// Two Socket.IO servers in this process, each with a `RedisAdapter`, on one real redis-server:
/// the Swift API's cluster-wide operations issued on one node and answered by the other.
struct TwoNodes {
    let redis: RedisServerProcess
    let ios: [SocketIOServer]
    let servers: [WebSocketServer]

    static func start(subscription: RedisSubscriptionMode = .pattern) async throws -> TwoNodes {
        let redis = try await RedisServerProcess.start()
        var ios: [SocketIOServer] = []
        var servers: [WebSocketServer] = []
        for name in ["a", "b"] {
            let io = SocketIOServer()
            var config = RedisAdapterConfiguration(url: try RedisURL(parsing: redis.url))
            config.requestTimeout = 3
            config.subscription = subscription
            io.adapter = RedisAdapter(configuration: config)
            io.sockets.onServerSideEmit("hello") { args, ack in ack?(["from": .string(name), "args": .array(args)]) }
            io.sockets.on("join") { socket, args, ack in
                if let room = args.first?.stringValue { socket.join(room) }
                ack?(true)
            }
            io.sockets.on("leave") { socket, args, ack in
                if let room = args.first?.stringValue { socket.leave(room) }
                ack?(true)
            }
            var sc = ServerConfiguration()
            sc.host = "127.0.0.1"
            sc.port = 0
            sc.threads = 2
            sc.applicationTimeouts = io.configuration.timeouts
            let server = WebSocketServer(configuration: sc, application: io)
            try server.start()
            ios.append(io)
            servers.append(server)
        }
        let nodes = TwoNodes(redis: redis, ios: ios, servers: servers)
        // Both subscribed: each counts two servers.
        for io in ios {
            var count = 0
            for _ in 0..<100 {
                count = (try? await io.serverCount()) ?? 0
                if count == 2 { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(count == 2)
        }
        return nodes
    }

    func stop() {
        for (io, server) in zip(ios, servers) {
            server.shutdown()
            io.adapter.stop()
        }
        redis.kill()
    }

    /// Node `index`'s adapter counters.
    func counters(_ index: Int) async -> ClusterCounters {
        guard let adapter = ios[index].adapter as? RedisAdapter else { return ClusterCounters() }
        return await withCheckedContinuation { continuation in adapter.counters { continuation.resume(returning: $0) } }
    }

    /// `client` joins `room` through the nodes' "join" handler, and its ack is awaited.
    func join(_ client: BlockingWebSocketClient, _ room: String) throws {
        try client.send(text: #"420["join","\#(room)"]"#)
        #expect(try client.receive().text == "430[true]")
    }

    /// A raw Engine.IO/Socket.IO client connected to the main namespace of node `index`; returns its socket id.
    func connect(_ index: Int) throws -> (BlockingWebSocketClient, String) {
        let client = try BlockingWebSocketClient(
            port: servers[index].port, path: "/socket.io/?EIO=4&transport=websocket")
        _ = try client.receive()  // Engine.IO open
        try client.send(text: "40")
        let connected = try client.receive().text  // 40{"sid":"..."}
        guard let range = connected.range(of: #""sid":""#) else { throw HarnessError("no sid in \(connected)") }
        let sid = String(connected[range.upperBound...].prefix { $0 != "\"" })
        return (client, sid)
    }
}

@Suite("RedisAdapter: the Swift API across two nodes on a real Redis", .serialized)
struct RedisAdapterTests {
    /// An emit queued for the adapter's loop by another loop is published before one made on the
    /// adapter's loop after it: loop 1 emits "a" while loop 0 (the adapter's) is busy, then loop 0
    /// emits "b". Run inline on loop 0, "b" overtook "a" (fails with `onLoopInOrder` calling
    /// `runOrExecute`).
    @Test(.timeLimit(.minutes(1)))
    func emitsArePublishedInTheOrderTheyWereMadeAcrossLoops() async throws {
        let nodes = try await TwoNodes.start()
        defer { nodes.stop() }
        let (client, _) = try nodes.connect(1)
        defer { client.closeNow() }
        try nodes.join(client, "r")
        let io = nodes.ios[0]
        let server = nodes.servers[0]
        for round in 0..<3 {
            server.execute(onLoop: 0) {
                let queued = DispatchSemaphore(value: 0)
                server.execute(onLoop: 1) {
                    io.to("r").emit("a", .int(Int64(round)))
                    queued.signal()
                }
                queued.wait()
                io.to("r").emit("b", .int(Int64(round)))
            }
            #expect(try client.receive().text == #"42["a",\#(round)]"#)
            #expect(try client.receive().text == #"42["b",\#(round)]"#)
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func serverSideEmitWithAckCollectsTheOtherNodesAnswers() async throws {
        let nodes = try await TwoNodes.start()
        defer { nodes.stop() }
        let answers = try await nodes.ios[0].sockets.serverSideEmitWithAck("hello", [1, "x"])
        #expect(answers == [["from": "b", "args": [1, "x"]]])
        // An event nobody handles is answered null rather than left to time out.
        #expect(try await nodes.ios[1].sockets.serverSideEmitWithAck("nobody-listens") == [nil])
    }

    @Test(.timeLimit(.minutes(1)))
    func fetchSocketsAllRoomsAndJoinAcrossNodes() async throws {
        let nodes = try await TwoNodes.start()
        defer { nodes.stop() }
        let (clientB, sidB) = try nodes.connect(1)
        defer { clientB.closeNow() }
        #expect(sidB.count == EngineIOSessionID.socketIDLength)
        // All rooms, asked on A, include B's socket-id room.
        #expect(try await nodes.ios[0].sockets.allRooms().contains(sidB))
        // Fetched from A: B's socket, its rooms with its own id first.
        let fetched = try await nodes.ios[0].sockets.fetchSockets()
        #expect(fetched.map(\.id) == [sidB])
        #expect(fetched.first?.rooms == [sidB])
        // Join from A; B's socket is then in the room (seen from A again).
        nodes.ios[0].to(sidB).socketsJoin("team")
        var rooms: [String] = []
        for _ in 0..<100 {
            rooms = try await nodes.ios[0].to("team").fetchSockets().first?.rooms ?? []
            if rooms.contains("team") { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(rooms == [sidB, "team"])
        // `.local` stays on this node: A has no socket in "team".
        #expect(try await nodes.ios[0].to("team").local.fetchSockets().isEmpty)
    }

    @Test(.timeLimit(.minutes(1)))
    func emitOnOneNodeIsFramedOnceOnTheOther() async throws {
        let nodes = try await TwoNodes.start()
        defer { nodes.stop() }
        let (clientB, _) = try nodes.connect(1)
        defer { clientB.closeNow() }
        try nodes.join(clientB, "r")
        nodes.ios[0].sockets.to("r").emit("news", ["n": 1], .binary([1, 2]))
        // The binary event arrives as one text frame and its attachment, as from a local emit.
        #expect(try clientB.receive().text == #"451-["news",{"n":1},{"_placeholder":true,"num":0}]"#)
        #expect(try clientB.receive().payload == [1, 2])
    }

    /// Reads an event with an ack id (`42<id>[...]`) and answers it with `answer`. Waits without
    /// blocking a thread of the cooperative pool: the emit it answers runs in a task there, and on a
    /// 2-core machine with other suites blocking their threads it would otherwise never start.
    static func answer(_ client: BlockingWebSocketClient, _ answer: String) async throws {
        let frame = try await client.text(within: 20)
        #expect(frame.hasPrefix("42"), "\(frame)")
        let id = frame.dropFirst(2).prefix(while: \.isNumber)
        try client.send(text: "43\(id)[\(answer)]")
    }

    @Test(.timeLimit(.minutes(1)))
    func emitWithAckGathersEveryNodesAnswers() async throws {
        let nodes = try await TwoNodes.start()
        defer { nodes.stop() }
        let (clientA, _) = try nodes.connect(0)
        let (clientB, _) = try nodes.connect(1)
        defer { clientA.closeNow(); clientB.closeNow() }
        for client in [clientA, clientB] { try nodes.join(client, "r") }
        let all = Task { await nodes.ios[0].to("r").emitWithAck("q", [1], timeout: 5) }
        try await Self.answer(clientA, #""from-a""#)
        try await Self.answer(clientB, #""from-b""#)
        let result = await all.value
        #expect(!result.timedOut)
        #expect(Set(result.answers.compactMap(\.stringValue)) == ["from-a", "from-b"])
        // One recipient silent: the others' answers at the timeout, marked as timed out.
        let partial = Task { await nodes.ios[1].to("r").emitWithAck("q", [2], timeout: 1) }
        try await Self.answer(clientA, #""late-a""#)
        _ = try await clientB.text(within: 20)
        let timedOut = await partial.value
        #expect(timedOut.timedOut)
        #expect(timedOut.answers == ["late-a"])
    }
}

@Suite("RedisAdapter: --redis-subscription rooms, two nodes on a real Redis", .serialized)
struct RoomSubscriptionTests {
    /// Node B's client joins a room no socket of node A is in; B emits to it, then to the whole
    /// namespace. Redis delivers one publisher's messages in order, so once A has received the
    /// second, the first has reached A already or never will.
    @Test(.timeLimit(.minutes(1)), arguments: [RedisSubscriptionMode.pattern, .rooms])
    func aBroadcastForARoomHeldOnlyByOneNodeReachesTheOtherOnlyInPatternMode(_ mode: RedisSubscriptionMode) async throws
    {
        let nodes = try await TwoNodes.start(subscription: mode)
        defer { nodes.stop() }
        let (clientB, _) = try nodes.connect(1)
        defer { clientB.closeNow() }
        try clientB.send(text: #"420["join","only-b"]"#)
        #expect(try await clientB.text(within: 10) == "430[true]")
        let before = await nodes.counters(0)
        nodes.ios[1].to("only-b").emit("room", 1)
        nodes.ios[1].sockets.emit("all", 2)
        #expect(try await clientB.text(within: 10) == #"42["room",1]"#)
        #expect(try await clientB.text(within: 10) == #"42["all",2]"#)
        var after = before
        // The namespace-wide one is decoded and "delivered" on A (to no socket): it came last.
        _ = await eventually {
            after = await nodes.counters(0); return after.broadcastsDelivered > before.broadcastsDelivered
        }
        switch mode {
        case .pattern:
            #expect(after.broadcastsReceived - before.broadcastsReceived == 2)
            #expect(after.broadcastsNotHeld - before.broadcastsNotHeld == 1)
        case .rooms:
            #expect(after.broadcastsReceived - before.broadcastsReceived == 1)
            #expect(after.broadcastsNotHeld == before.broadcastsNotHeld)
        }
        #expect(after.broadcastsDelivered - before.broadcastsDelivered == 1)
    }

    /// Socket-id rooms are subscribed like any room: `to(socketId)` from the other node (or a Node
    /// node, or the emitter: all publish on `<key>#<nsp>#<id>#`) arrives.
    @Test(.timeLimit(.minutes(1)))
    func toSocketIdFromTheOtherNodeArrives() async throws {
        let nodes = try await TwoNodes.start(subscription: .rooms)
        defer { nodes.stop() }
        let (clientB, sidB) = try nodes.connect(1)
        defer { clientB.closeNow() }
        // The subscription follows the CONNECT by one Redis round trip: retry until it holds.
        var got: String?
        for attempt in 0..<50 where got == nil {
            nodes.ios[0].to(sidB).emit("direct", .int(Int64(attempt)))
            if !(await clientB.quiet(milliseconds: 100)) { got = try clientB.receiveText() }
        }
        #expect(got?.hasPrefix(#"42["direct","#) == true)
    }

    /// Subscribed on the first local member, unsubscribed on the last: the count of the
    /// subscriber's channels goes up by the room and the socket, and back down.
    @Test(.timeLimit(.minutes(1)))
    func roomChannelsFollowLocalMembership() async throws {
        let nodes = try await TwoNodes.start(subscription: .rooms)
        defer { nodes.stop() }
        let base = await nodes.counters(1).subscriptions
        // The namespace's broadcast channel, the request channel, the two response channels.
        #expect(base == 4)
        let (clientB, _) = try nodes.connect(1)
        let (clientB2, _) = try nodes.connect(1)
        defer { clientB2.closeNow() }
        for client in [clientB, clientB2] {
            try client.send(text: #"420["join","r"]"#)
            #expect(try await client.text(within: 10) == "430[true]")
        }
        // Two socket-id rooms and "r" once.
        #expect(await eventually { await nodes.counters(1).subscriptions == base + 3 })
        try clientB2.send(text: #"421["leave","r"]"#)
        #expect(try await clientB2.text(within: 10) == "431[true]")
        // "r" still has clientB: still subscribed.
        try await Task.sleep(for: .milliseconds(100))
        #expect(await nodes.counters(1).subscriptions == base + 3)
        clientB.closeNow()
        // clientB's id room and "r" are gone with it.
        #expect(await eventually { await nodes.counters(1).subscriptions == base + 1 })
    }
}

/// Polls `condition` until it holds or `timeout` passes; the last answer.
private func eventually(_ timeout: Duration = .seconds(10), _ condition: () async -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return await condition()
}
