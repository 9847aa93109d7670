/// The members of one room on one loop. Membership is an array (iterated without hashing on the
/// emit path); each connection remembers its index in every room it is in, so leave is an O(1)
/// swap-remove.
final class LocalRoom {
    let name: String
    @exclusivity(unchecked) var members: ContiguousArray<Connection> = []

    init(name: String) { self.name = name }

    func add(_ connection: Connection) {
        connection.memberships.append(Membership(room: self, index: members.count))
        members.append(connection)
    }

    /// Removes the member at `index`, fixing the index the moved member keeps for this room.
    func remove(at index: Int) {
        let last = members.count - 1
        if index != last {
            let moved = members[last]
            members[index] = moved
            moved.updateMembershipIndex(room: self, to: index)
        }
        members.removeLast()
    }
}

struct Membership {
    unowned(unsafe) let room: LocalRoom
    var index: Int
}

/// A loop's rooms: created on first join, freed on last leave.
struct RoomRegistry {
    private(set) var rooms: [String: LocalRoom] = [:]

    var count: Int { rooms.count }

    subscript(name: String) -> LocalRoom? { rooms[name] }

    mutating func join(_ connection: Connection, _ name: String) {
        if connection.memberships.contains(where: { $0.room.name == name }) { return }
        let room: LocalRoom
        if let existing = rooms[name] {
            room = existing
        } else {
            room = LocalRoom(name: name)
            rooms[name] = room
        }
        room.add(connection)
    }

    mutating func leave(_ connection: Connection, _ name: String) {
        guard let position = connection.memberships.firstIndex(where: { $0.room.name == name }) else { return }
        let membership = connection.memberships.remove(at: position)
        let room = membership.room
        room.remove(at: membership.index)
        if room.members.isEmpty { rooms[name] = nil }
    }

    mutating func leaveAll(_ connection: Connection) {
        while let membership = connection.memberships.popLast() {
            let room = membership.room
            room.remove(at: membership.index)
            if room.members.isEmpty { rooms[room.name] = nil }
        }
    }
}
