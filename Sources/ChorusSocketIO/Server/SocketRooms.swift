import ChorusServer

/// The rooms a socket joined (its own id's room aside), read from its connection's room
/// memberships: the loop keeps those anyway (to leave them in O(1)), with each room's key
/// `<namespace>#<room>` (the very String the room directory keeps), so a socket keeps no list of
/// its own (an array block of 64 bytes per client for two rooms; BENCHMARKS.md, memory). A
/// namespace's keys are those that start with its name and '#': namespace names hold no '#'
/// (`SocketIOServer.of` refuses them), so no other namespace's key starts that way.
struct SocketRooms {
    let connection: Connection
    let namespace: String
    /// The socket's id: its own room is not one it joined.
    let ownID: String

    /// The key of `room`, if the socket is in it; compared in place, without building the key
    /// (checked e.g. at each message a client sends to a conversation).
    func key(of room: String) -> String? {
        guard room != ownID else { return nil }
        return connection.firstRoom { Self.key($0, names: room, in: namespace) }
    }

    /// Its rooms' keys, in join order.
    var keys: [String] {
        connection.rooms.filter { isJoinedKey($0) }
    }

    /// Its rooms' names (keys without their `<namespace>#`), in join order.
    var names: [String] { names(of: keys) }

    /// The names of `keys`, keys of this namespace (e.g. taken before the socket left them).
    func names(of keys: [String]) -> [String] {
        let prefix = namespace.utf8.count + 1
        return keys.map { String(Substring($0.utf8.dropFirst(prefix))) }
    }

    /// Whether `key` is one of this namespace's rooms other than the socket's own.
    private func isJoinedKey(_ key: String) -> Bool {
        let k = key.utf8
        let ns = namespace.utf8
        guard k.count > ns.count, k.starts(with: ns), k.dropFirst(ns.count).first == UInt8(ascii: "#") else {
            return false
        }
        return !Self.key(key, names: ownID, in: namespace)
    }

    /// Whether `key` is `<namespace>#<room>`.
    static func key(_ key: String, names room: String, in namespace: String) -> Bool {
        let k = key.utf8
        let ns = namespace.utf8
        guard k.count == ns.count + 1 + room.utf8.count, k.starts(with: ns) else { return false }
        let rest = k.dropFirst(ns.count)
        return rest.first == UInt8(ascii: "#") && rest.dropFirst().elementsEqual(room.utf8)
    }
}
