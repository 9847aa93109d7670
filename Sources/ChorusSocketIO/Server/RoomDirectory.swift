import ChorusServer
import Synchronization

/// Process-wide membership of Socket.IO rooms (namespaced keys), kept beside the loops' own room
/// tables so that any thread can count the recipients of an emit synchronously (the loops' tables
/// are confined to their threads). One lock, taken on join/leave/count only — never per message.
public final class RoomDirectory: Sendable {
    private let table = Mutex<[String: RoomMembers]>([:])
    /// Told the key of a room that just got its first member or lost its last (see `observeOccupancy`).
    /// Boxed: a bare closure in the generic `Mutex`, read through `withLock`'s inout, came back
    /// wrapped in two more reabstraction thunks at every read, so each call walked a chain as long
    /// as the number of calls before it (half a node's CPU at 2,000 connects, in a profile).
    private let occupancyObserver = Mutex<OccupancyObserver?>(nil)

    private final class OccupancyObserver: Sendable {
        let body: @Sendable (String) -> Void
        init(_ body: @escaping @Sendable (String) -> Void) { self.body = body }
    }

    public init() {}

    /// `observer` is called, on the joining or leaving thread and after the change, with the key of
    /// each room that went from no member to one or from one to none (a cluster adapter subscribing
    /// only to the rooms this node holds). Calls from different threads may arrive out of order:
    /// the observer reads the current state (`members(of:)`) rather than trusting the call's order.
    /// Set it before the server starts; one observer at a time.
    public func observeOccupancy(_ observer: (@Sendable (String) -> Void)?) {
        let box = observer.map(OccupancyObserver.init)
        occupancyObserver.withLock { $0 = box }
    }

    /// Adds `id` to the room `key`; returns the key the directory keeps for the room (the caller's,
    /// for a new room), so that the members' copies share one String.
    @discardableResult
    func join(_ key: String, _ id: ConnectionID) -> String {
        join(key, id, limit: .max)!
    }

    /// Adds `id` to the room `key` unless the room has `limit` members already (nil then; a member
    /// already in it stays, with the key). The count and the insert are one step under the lock:
    /// two connections racing for a room's last place cannot both take it.
    func join(_ key: String, _ id: ConnectionID, limit: Int) -> String? {
        let (created, stored) = table.withLock { t -> (Bool, String?) in
            if let index = t.index(forKey: key) {
                let members = t.values[index]
                if !members.contains(id) {
                    guard members.count < limit else { return (false, nil) }
                    t.values[index].insert(id)
                }
                return (false, t.keys[index])
            }
            guard limit > 0 else { return (false, nil) }
            t[key] = .one(id)
            return (true, key)
        }
        if created { occupancyChanged(key) }
        return stored
    }

    func leave(_ key: String, _ id: ConnectionID) {
        let emptied = table.withLock { t in Self.remove(id, from: key, in: &t) }
        if emptied { occupancyChanged(key) }
    }

    func leave(_ keys: some Sequence<String>, _ id: ConnectionID) {
        let emptied = table.withLock { t -> [String] in
            var emptied: [String] = []
            for key in keys where Self.remove(id, from: key, in: &t) { emptied.append(key) }
            return emptied
        }
        for key in emptied { occupancyChanged(key) }
    }

    /// Removes in place (a copy of a large room's set per leave would make a room's draining
    /// quadratic); true when the room is now empty and gone.
    private static func remove(_ id: ConnectionID, from key: String, in t: inout [String: RoomMembers]) -> Bool {
        guard t[key]?.remove(id) == true, t[key]?.isEmpty == true else { return false }
        t[key] = nil
        return true
    }

    /// Off the table's lock, so the observer may read the directory.
    private func occupancyChanged(_ key: String) {
        guard let observer = occupancyObserver.withLock({ $0 }) else { return }
        observer.body(key)
    }

    /// Connections in any of `rooms`, minus those in any of `except` and `exceptConnection`:
    /// exactly the set `WebSocketServer.emit` delivers to at this instant.
    public func count(_ target: BroadcastTarget) -> Int {
        table.withLock { t in
            // The common case (one room, no exceptions) is a count, not a walk over the members.
            if target.rooms.count == 1 && target.exceptRooms.isEmpty {
                guard let s = t[target.rooms[0]] else { return 0 }
                return s.count - (target.exceptConnection.map { s.contains($0) ? 1 : 0 } ?? 0)
            }
            var excluded = Set<ConnectionID>()
            for key in target.exceptRooms { t[key]?.forEachMember { excluded.insert($0) } }
            var seen = Set<ConnectionID>()
            var n = 0
            for key in target.rooms {
                t[key]?.forEachMember { id in
                    if !excluded.contains(id) && id != target.exceptConnection && seen.insert(id).inserted { n += 1 }
                }
            }
            return n
        }
    }

    public func members(of key: String) -> Int { table.withLock { $0[key]?.count ?? 0 } }

    /// The rooms of `namespace` with members (names without the namespace prefix).
    public func roomNames(namespace: String) -> Set<String> {
        let prefix = namespace + "#"
        return table.withLock { t in
            var names = Set<String>()
            for key in t.keys where key.hasPrefix(prefix) { names.insert(String(key.dropFirst(prefix.count))) }
            return names
        }
    }
}

/// A room's members in the directory. Most rooms have one (each socket's own room, each user's
/// room while they have one tab open): it is kept inline, because a one-element `Set` is a heap
/// block of about 170 bytes per socket (BENCHMARKS.md, memory per idle connection).
enum RoomMembers {
    case one(ConnectionID)
    case many(Set<ConnectionID>)

    var count: Int {
        switch self {
        case .one: 1
        case .many(let set): set.count
        }
    }

    var isEmpty: Bool { count == 0 }

    func contains(_ id: ConnectionID) -> Bool {
        switch self {
        case .one(let member): member == id
        case .many(let set): set.contains(id)
        }
    }

    /// True when `id` was not a member yet.
    @discardableResult
    mutating func insert(_ id: ConnectionID) -> Bool {
        switch self {
        case .one(let member):
            if member == id { return false }
            self = .many([member, id])
            return true
        case .many(var set):
            self = .one(id)  // drops the enum's reference, so `set` is mutated in place
            let inserted = set.insert(id).inserted
            self = .many(set)
            return inserted
        }
    }

    /// True when `id` was a member. A room left empty is `.many([])`: the directory removes it.
    mutating func remove(_ id: ConnectionID) -> Bool {
        switch self {
        case .one(let member):
            guard member == id else { return false }
            self = .many([])
            return true
        case .many(var set):
            self = .one(id)
            let removed = set.remove(id) != nil
            self = .many(set)
            return removed
        }
    }

    func forEachMember(_ body: (ConnectionID) -> Void) {
        switch self {
        case .one(let member): body(member)
        case .many(let set): set.forEach(body)
        }
    }
}
