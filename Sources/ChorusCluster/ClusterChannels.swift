// The Redis channel names of socket.io-redis-adapter 8.x and socket.io-redis-emitter 5.x, for one
// namespace under one key prefix (`--redis-key`, default "socket.io").

/// The channels a node of namespace `namespace` publishes to and subscribes to.
public struct ClusterChannels: Sendable, Hashable {
    public let key: String
    public let namespace: String

    public init(key: String = "socket.io", namespace: String) {
        self.key = key
        self.namespace = namespace
    }

    /// Broadcasts to the whole namespace or to several rooms: `<key>#<nsp>#`.
    public var broadcast: String { key + "#" + namespace + "#" }
    /// The pattern the reference adapter subscribes to: every broadcast of the namespace,
    /// room-specific ones included (`<key>#<nsp>#*`).
    public var broadcastPattern: String { broadcast + "*" }
    /// Broadcasts to exactly one room: `<key>#<nsp>#<room>#`.
    public func broadcast(room: String) -> String { broadcast + room + "#" }
    /// Requests from every node and from the emitter: `<key>-request#<nsp>#`. Node fleets count
    /// their servers with `PUBSUB NUMSUB` on this channel.
    public var request: String { key + "-request#" + namespace + "#" }
    /// Responses, published here by default (`publishOnSpecificResponseChannel: false`).
    public var response: String { key + "-response#" + namespace + "#" }
    /// Responses meant for one node only: `<key>-response#<nsp>#<uid>#`.
    public func response(uid: String) -> String { response + uid + "#" }

    /// The channel the adapter publishes a broadcast to: the room's own channel when exactly one
    /// room is targeted, the namespace's otherwise.
    public func broadcastChannel(rooms: [String]) -> String {
        rooms.count == 1 ? broadcast(room: rooms[0]) : broadcast
    }

    /// The room a broadcast channel names: "" for the namespace channel, the room for a room
    /// channel, nil for a channel of another namespace or key.
    public func room(ofBroadcastChannel channel: some BidirectionalCollection<UInt8>) -> Substring? {
        let prefix = broadcast.utf8
        guard channel.count >= prefix.count, channel.starts(with: prefix) else { return nil }
        let rest = channel.dropFirst(prefix.count)
        if rest.isEmpty { return "" }
        guard rest.last == UInt8(ascii: "#") else { return nil }
        return Substring(decoding: rest.dropLast(), as: UTF8.self)
    }
}
