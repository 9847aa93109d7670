import ChorusServer
import Synchronization
import Testing

@testable import ChorusSocketIO

@Suite("Room directory")
struct RoomDirectoryTests {
    private func id(_ slot: Int32) -> ConnectionID { ConnectionID(loop: 0, slot: slot, generation: 1) }

    /// A room of one is kept inline and grows into a set from the second member; counts, exceptions
    /// and the occupancy observer (first member in, last member out) are the same either way.
    @Test func roomsOfOneAndOfManyCountAndEmptyAlike() {
        let directory = RoomDirectory()
        let changes = Mutex<[String]>([])
        directory.observeOccupancy { key in changes.withLock { $0.append(key) } }
        directory.join("/#a", id(1))
        directory.join("/#a", id(1))
        #expect(directory.members(of: "/#a") == 1)
        directory.join("/#a", id(2))
        directory.join("/#b", id(2))
        directory.join("/#b", id(3))
        #expect(directory.members(of: "/#a") == 2)
        #expect(directory.count(.rooms(["/#a", "/#b"])) == 3)
        #expect(directory.count(BroadcastTarget(rooms: ["/#a", "/#b"], exceptRooms: ["/#a"])) == 1)
        #expect(directory.count(BroadcastTarget(rooms: ["/#a"], exceptConnection: id(1))) == 1)
        directory.leave("/#a", id(1))
        directory.leave("/#a", id(9))
        #expect(directory.members(of: "/#a") == 1)
        directory.leave(["/#a", "/#b"], id(2))
        #expect(directory.members(of: "/#a") == 0)
        #expect(directory.roomNames(namespace: "/") == ["b"])
        directory.leave("/#b", id(3))
        #expect(directory.roomNames(namespace: "/").isEmpty)
        #expect(changes.withLock { $0 } == ["/#a", "/#b", "/#a", "/#b"])
    }

    /// A limited join at the edge: the place below the limit is taken, the one at it refused, a
    /// member already in stays in; a limit of 0 creates nothing; a leave frees a place.
    @Test func limitedJoin() {
        let directory = RoomDirectory()
        #expect(directory.join("/#user:u1", id(1), limit: 0) == nil)
        #expect(directory.members(of: "/#user:u1") == 0)
        #expect(directory.join("/#user:u1", id(1), limit: 2) == "/#user:u1")
        #expect(directory.join("/#user:u1", id(2), limit: 2) == "/#user:u1")
        #expect(directory.join("/#user:u1", id(3), limit: 2) == nil)
        #expect(directory.join("/#user:u1", id(2), limit: 2) == "/#user:u1")
        #expect(directory.join("/#user:u1", id(2), limit: 1) == "/#user:u1")
        #expect(directory.members(of: "/#user:u1") == 2)
        directory.leave("/#user:u1", id(1))
        #expect(directory.join("/#user:u1", id(3), limit: 2) == "/#user:u1")
        #expect(directory.members(of: "/#user:u1") == 2)
    }

    /// Many threads racing for the places of one room: exactly `limit` get in.
    @Test func limitedJoinUnderContention() async {
        let directory = RoomDirectory()
        let admitted = await withTaskGroup(of: Bool.self) { group in
            for slot in 0..<64 {
                let member = ConnectionID(loop: 0, slot: Int32(slot), generation: 1)
                group.addTask { directory.join("/#user:u1", member, limit: 5) != nil }
            }
            return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(admitted == 5)
        #expect(directory.members(of: "/#user:u1") == 5)
    }

    @Test func membersInlineAndInASet() {
        var members = RoomMembers.one(id(1))
        let again = members.insert(id(1))
        let second = members.insert(id(2))
        #expect(!again && second && members.count == 2)
        #expect(members.contains(id(1)) && members.contains(id(2)) && !members.contains(id(3)))
        let removed = members.remove(id(1))
        let removedTwice = members.remove(id(1))
        #expect(removed && !removedTwice)
        let last = members.remove(id(2))
        #expect(last && members.isEmpty)
        var single = RoomMembers.one(id(5))
        let stranger = single.remove(id(6))
        #expect(!stranger && single.count == 1)
        let only = single.remove(id(5))
        #expect(only && single.isEmpty)
    }
}
