/// An Engine.IO session's sockets, one per namespace. Nearly every client uses one namespace: its
/// socket is kept inline, the others in an array (a one-entry dictionary is a heap block of about
/// 120 bytes per client). Lookups compare namespace names: a client has a handful at most.
struct SessionSockets {
    private var first: Socket?
    private var others: [Socket] = []

    var isEmpty: Bool { first == nil }

    subscript(namespace: String) -> Socket? {
        get {
            if let first, first.namespace.name == namespace { return first }
            return others.first { $0.namespace.name == namespace }
        }
        set {
            remove(namespace: namespace)
            guard let newValue else { return }
            if first == nil { first = newValue } else { others.append(newValue) }
        }
    }

    /// The sockets, in the order they connected (a copy: the caller may change the table meanwhile).
    var values: [Socket] {
        guard let first else { return [] }
        return [first] + others
    }

    func forEach(_ body: (Socket) -> Void) {
        guard let first else { return }
        let others = self.others
        body(first)
        for socket in others { body(socket) }
    }

    mutating func removeAll() {
        first = nil
        others = []
    }

    private mutating func remove(namespace: String) {
        if let head = first, head.namespace.name == namespace {
            first = others.isEmpty ? nil : others.removeFirst()
            return
        }
        others.removeAll { $0.namespace.name == namespace }
    }
}
