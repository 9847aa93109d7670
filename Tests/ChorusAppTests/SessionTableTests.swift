import ChorusApp
import ChorusJSON
import ChorusServer
import ChorusTestSupport
import Testing

@testable import ChorusSocketIO

/// A loop's session table (an array with each session's slot) and a session's socket table (the
/// first namespace inline): sessions leaving from the middle, a namespace left on its own.
@Suite("Session tables", .serialized, .timeLimit(.minutes(1)))
struct SessionTableTests {
    /// Waits until the local sockets of `namespace` number `count`.
    static func settle(_ f: PacketStateMachineTests.Fixture, _ namespace: String, _ count: Int) async throws -> Bool {
        for _ in 0..<200 {
            if try await f.io.of(namespace).local.fetchSockets().count == count { return true }
            try await Task.sleep(for: .milliseconds(10))
        }
        return false
    }

    /// `body`'s answer, run on loop 0 (where the session tables live).
    static func onLoop0<T: Sendable>(_ f: PacketStateMachineTests.Fixture, _ body: @escaping @Sendable () -> T) async
        -> T
    {
        await withCheckedContinuation { k in f.server.execute(onLoop: 0) { k.resume(returning: body()) } }
    }

    /// Waits until the loop's session table holds `count` sessions (read on the loop's thread).
    static func settleSessions(_ f: PacketStateMachineTests.Fixture, _ count: Int) async throws -> Bool {
        let io = f.io
        for _ in 0..<200 {
            let n = await Self.onLoop0(f) { io.loopSessions[0].count }
            if n == count { return true }
            try await Task.sleep(for: .milliseconds(10))
        }
        return false
    }

    @Test func sessionsLeaveInAnyOrderAndTheOthersStayReachable() async throws {
        let f = try PacketStateMachineTests.Fixture()
        var clients: [BlockingWebSocketClient] = []
        for _ in 0..<5 { clients.append(try await f.connected(to: ["/", "/admin"])) }
        #expect(try await Self.settle(f, "/", 5))
        #expect(try await Self.settle(f, "/admin", 5))
        // Out of the middle of the table, then its end.
        clients[1].closeNow()
        clients[3].closeNow()
        #expect(try await Self.settle(f, "/", 3))
        #expect(try await Self.settle(f, "/admin", 3))
        clients[4].closeNow()
        #expect(try await Self.settle(f, "/", 2))
        #expect(try await Self.settleSessions(f, 2))
        // Every session left is still walked: an emit reaches each of them once.
        f.io.sockets.emit("hello", 1)
        for i in [0, 2] { #expect(try await clients[i].text() == #"42["hello",1]"#) }
        // Leaving the second namespace keeps the first namespace's socket, and the other way round.
        try clients[0].send(text: "41/admin,")
        try clients[2].send(text: "41")
        #expect(try await Self.settle(f, "/admin", 1))
        #expect(try await Self.settle(f, "/", 1))
        try clients[0].send(text: #"42["echo","main"]"#)
        try clients[0].send(text: #"421["echo","again"]"#)
        #expect(try await clients[0].text() == #"431["again"]"#)
        try clients[2].send(text: #"42/admin,2["echo","admin"]"#)
        #expect(try await clients[2].text() == #"43/admin,2["admin"]"#)
        for i in [0, 2] { clients[i].closeNow() }
        #expect(try await Self.settle(f, "/", 0))
        #expect(try await Self.settle(f, "/admin", 0))
        #expect(try await Self.settleSessions(f, 0))
    }

    /// A socket's rooms are read from its connection: each namespace sees its own rooms, never its
    /// own id's room; `isIn`, a leave and leaving one namespace agree with the room directory.
    @Test func aSocketsRoomsAreItsConnectionsKeysOfItsNamespace() async throws {
        let f = try PacketStateMachineTests.Fixture()
        let c = try await f.connected(to: ["/", "/admin"])
        defer { c.closeNow() }
        let io = f.io
        let seen = await Self.onLoop0(f) {
            var seen: [String] = []
            io.loopSessions[0].forEachSession { session in
                guard let main = session.sockets["/"], let admin = session.sockets["/admin"] else { return }
                main.join("a")
                main.join("b")
                main.join(main.id)
                admin.join("a")
                admin.join("c")
                main.leave("b")
                main.leave("c")
                seen.append(main.rooms.sorted().joined(separator: ","))
                seen.append(admin.rooms.sorted().joined(separator: ","))
                seen.append("\(main.isIn("a")) \(main.isIn("c")) \(admin.isIn("c")) \(main.isIn(main.id))")
                seen.append("\(session.connection.rooms.count)")
            }
            return seen
        }
        #expect(seen == ["a", "a,c", "true false true false", "7"])
        #expect(io.rooms.members(of: "/#a") == 1 && io.rooms.members(of: "/#b") == 0)
        #expect(io.rooms.members(of: "/admin#a") == 1 && io.rooms.members(of: "/admin#c") == 1)
        // Leaving "/admin" leaves its rooms (in the directory and on the connection), not "/"'s.
        try c.send(text: "41/admin,")
        #expect(await AsyncMiddlewareTests.eventually { io.rooms.members(of: "/admin#c") == 0 })
        #expect(io.rooms.members(of: "/admin#a") == 0 && io.rooms.members(of: "/#a") == 1)
        // A new "/admin" socket on the same connection: the old one's view is empty, and it
        // cannot take the new one out of a room.
        let old = Held()
        await Self.onLoop0(f) {
            io.loopSessions[0].forEachSession { session in old.socket = session.sockets["/"] }
        }
        try c.send(text: "41")
        try c.send(text: "40")
        #expect(try await c.text().hasPrefix(#"40{"sid":"#))
        let after = await Self.onLoop0(f) {
            var seen: [String] = []
            io.loopSessions[0].forEachSession { session in
                guard let stale = old.socket, let fresh = session.sockets["/"], fresh !== stale else { return }
                fresh.join("a")
                stale.leave("a")
                seen = ["\(stale.rooms.count) \(stale.isIn("a"))", "\(fresh.rooms.sorted()) \(fresh.isIn("a"))"]
            }
            return seen
        }
        #expect(after == ["0 false", #"["a"] true"#])
        #expect(io.rooms.members(of: "/#a") == 1)
        c.closeNow()
        #expect(await AsyncMiddlewareTests.eventually { io.rooms.members(of: "/#a") == 0 })
    }

    /// A socket kept between two closures on the loop (touched on the loop only).
    final class Held: @unchecked Sendable {
        var socket: Socket?
    }

    /// A session and a socket stay in their malloc chunks (BENCHMARKS.md, memory per Socket.IO
    /// client): a field that pushes one into the next chunk (16 bytes more per client) fails here.
    @Test func aSessionAndASocketKeepTheirMallocChunks() async throws {
        let f = try PacketStateMachineTests.Fixture()
        let c = try await f.connected(to: ["/"])
        defer { c.closeNow() }
        let io = f.io
        let sizes = await Self.onLoop0(f) {
            var sizes: [Int] = []
            io.loopSessions[0].forEachSession { session in
                sizes.append(allocatedInstanceSize(of: session))
                for socket in session.sockets.values { sizes.append(allocatedInstanceSize(of: socket)) }
            }
            return sizes
        }
        #expect(sizes.count == 2)
        #expect(mallocChunk(forRequest: sizes.first ?? .max) <= 144, "EngineSession: \(sizes)")
        #expect(mallocChunk(forRequest: sizes.last ?? .max) <= 144, "Socket: \(sizes)")
    }

    /// The runtime's instance size, checked against classes whose size is known.
    @Test func instanceSizesAreTheRuntimes() {
        final class OneWord { var a = 0 }
        final class ThreeWords { var a = 0, b = 0, c = 0 }
        #expect(allocatedInstanceSize(of: OneWord()) == 24)
        #expect(allocatedInstanceSize(of: ThreeWords()) == 40)
        // The realtime app's user (one per client): its proxy data boxed.
        #expect(mallocChunk(forRequest: allocatedInstanceSize(of: AuthenticatedUser(id: "u1", projects: .all))) <= 64)
        #expect(AuthenticatedUser(id: "u1", data: ["team": "a"]).data == ["team": "a"])
        #expect(
            mallocChunk(forRequest: 24) == 32 && mallocChunk(forRequest: 152) == 160
                && mallocChunk(forRequest: 153) == 176)
    }
}
