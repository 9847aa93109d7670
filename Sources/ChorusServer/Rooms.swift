/// The members of one room of two or more on one loop. Membership is an array (iterated without
/// hashing on the emit path); each connection remembers its index in every room it is in, so
/// leave is an O(1) swap-remove.
final class LocalRoom {
    let name: String
    @exclusivity(unchecked) var members: ContiguousArray<Connection> = []

    init(name: String) { self.name = name }

    func add(_ connection: Connection) {
        connection.memberships.append(Membership(name: name, index: members.count))
        members.append(connection)
    }

    /// Removes the member at `index`, fixing the index the moved member keeps for this room.
    func remove(at index: Int) {
        let last = members.count - 1
        if index != last {
            let moved = members[last]
            members[index] = moved
            moved.memberships.setIndex(index, inRoomNamed: name)
        }
        members.removeLast()
    }
}

/// A room as a loop holds it. Most rooms have one member (a Socket.IO socket's own room, a user's
/// room while they have one tab open): that member is kept in the registry's entry itself, because
/// a `LocalRoom` and its member array are two heap blocks (about 110 bytes) per such room.
enum LoopRoom {
    case solo(Connection)
    case shared(LocalRoom)

    var count: Int {
        switch self {
        case .solo: 1
        case .shared(let room): room.members.count
        }
    }
}

/// Where a connection sits in one of its rooms: the room's name (the registry's key) and its index
/// in the member array (0 in a solo room).
struct Membership {
    let name: String
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
        return [first.name] + others.map(\.name)
    }

    /// The first room name that `predicate` accepts, in join order.
    func first(where predicate: (String) -> Bool) -> String? {
        guard let first else { return nil }
        if predicate(first.name) { return first.name }
        return others.first { predicate($0.name) }?.name
    }

    func contains(roomNamed name: String) -> Bool {
        guard let first else { return false }
        return first.name == name || others.contains { $0.name == name }
    }

    mutating func append(_ membership: Membership) {
        guard first != nil else {
            first = membership
            return
        }
        // Grown one at a time up to `exactUpTo`: a connection stays in a handful of rooms for long
        // (a Socket.IO client: namespace, own, user, conversation), and doubling would leave a
        // quarter of its array empty (BENCHMARKS.md, memory per client); joins are rare.
        if others.count == others.capacity && others.count < Self.exactUpTo {
            others.reserveCapacity(others.count + 1)
        }
        others.append(membership)
    }

    static let exactUpTo = 8

    /// Takes out the membership of the room called `name`, if any.
    mutating func remove(roomNamed name: String) -> Membership? {
        guard let head = first else { return nil }
        if head.name == name {
            first = others.isEmpty ? nil : others.removeFirst()
            return head
        }
        guard let position = others.firstIndex(where: { $0.name == name }) else { return nil }
        return others.remove(at: position)
    }

    mutating func popLast() -> Membership? {
        if let last = others.popLast() { return last }
        defer { first = nil }
        return first
    }

    /// Records that this connection now sits at `index` in the member array of the room `name`.
    mutating func setIndex(_ index: Int, inRoomNamed name: String) {
        if first?.name == name {
            first!.index = index
            return
        }
        for i in others.indices where others[i].name == name {
            others[i].index = index
            return
        }
    }
}

/// A loop's rooms: created on first join, freed on last leave; a room of one member is held as
/// `.solo` and becomes a `LocalRoom` when a second joins (and solo again when it is down to one).
struct RoomRegistry {
    private(set) var rooms: [String: LoopRoom] = [:]

    var count: Int { rooms.count }

    subscript(name: String) -> LoopRoom? { rooms[name] }

    /// The members of `name`, in walk order (tests and diagnostics; the emit path walks the entry).
    func members(of name: String) -> [Connection] {
        switch rooms[name] {
        case nil: []
        case .solo(let connection): [connection]
        case .shared(let room): Array(room.members)
        }
    }

    mutating func join(_ connection: Connection, _ name: String) {
        if connection.memberships.contains(roomNamed: name) { return }
        switch rooms[name] {
        case nil:
            connection.memberships.append(Membership(name: name, index: 0))
            rooms[name] = .solo(connection)
        case .solo(let member):
            // The solo member's membership already says index 0.
            let room = LocalRoom(name: name)
            room.members.append(member)
            room.add(connection)
            rooms[name] = .shared(room)
        case .shared(let room):
            room.add(connection)
        }
    }

    mutating func leave(_ connection: Connection, _ name: String) {
        guard let membership = connection.memberships.remove(roomNamed: name) else { return }
        remove(membership)
    }

    mutating func leaveAll(_ connection: Connection) {
        while let membership = connection.memberships.popLast() { remove(membership) }
    }

    /// Takes a (removed) membership's connection out of its room.
    private mutating func remove(_ membership: Membership) {
        switch rooms[membership.name] {
        case nil, .solo:
            rooms[membership.name] = nil
        case .shared(let room):
            room.remove(at: membership.index)
            // The one left sits at index 0 (a swap-remove from two), as a solo member does.
            if room.members.count == 1 {
                rooms[membership.name] = .solo(room.members[0])
            } else if room.members.isEmpty {
                rooms[membership.name] = nil
            }
        }
    }
}
