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

/// A connection's rooms. Most connections are in one (their user's room, or the broadcast room):
/// the first membership is kept inline, so that those need no heap block for it (a one-element
/// array costs 64 bytes of heap per idle connection); the others go to an array.
struct Memberships {
    private var first: Membership?
    private var others: [Membership] = []

    var count: Int { (first == nil ? 0 : 1) + others.count }
    /// More than one room: the others have an array.
    var spilled: Bool { others.capacity > 0 }

    var roomNames: [String] {
        guard let first else { return [] }
        return [first.room.name] + others.map(\.room.name)
    }

    func contains(roomNamed name: String) -> Bool {
        guard let first else { return false }
        return first.room.name == name || others.contains { $0.room.name == name }
    }

    mutating func append(_ membership: Membership) {
        if first == nil { first = membership } else { others.append(membership) }
    }

    /// Takes out the membership of the room called `name`, if any.
    mutating func remove(roomNamed name: String) -> Membership? {
        guard let head = first else { return nil }
        if head.room.name == name {
            first = others.isEmpty ? nil : others.removeFirst()
            return head
        }
        guard let position = others.firstIndex(where: { $0.room.name == name }) else { return nil }
        return others.remove(at: position)
    }

    mutating func popLast() -> Membership? {
        if let last = others.popLast() { return last }
        defer { first = nil }
        return first
    }

    /// Records that this connection now sits at `index` in `room`'s member array.
    mutating func setIndex(_ index: Int, in room: LocalRoom) {
        if first?.room === room {
            first!.index = index
            return
        }
        for i in others.indices where others[i].room === room {
            others[i].index = index
            return
        }
    }
}

/// A loop's rooms: created on first join, freed on last leave.
struct RoomRegistry {
    private(set) var rooms: [String: LocalRoom] = [:]

    var count: Int { rooms.count }

    subscript(name: String) -> LocalRoom? { rooms[name] }

    mutating func join(_ connection: Connection, _ name: String) {
        if connection.memberships.contains(roomNamed: name) { return }
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
        guard let membership = connection.memberships.remove(roomNamed: name) else { return }
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
