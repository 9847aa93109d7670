/// An Engine.IO session's sockets, one per namespace. Nearly every client uses one namespace: its
/// socket is held alone, the others in an array (a one-entry dictionary is a heap block of about
/// 120 bytes per client), in 8 bytes either way. Lookups compare namespace names: a client has a
/// handful at most.
struct SessionSockets {
    private enum Storage {
        case none
        case one(Socket)
        case many([Socket])
    }

    private var storage = Storage.none

    var isEmpty: Bool {
        if case .none = storage { return true }
        return false
    }

    subscript(namespace: String) -> Socket? {
        get {
            switch storage {
            case .none: nil
            case .one(let socket): socket.namespace.name == namespace ? socket : nil
            case .many(let sockets): sockets.first { $0.namespace.name == namespace }
            }
        }
        set {
            var sockets = values.filter { $0.namespace.name != namespace }
            if let newValue { sockets.append(newValue) }
            switch sockets.count {
            case 0: storage = .none
            case 1: storage = .one(sockets[0])
            default: storage = .many(sockets)
            }
        }
    }

    /// The sockets, in the order they connected (a copy: the caller may change the table meanwhile).
    var values: [Socket] {
        switch storage {
        case .none: []
        case .one(let socket): [socket]
        case .many(let sockets): sockets
        }
    }

    func forEach(_ body: (Socket) -> Void) {
        switch storage {
        case .none: break
        case .one(let socket): body(socket)
        case .many(let sockets): for socket in sockets { body(socket) }
        }
    }

    mutating func removeAll() { storage = .none }
}
