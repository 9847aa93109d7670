/// The rooms a socket joined (its own id's room aside). A socket is in a few rooms, usually: they
/// are an array, searched linearly, up to `listLimit` of them, and a set beyond (a one-element
/// `Set` is a heap block of about 130 bytes per socket, a one-element array 48).
struct SocketRooms: Sequence {
    static let listLimit = 16

    private enum Storage {
        case list([String])
        case set(Set<String>)
    }

    private var storage = Storage.list([])

    var count: Int {
        switch storage {
        case .list(let list): list.count
        case .set(let set): set.count
        }
    }

    var isEmpty: Bool { count == 0 }

    func contains(_ room: String) -> Bool {
        switch storage {
        case .list(let list): list.contains(room)
        case .set(let set): set.contains(room)
        }
    }

    /// True when the socket was not in `room` yet.
    mutating func insert(_ room: String) -> Bool {
        switch storage {
        case .list(var list):
            guard !list.contains(room) else { return false }
            storage = .list([])  // drops the enum's reference, so `list` grows in place
            list.append(room)
            storage = list.count > Self.listLimit ? .set(Set(list)) : .list(list)
            return true
        case .set(var set):
            storage = .list([])
            let inserted = set.insert(room).inserted
            storage = .set(set)
            return inserted
        }
    }

    /// True when the socket was in `room`.
    mutating func remove(_ room: String) -> Bool {
        switch storage {
        case .list(var list):
            guard let position = list.firstIndex(of: room) else { return false }
            storage = .list([])
            list.remove(at: position)
            storage = .list(list)
            return true
        case .set(var set):
            storage = .list([])
            let removed = set.remove(room) != nil
            storage = .set(set)
            return removed
        }
    }

    mutating func removeAll() { storage = .list([]) }

    var asSet: Set<String> {
        switch storage {
        case .list(let list): Set(list)
        case .set(let set): set
        }
    }

    func makeIterator() -> IndexingIterator<[String]> {
        switch storage {
        case .list(let list): list.makeIterator()
        case .set(let set): Array(set).makeIterator()
        }
    }
}
