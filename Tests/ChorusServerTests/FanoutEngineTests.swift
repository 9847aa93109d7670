import ChorusLoop
import ChorusServer
import ChorusTestSupport
import ChorusWebSocket
import Glibc
import Synchronization
import Testing

/// A test application driven by text commands, so tests can steer rooms and emits from clients:
/// `join R`, `leave R`, `id` (answers the connection id), and
/// `emit <rooms|*> <exceptRooms|-> <self|all> <message>`.
final class RoomCommandApp: ServerApplication {
    let ids = Mutex<[String: ConnectionID]>([:])
    /// The server-side close code of every closed connection (nil: the peer closed first).
    let serverCloseCodes = Mutex<[UInt16?]>([])

    func connectionClosed(_ connection: Connection, code: WebSocketCloseCode?) {
        serverCloseCodes.withLock { $0.append(connection.serverCloseCode?.rawValue) }
    }

    func connection(_ connection: Connection, received message: WebSocketMessage) {
        guard case .text(let bytes) = message else { return }
        let words = String(decoding: bytes, as: UTF8.self).split(separator: " ").map(String.init)
        switch words.first {
        case "join":
            for room in words.dropFirst() { connection.join(room) }
            connection.send(text: "ok")
        case "leave":
            for room in words.dropFirst() { connection.leave(room) }
            connection.send(text: "ok")
        case "id":
            ids.withLock { $0[connection.id.description] = connection.id }
            connection.send(text: connection.id.description)
        case "emit" where words.count == 5:
            var target = BroadcastTarget(rooms: words[1] == "*" ? [] : words[1].split(separator: ",").map(String.init))
            if words[2] != "-" { target = target.except(words[2].split(separator: ",").map(String.init)) }
            if words[3] == "self" { target = target.except(connection.id) }
            connection.server.emit(text: words[4], to: target)
        default:
            connection.send(text: "unknown")
        }
    }
}

/// Starts an in-process server on an ephemeral loopback port; shut down on `stop()`.
func startServer(
    _ app: any ServerApplication = RoomCommandApp(), threads: Int = 2,
    configure: (inout ServerConfiguration) -> Void = { _ in }
) throws -> WebSocketServer {
    var config = ServerConfiguration()
    config.host = "127.0.0.1"
    config.port = 0
    config.threads = threads
    config.shutdownDrain = 1
    configure(&config)
    let server = WebSocketServer(configuration: config, application: app)
    try server.start()
    return server
}

/// Polls `condition` until it holds or `seconds` pass.
func eventually(_ seconds: Double = 5, _ condition: () -> Bool) -> Bool {
    let deadline = monotonicNanoseconds() + UInt64(seconds * 1e9)
    while monotonicNanoseconds() < deadline {
        if condition() { return true }
        usleep(5_000)
    }
    return condition()
}

@Suite("Rooms and emits", .serialized, .timeLimit(.minutes(1)))
struct RoomTests {
    @Test func anEmitToSeveralRoomsReachesEachMemberOnce() throws {
        let server = try startServer()
        defer { server.shutdown() }
        let a = try BlockingWebSocketClient(port: server.port)
        let b = try BlockingWebSocketClient(port: server.port)
        let c = try BlockingWebSocketClient(port: server.port)
        let sender = try BlockingWebSocketClient(port: server.port)
        try a.send(text: "join r1 r2"); #expect(try a.receiveText() == "ok")
        try b.send(text: "join r2"); #expect(try b.receiveText() == "ok")
        try c.send(text: "join other"); #expect(try c.receiveText() == "ok")
        try sender.send(text: "emit r1,r2 - all hello")
        #expect(try a.receiveText() == "hello")
        #expect(try b.receiveText() == "hello")
        #expect(a.isQuiet(milliseconds: 200), "a member of both rooms must get the message once")
        #expect(c.isQuiet(milliseconds: 50))
        #expect(sender.isQuiet(milliseconds: 50), "the sender is in neither room")
    }

    @Test func exceptRoomsAndTheSenderAreSkipped() throws {
        let server = try startServer()
        defer { server.shutdown() }
        let muted = try BlockingWebSocketClient(port: server.port)
        let listener = try BlockingWebSocketClient(port: server.port)
        let sender = try BlockingWebSocketClient(port: server.port)
        try muted.send(text: "join room muted"); #expect(try muted.receiveText() == "ok")
        try listener.send(text: "join room"); #expect(try listener.receiveText() == "ok")
        try sender.send(text: "join room"); #expect(try sender.receiveText() == "ok")
        try sender.send(text: "emit room muted self news")
        #expect(try listener.receiveText() == "news")
        #expect(muted.isQuiet(milliseconds: 200))
        #expect(sender.isQuiet(milliseconds: 50))
        // Without exceptions everyone in the room hears it, the sender included.
        try sender.send(text: "emit room - all again")
        #expect(try muted.receiveText() == "again")
        #expect(try listener.receiveText() == "again")
        #expect(try sender.receiveText() == "again")
    }

    @Test func anEmitToEveryoneReachesConnectionsInNoRoom() throws {
        let server = try startServer()
        defer { server.shutdown() }
        let clients = try (0..<6).map { _ in try BlockingWebSocketClient(port: server.port) }
        try clients[0].send(text: "emit * - all hi")
        for client in clients { #expect(try client.receiveText() == "hi") }
    }

    @Test func leavingAndDisconnectingFreeTheRooms() throws {
        let server = try startServer()
        defer { server.shutdown() }
        var clients = try (0..<8).map { _ in try BlockingWebSocketClient(port: server.port) }
        for (i, client) in clients.enumerated() {
            try client.send(text: "join shared own\(i)")
            #expect(try client.receiveText() == "ok")
        }
        #expect(eventually { server.stats.rooms >= 9 })
        try clients[0].send(text: "leave own0")
        #expect(try clients[0].receiveText() == "ok")
        #expect(eventually { server.stats.rooms == server.stats.rooms })  // settle one iteration
        clients.removeAll()  // closes every socket abruptly
        #expect(eventually { server.stats.rooms == 0 && server.stats.connections == 0 })
    }
}

@Suite("Every core", .serialized, .timeLimit(.minutes(2)))
struct CrossThreadTests {
    /// Stable members must get every emit exactly once and in order while others join, leave and
    /// disconnect on both loops, and emits come from a thread that is not a loop.
    @Test func broadcastsStayExactUnderChurn() throws {
        let server = try startServer(threads: 2)
        defer { server.shutdown() }
        let stable = try (0..<16).map { _ in try BlockingWebSocketClient(port: server.port) }
        for client in stable {
            try client.send(text: "join room")
            #expect(try client.receiveText() == "ok")
        }
        let port = server.port
        let churnDone = Atomic<Bool>(false)
        let churnRounds = Atomic<Int>(0)
        let churn = LoopThread(name: "churn") {
            while !churnDone.load(ordering: .relaxed) {
                guard let c = try? BlockingWebSocketClient(port: port) else { continue }
                try? c.send(text: "join room side")
                if Bool.random() { try? c.send(text: "leave room") }
                churnRounds.add(1, ordering: .relaxed)
            }
        }
        // The churn is under way before the first emit (a loaded machine may start the thread late).
        #expect(eventually { churnRounds.load(ordering: .relaxed) >= 3 })
        let messages = 400
        for i in 0..<messages {
            server.emit(text: "m\(i)", to: .rooms(["room"]))
            if i % 50 == 0 { usleep(2_000) }
        }
        for client in stable {
            for i in 0..<messages {
                var text = try client.receiveText()
                while text == "ok" { text = try client.receiveText() }
                #expect(text == "m\(i)")
                if text != "m\(i)" { break }
            }
            #expect(client.isQuiet(milliseconds: 10))
        }
        #expect(eventually { churnRounds.load(ordering: .relaxed) > 10 })
        churnDone.store(true, ordering: .relaxed)
        churn.join()
        // Churned connections are gone; only the stable ones hold the room (one entry per loop).
        #expect(eventually { server.stats.connections == stable.count })
        #expect(eventually { server.stats.rooms <= 2 })
    }
}

@Suite("Slow consumers", .serialized, .timeLimit(.minutes(1)))
struct BackpressureTests {
    static let payload = String(repeating: "x", count: 8 * 1024)

    func slowClient(port: Int) throws -> BlockingWebSocketClient {
        let client = try BlockingWebSocketClient(port: port, receiveBuffer: 4096)
        try client.send(text: "join room")
        #expect(try client.receiveText() == "ok")
        return client  // and never reads again
    }

    @Test func dropPolicySkipsMessagesForTheSlowClientOnly() throws {
        let app = RoomCommandApp()
        let server = try startServer(app, threads: 1) {
            $0.maxBackpressure = 64 * 1024; $0.backpressurePolicy = .drop
        }
        defer { server.shutdown() }
        let slow = try slowClient(port: server.port)
        try slow.send(text: "id")
        let slowName = try slow.receiveText()
        let slowID = try #require(app.ids.withLock { $0[slowName] })
        let fast = try BlockingWebSocketClient(port: server.port)
        try fast.send(text: "join room"); #expect(try fast.receiveText() == "ok")
        // ~4.8 MiB: far more than the slow client's socket and queue can hold. The fast client
        // reads each message before the next emit, so it never reaches the limit itself.
        for i in 0..<600 {
            server.emit(text: "\(i) " + Self.payload, to: .rooms(["room"]))
            #expect(try fast.receiveText().hasPrefix("\(i) "))
        }
        #expect(eventually { server.stats.dropped > 0 })
        // The slow client is still connected; its queue is bounded by the limit plus one message.
        #expect(server.stats.connections == 2)
        #expect(server.stats.backpressureClosed == 0)
        let buffered = Atomic<Int>(-1)
        server.withConnection(slowID) { buffered.store($0.bufferedAmount, ordering: .relaxed) }
        #expect(eventually { buffered.load(ordering: .relaxed) >= 0 })
        #expect(buffered.load(ordering: .relaxed) <= 64 * 1024 + 8 * 1024 + 16, "memory per slow client is bounded")
    }

    @Test func closePolicyClosesTheSlowClientAndNobodyElse() throws {
        let server = try startServer(threads: 1) {
            $0.maxBackpressure = 64 * 1024; $0.backpressurePolicy = .close; $0.closeTimeout = 0.3
        }
        defer { server.shutdown() }
        let slow = try slowClient(port: server.port)
        let fast = try BlockingWebSocketClient(port: server.port)
        try fast.send(text: "join room"); #expect(try fast.receiveText() == "ok")
        for i in 0..<600 {
            server.emit(text: "\(i) " + Self.payload, to: .rooms(["room"]))
            #expect(try fast.receiveText().hasPrefix("\(i) "))
        }
        #expect(eventually { server.stats.backpressureClosed == 1 })
        #expect(eventually { server.stats.connections == 1 })
        _ = slow
    }
}

@Suite("Vanished peers", .serialized, .timeLimit(.minutes(1)))
struct VanishedPeerTests {
    /// Writes to a peer that vanished fail that connection alone (the EPIPE/SIGPIPE rule itself is
    /// pinned in ChorusLoopTests); the room's other members keep receiving every message.
    @Test func aVanishedPeerIsDroppedAndTheOthersKeepReceiving() throws {
        let server = try startServer(threads: 1)
        defer { server.shutdown() }
        let listener = try BlockingWebSocketClient(port: server.port)
        try listener.send(text: "join room"); #expect(try listener.receiveText() == "ok")
        for _ in 0..<5 {
            var gone: BlockingWebSocketClient? = try BlockingWebSocketClient(port: server.port)
            try gone!.send(text: "join room"); #expect(try gone!.receiveText() == "ok")
            gone = nil  // closed with unread data pending: the kernel answers our writes with RST
            for i in 0..<50 {
                server.emit(text: "after \(i) " + String(repeating: "z", count: 2048), to: .rooms(["room"]))
            }
            for i in 0..<50 { #expect(try listener.receiveText().hasPrefix("after \(i) ")) }
        }
        #expect(eventually { server.stats.connections == 1 })
    }
}

@Suite("Hostile peers", .serialized, .timeLimit(.minutes(1)))
struct HostilePeerTests {
    /// A client that floods pings and never reads gets no more pongs once over its limit: the
    /// server's memory for it stays bounded.
    @Test func aPingFloodCannotGrowTheQueuePastTheLimit() throws {
        let app = RoomCommandApp()
        let server = try startServer(app, threads: 1) { $0.maxBackpressure = 64 * 1024 }
        defer { server.shutdown() }
        let flooder = try BlockingWebSocketClient(port: server.port, receiveBuffer: 4096)
        try flooder.send(text: "id")
        let name = try flooder.receiveText()
        let id = try #require(app.ids.withLock { $0[name] })
        let ping = WebSocketFrameEncoder.maskedFrame(
            opcode: .ping, payload: UnsafeRawBufferPointer(start: nil, count: 0), maskKey: 7)
        var burst: [UInt8] = []
        for _ in 0..<10_000 { burst += ping }
        for _ in 0..<20 { try flooder.sendRaw(burst) }  // 200,000 pings
        let buffered = Atomic<Int>(-1)
        #expect(
            eventually {
                server.withConnection(id) { buffered.store($0.bufferedAmount, ordering: .relaxed) }
                usleep(20_000)
                return buffered.load(ordering: .relaxed) >= 0
            })
        // 64 KiB of cost is at most ~1,000 two-byte pongs: far below 200,000.
        #expect(buffered.load(ordering: .relaxed) <= 64 * 1024)
        let other = try BlockingWebSocketClient(port: server.port)
        try other.send(text: "join x")
        #expect(try other.receiveText() == "ok", "the loop still serves others")
    }

    /// A join from the application's close callback must not leave a dead member in a room.
    @Test func joiningFromTheCloseCallbackLeavesNoDeadMember() throws {
        final class JoinOnClose: ServerApplication {
            func connectionOpened(_ connection: Connection, request: HTTPRequestHead) { connection.join("r") }
            func connection(_ connection: Connection, received message: WebSocketMessage) {}
            func connectionClosed(_ connection: Connection, code: WebSocketCloseCode?) {
                connection.join("zombie")
                connection.send(text: "too late")
            }
        }
        let server = try startServer(JoinOnClose(), threads: 1)
        defer { server.shutdown() }
        do {
            let client = try BlockingWebSocketClient(port: server.port)
            try client.sendRaw(
                WebSocketFrameEncoder.maskedFrame(
                    opcode: .close, payload: UnsafeRawBufferPointer(start: nil, count: 0), maskKey: 1))
            let frame = try client.receive()
            #expect(frame.opcode == 0x8, "nothing may follow the close handshake")
        }
        #expect(eventually { server.stats.connections == 0 && server.stats.rooms == 0 })
    }
}

@Suite("Frame groups", .serialized, .timeLimit(.minutes(1)))
struct FrameGroupTests {
    static func group(_ i: Int, _ server: WebSocketServer) -> [OutgoingFrame] {
        ["a", "b", "c"].map { part in
            let text = "\(i)-\(part) " + String(repeating: "y", count: 4096)
            return text.utf8CString.withUnsafeBytes {
                server.makeFrame(.text, UnsafeRawBufferPointer(rebasing: $0.dropLast()))
            }
        }
    }

    @Test func aGroupArrivesWholeAndInOrder() throws {
        let server = try startServer(threads: 2)
        defer { server.shutdown() }
        let clients = try (0..<4).map { _ in try BlockingWebSocketClient(port: server.port) }
        for c in clients { try c.send(text: "join g"); #expect(try c.receiveText() == "ok") }
        server.emit(frames: Self.group(7, server), to: .rooms(["g"]))
        for c in clients {
            for part in ["a", "b", "c"] { #expect(try c.receiveText().hasPrefix("7-\(part) ")) }
        }
    }

    /// Under the drop policy a slow client loses whole groups, never part of one.
    @Test func backpressureDropsWholeGroups() throws {
        let server = try startServer(threads: 1) {
            $0.maxBackpressure = 32 * 1024; $0.backpressurePolicy = .drop
        }
        defer { server.shutdown() }
        let slow = try BlockingWebSocketClient(port: server.port, receiveBuffer: 4096, timeoutSeconds: 1)
        try slow.send(text: "join g"); #expect(try slow.receiveText() == "ok")
        for i in 0..<300 { server.emit(frames: Self.group(i, server), to: .rooms(["g"])) }
        #expect(eventually { server.stats.dropped > 0 })
        var seen = 0
        var expected = "a"
        var lastGroup = -1
        while let text = try? slow.receiveText() {
            let head = text.prefix { $0 != " " }
            let parts = head.split(separator: "-")
            let group = Int(parts[0])!
            #expect(String(parts[1]) == expected, "group \(group) arrived incomplete")
            if expected == "a" { #expect(group > lastGroup); lastGroup = group }
            #expect(group == lastGroup)
            expected = expected == "a" ? "b" : expected == "b" ? "c" : "a"
            seen += 1
            if group == 299 && expected == "a" { break }
            if seen > 900 { break }
        }
        #expect(seen % 3 == 0 && seen > 0 && seen < 900)
    }
}

@Suite("Heartbeats and limits", .serialized, .timeLimit(.minutes(1)))
struct HeartbeatAndLimitTests {
    @Test func silentConnectionsArePinged() throws {
        let server = try startServer(threads: 1) {
            $0.pingInterval = 0.2; $0.idleTimeout = 0
        }
        defer { server.shutdown() }
        let client = try BlockingWebSocketClient(port: server.port)
        let frame = try client.receive()
        #expect(frame.opcode == 0x9)
    }

    @Test func idleConnectionsAreClosedWith1001() throws {
        let app = RoomCommandApp()
        let server = try startServer(app, threads: 1) {
            $0.pingInterval = 0; $0.idleTimeout = 0.4
        }
        defer { server.shutdown() }
        let silent = try BlockingWebSocketClient(port: server.port)
        let chatty = try BlockingWebSocketClient(port: server.port)
        let start = monotonicNanoseconds()
        for _ in 0..<8 {
            try chatty.send(text: "join x")
            #expect(try chatty.receiveText() == "ok")
            usleep(100_000)
        }
        #expect(try silent.receiveClose() == 1001)
        #expect(monotonicNanoseconds() - start < 3_000_000_000)
        try chatty.send(text: "join y")
        #expect(try chatty.receiveText() == "ok", "a connection with traffic stays open")
        #expect(
            eventually { app.serverCloseCodes.withLock { $0 } == [1001] },
            "the application learns the server closed it, and why")
    }

    @Test func pongsKeepAConnectionAlive() throws {
        let server = try startServer(threads: 1) {
            $0.pingInterval = 0.1; $0.idleTimeout = 0.5
        }
        defer { server.shutdown() }
        let client = try BlockingWebSocketClient(port: server.port)
        let start = monotonicNanoseconds()
        while monotonicNanoseconds() - start < 1_200_000_000 {
            let frame = try client.receive()
            #expect(frame.opcode == 0x9, "only pings expected, got \(frame.opcode)")
            try client.send(opcode: .pong, frame.payload)
        }
    }

    @Test func connectionsBeyondTheLimitGet503() throws {
        let server = try startServer(threads: 2) { $0.maxConnections = 3 }
        defer { server.shutdown() }
        var clients = try (0..<3).map { _ in try BlockingWebSocketClient(port: server.port) }
        #expect {
            _ = try BlockingWebSocketClient(port: server.port)
        } throws: { error in
            if case BlockingWebSocketClient.Failure.handshake(let head) = error {
                return head.hasPrefix("HTTP/1.1 503")
            }
            return false
        }
        #expect(eventually { server.stats.refused == 1 })
        clients.removeLast()
        #expect(eventually { server.openConnections == 2 })
        clients.append(try BlockingWebSocketClient(port: server.port))
        #expect(clients.count == 3)
    }

    @Test func connectionsBeyondThePerAddressLimitGet503() throws {
        let server = try startServer(threads: 1) { $0.maxConnectionsPerIP = 2 }
        defer { server.shutdown() }
        let first = try BlockingWebSocketClient(port: server.port)
        let second = try BlockingWebSocketClient(port: server.port)
        #expect(throws: BlockingWebSocketClient.Failure.self) { _ = try BlockingWebSocketClient(port: server.port) }
        // Another source address has its own allowance.
        let other = try BlockingWebSocketClient(port: server.port, host: "127.0.0.1", bindAddress: "127.0.0.2")
        _ = (first, second, other)
    }
}
