import ChorusWebSocket

/// What to do with a connection whose outbound queue passed `maxBackpressure`.
public enum BackpressurePolicy: String, Sendable, CaseIterable {
    /// Skip messages for that connection (counted in `ServerStats.dropped`).
    case drop
    /// Close it with 1008 (counted in `ServerStats.backpressureClosed`).
    case close
}

/// Every limit the server enforces, in one place. Each field has a CLI flag in `chorus serve`.
public struct ServerConfiguration: Sendable {
    public var host = "0.0.0.0"
    public var port = 3001
    /// Event loops, each on its own thread with its own listener (SO_REUSEPORT).
    public var threads = 1
    public var backlog: Int32 = 1024
    /// Largest message (after reassembly and inflation); beyond it the peer gets 1009.
    public var maxMessageSize = 16 * 1024 * 1024
    /// Largest HTTP request head; beyond it the peer gets 431.
    public var maxHeaderSize = 8 * 1024
    /// Largest HTTP request body for the non-WebSocket routes; beyond it the peer gets 413.
    public var maxBodySize = 1024 * 1024
    /// Seconds a client has to complete its HTTP request (0: no limit).
    public var handshakeTimeout = 10.0
    /// Seconds without any received byte before the server closes with 1001 (0: never).
    public var idleTimeout = 120.0
    /// Seconds one message may take to arrive, from its first byte to its last (0: no limit);
    /// beyond, the connection is closed with 1008. Each byte resets the idle timer, so without
    /// this a client could keep a half message buffered forever by trickling it.
    public var messageTimeout = 60.0
    /// Seconds of silence after which the server pings (0: never).
    public var pingInterval = 30.0
    /// Seconds to wait for the peer's close frame / FIN after the server's close frame.
    public var closeTimeout = 5.0
    /// Memory a connection's queue may keep alive before `backpressurePolicy` applies: the frame
    /// buffers it points into, each counted whole, plus 64 bytes per queue entry.
    public var maxBackpressure = 1024 * 1024
    public var backpressurePolicy = BackpressurePolicy.drop
    /// SO_SNDBUF of accepted sockets (the kernel doubles it for its bookkeeping); 0 leaves the
    /// kernel's autotuning (up to net.ipv4.tcp_wmem's maximum, 4 MiB by default, per socket). The
    /// bytes the kernel holds for a connection count toward `maxBackpressure` too.
    public var socketSendBuffer = 64 * 1024
    /// Messages per second one connection may send (text/binary messages, which carry Socket.IO
    /// events too), with a burst; beyond, `rateLimitPolicy`. Unlimited by default.
    public var messageRate = RateLimit.unlimited
    /// Message bytes per second one connection may send, with a burst.
    public var byteRate = RateLimit.unlimited
    public var rateLimitPolicy = RateLimitPolicy.drop
    /// Open connections at most (0: only the fd limit); beyond, new ones get HTTP 503.
    public var maxConnections = 0
    /// Open connections per client IP at most (0: unlimited); beyond, HTTP 503.
    public var maxConnectionsPerIP = 0
    /// Sec-WebSocket-Protocol values the server accepts, in preference order of the client.
    public var subprotocols: [String] = []
    /// permessage-deflate (RFC 7692).
    public var deflate = PerMessageDeflateConfig(mode: .off)
    /// Seconds a graceful shutdown waits for clients to answer the 1001 close.
    public var shutdownDrain = 5.0
    /// Messages handled per connection per read (0: no bound); the rest of what it sent waits for
    /// the next turn, after the other ready connections, so one client cannot stall its loop.
    public var maxMessagesPerRead = 1024
    /// Size of each loop's shared receive buffer.
    public var readBufferSize = 256 * 1024

    /// Extra timeouts of the application (e.g. Engine.IO's ping interval) the timer tick must resolve.
    public var applicationTimeouts: [Double] = []

    public init() {}

    /// The coarse timer resolution: fine enough for the smallest configured timeout.
    var tickNanoseconds: UInt64 {
        let timeouts = ([handshakeTimeout, idleTimeout, pingInterval, closeTimeout, messageTimeout] + applicationTimeouts).filter { $0 > 0 }
        let smallest = timeouts.min() ?? 1
        let tick = min(1.0, max(0.01, smallest / 4))
        return UInt64(tick * 1e9)
    }
}

/// Counters, summed over all loops. Loops publish theirs once per iteration.
public struct ServerStats: Sendable, Equatable {
    public var connections = 0
    public var accepted = 0
    public var refused = 0
    public var messagesIn = 0
    public var deliveries = 0
    public var dropped = 0
    public var backpressureClosed = 0
    /// Messages not delivered because their connection was over its rate limit.
    public var rateLimited = 0
    public var protocolErrors = 0
    public var bytesOut = 0
    /// Rooms with at least one member, counted per loop (a room spread over two loops counts twice).
    public var rooms = 0

    public init() {}
}
