/// The rooms a socket joined (its own id's room aside), as their namespaced keys (`<nsp>#<room>`),
/// each the very String the room directory keeps: a room's name is stored once, not once per member
/// (64 bytes per socket for "conversation:…"). A socket is in a few rooms, usually: they are an
/// array, searched linearly, up to `listLimit` of them, and a set beyond (a one-element `Set` is a
/// heap block of about 130 bytes per socket, a one-element array 48).
struct SocketRooms: Sequence {
    static let listLimit = 16

    /// 8 bytes (the set boxed): 9 would cost the socket 8 more with alignment.
    private enum Storage {
        case list([String])
        indirect case set(Set<String>)
    }

    private var storage = Storage.list([])

    var count: Int {
        switch storage {
        case .list(let list): list.count
        case .set(let set): set.count
        }
    }

    var isEmpty: Bool { count == 0 }

    func contains(_ key: String) -> Bool {
        switch storage {
        case .list(let list): list.contains(key)
        case .set(let set): set.contains(key)
        }
    }

    /// The key of `room` in `namespace`, if the socket is in it; compared in place, without
    /// building the key (a socket in few rooms, e.g. checked at each message it sends).
    func key(of room: String, namespace: String) -> String? {
        switch storage {
        case .list(let list):
            return list.first { Self.key($0, names: room, in: namespace) }
        case .set(let set):
            let key = SocketIOServer.roomKey(namespace, room)
            return set.contains(key) ? key : nil
        }
    }

    /// Whether `key` is `<namespace>#<room>`.
    static func key(_ key: String, names room: String, in namespace: String) -> Bool {
        let k = key.utf8
        let ns = namespace.utf8
        guard k.count == ns.count + 1 + room.utf8.count, k.starts(with: ns) else { return false }
        let rest = k.dropFirst(ns.count)
        return rest.first == UInt8(ascii: "#") && rest.dropFirst().elementsEqual(room.utf8)
    }

    /// The room names (keys without their `<namespace>#`).
    func names(namespace: String) -> [String] {
        let prefix = namespace.utf8.count + 1
        return map { String(Substring($0.utf8.dropFirst(prefix))) }
    }

    /// True when the socket was not in the room `key` yet.
    mutating func insert(_ key: String) -> Bool {
        switch storage {
        case .list(var list):
            guard !list.contains(key) else { return false }
            storage = .list([])  // drops the enum's reference, so `list` grows in place
            list.append(key)
            storage = list.count > Self.listLimit ? .set(Set(list)) : .list(list)
            return true
        case .set(var set):
            storage = .list([])
            let inserted = set.insert(key).inserted
            storage = .set(set)
            return inserted
        }
    }

    /// True when the socket was in the room `key`.
    mutating func remove(_ key: String) -> Bool {
        switch storage {
        case .list(var list):
            guard let position = list.firstIndex(of: key) else { return false }
            storage = .list([])
            list.remove(at: position)
            storage = .list(list)
            return true
        case .set(var set):
            storage = .list([])
            let removed = set.remove(key) != nil
            storage = .set(set)
            return removed
        }
    }

    mutating func removeAll() { storage = .list([]) }

    func makeIterator() -> IndexingIterator<[String]> {
        switch storage {
        case .list(let list): list.makeIterator()
        case .set(let set): Array(set).makeIterator()
        }
    }
}
