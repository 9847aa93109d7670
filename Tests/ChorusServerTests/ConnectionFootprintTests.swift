import ChorusLoop
import ChorusTestSupport
import ChorusWebSocket
import Testing

@testable import ChorusServer

/// What an idle connection holds (BENCHMARKS.md, memory per idle connection): these keep it there.
@Suite("Connection footprint")
struct ConnectionFootprintTests {
    /// The connection object's heap block: a 368-byte malloc chunk today (where
    /// it was 712): a field added to `Connection` that pushes it into the next chunk fails here, and
    /// should instead go into `HTTPExchange`, `ConnectionRateLimits`, the application's `userData`,
    /// or the flags.
    @Test func anOpenConnectionFitsItsBlock() throws {
        let connections = try SocketlessConnections()
        let connection = try connections.open()
        let size = allocatedInstanceSize(of: connection)
        #expect(mallocChunk(forRequest: size) <= 368, "Connection is \(size) bytes")
        #expect(MemoryLayout<SocketAddress>.size <= 32)
    }

    @Test func theHTTPPhaseIsDroppedAtTheUpgrade() throws {
        let connections = try SocketlessConnections()
        let connection = try connections.handshaking()
        #expect(connection.http != nil)
        connection.upgraded(subprotocol: nil, agreement: nil)
        #expect(connection.http == nil)
        #expect(connection.reader != nil)
    }

    /// The first room is kept inline; the others spill into an array, in the order joined, and a
    /// leave keeps that order and the indexes the rooms' swap-removes rely on.
    @Test func membershipsKeepTheFirstRoomInlineAndTheOrder() throws {
        let connections = try SocketlessConnections()
        let a = try connections.open()
        let b = try connections.open()
        a.join("one")
        #expect(!a.memberships.spilled)
        a.join("two")
        a.join("three")
        a.join("two")
        #expect(a.rooms == ["one", "two", "three"])
        #expect(a.memberships.spilled)
        b.join("one")
        b.join("three")
        a.leave("one")  // b moves to index 0 of "one"
        #expect(a.rooms == ["two", "three"])
        #expect(connections.loop.rooms.members(of: "one").first === b)
        b.leave("one")
        #expect(connections.loop.rooms["one"] == nil)
        #expect(b.rooms == ["three"])
        #expect(a.isMember(of: "three") && !a.isMember(of: "one"))
        connections.loop.rooms.leaveAll(a)
        #expect(a.rooms.isEmpty)
        #expect(connections.loop.rooms["three"]?.count == 1)
        #expect(connections.loop.rooms["two"] == nil)
    }

    /// A room of one is held in the registry's entry (no `LocalRoom`); a second member makes it
    /// shared, and a leave back to one member makes it solo again, the one left at index 0.
    @Test func aRoomOfOneIsSoloAndBecomesSharedAtTwo() throws {
        let connections = try SocketlessConnections()
        let a = try connections.open()
        let b = try connections.open()
        let c = try connections.open()
        a.join("r")
        guard case .solo(let only) = connections.loop.rooms["r"] else { Issue.record("not solo"); return }
        #expect(only === a)
        b.join("r")
        c.join("r")
        guard case .shared(let room) = connections.loop.rooms["r"] else { Issue.record("not shared"); return }
        #expect(room.members.count == 3)
        a.leave("r")  // c moves to index 0
        let order = connections.loop.rooms.members(of: "r").map(ObjectIdentifier.init)
        #expect(order == [c, b].map(ObjectIdentifier.init))
        b.leave("r")
        guard case .solo(let left) = connections.loop.rooms["r"] else { Issue.record("not solo again"); return }
        #expect(left === c)
        b.join("r")  // shared again: c's index 0 must still be right for the swap-remove
        c.leave("r")
        #expect(connections.loop.rooms.members(of: "r").first === b)
        b.leave("r")
        #expect(connections.loop.rooms["r"] == nil)
        #expect(a.rooms.isEmpty && b.rooms.isEmpty && c.rooms.isEmpty)
    }
}
