import ChorusServer
import Synchronization

/// Process-wide membership of Socket.IO rooms (namespaced keys), kept beside the loops' own room
/// tables so that any thread can count the recipients of an emit synchronously (the loops' tables
/// are confined to their threads). One lock, taken on join/leave/count only — never per message.
public final class RoomDirectory: Sendable {
    private let table = Mutex<[String: Set<ConnectionID>]>([:])

    public init() {}

    func join(_ key: String, _ id: ConnectionID) {
        table.withLock { _ = $0[key, default: []].insert(id) }
    }

    func leave(_ key: String, _ id: ConnectionID) {
        table.withLock { t in
            guard var set = t[key] else { return }
            set.remove(id)
            t[key] = set.isEmpty ? nil : set
        }
    }

    func leave(_ keys: some Sequence<String>, _ id: ConnectionID) {
        table.withLock { t in
            for key in keys {
                guard var set = t[key] else { continue }
                set.remove(id)
                t[key] = set.isEmpty ? nil : set
            }
        }
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
            let excluded: Set<ConnectionID> = target.exceptRooms.reduce(into: []) { acc, key in
                if let s = t[key] { acc.formUnion(s) }
            }
            var seen = Set<ConnectionID>()
            var n = 0
            for key in target.rooms {
                guard let s = t[key] else { continue }
                for id in s where !excluded.contains(id) && id != target.exceptConnection && seen.insert(id).inserted {
                    n += 1
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
