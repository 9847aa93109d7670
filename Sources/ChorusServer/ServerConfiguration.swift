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
    /// Broadcasts queued for one loop by the other loops and threads, not yet delivered (0: no
    /// bound). A loop that falls this far behind does not take more: with the `drop` backpressure
    /// policy the excess is skipped for its clients (counted in `ServerStats.loopQueueDropped`); with
    /// `close` its WebSocket connections are closed with 1013 (try again later) once it has caught up,
    /// so that no client silently misses a message (a recovering Socket.IO client gets it back).
    public var maxLoopQueue = 65_536
    /// Size of each loop's shared receive buffer.
    public var readBufferSize = 256 * 1024

    /// Extra timeouts of the application (e.g. Engine.IO's ping interval) the timer tick must resolve.
    public var applicationTimeouts: [Double] = []

    public init() {}

    /// The coarse timer resolution: fine enough for the smallest configured timeout.
    var tickNanoseconds: UInt64 {
        let timeouts =
            ([handshakeTimeout, idleTimeout, pingInterval, closeTimeout, messageTimeout] + applicationTimeouts).filter {
                $0 > 0
            }
        let smallest = timeouts.min() ?? 1
        let tick = min(1.0, max(0.01, smallest / 4))
        return UInt64(tick * 1e9)
    }
}

/// Counters, summed over all loops. Loops publish theirs once per iteration.
///
/// Every field is a plain integer (histograms and labelled counts are fixed-size SIMD vectors), so
/// the struct is trivially copyable: a loop bumps its own copy with no atomic or lock, and publishing
/// it is one copy under one mutex per iteration (see `WebSocketServer.publish`).
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
    /// Broadcasts not taken by this loop because `maxLoopQueue` were already waiting for it; and
    /// connections it closed (1013) for that reason under the `close` policy.
    public var loopQueueDropped = 0
    public var loopQueueClosed = 0
    public var protocolErrors = 0
    public var bytesOut = 0
    /// Rooms with at least one member, counted per loop (a room spread over two loops counts twice).
    public var rooms = 0

    /// Wire bytes read from sockets (HTTP and WebSocket).
    public var bytesIn = 0
    /// Payload bytes of the data messages received (after reassembly and inflation).
    public var payloadBytesIn = 0
    /// Emits delivered by this loop (one per emit per loop, whatever the number of recipients).
    public var broadcasts = 0
    /// Bytes queued for clients at the last timer tick (current), and the largest such sum seen.
    public var queuedBytes = 0
    public var queuedBytesHighWater = 0
    /// permessage-deflate: payload bytes handed to a compressor, bytes it produced, nanoseconds spent.
    public var compressionBytesIn = 0
    public var compressionBytesOut = 0
    public var compressionNanoseconds = 0
    /// Open WebSocket connections that ended, by close code (`CloseCodes.index`).
    public var closesByCode = SIMD16<Int>()
    /// Who started those closes: [server, peer, nobody (the TCP connection vanished)].
    public var closesByInitiator = SIMD4<Int>()
    /// HTTP requests refused before an upgrade, by status (`FailureStatuses.index`).
    public var handshakesFailed = SIMD16<Int>()
    /// Loop iterations; socket events handled per iteration; busy time per iteration (from epoll's
    /// return to the end of the flush), each as non-cumulative histogram buckets (`Histograms`).
    public var iterations = 0
    public var events = 0
    public var eventsPerIteration = SIMD16<Int>()
    public var busyNanoseconds = 0
    public var iterationTime = SIMD16<Int>()
    /// Recipients per emit on this loop (its share of the fan-out), and their sum.
    public var fanout = SIMD16<Int>()
    public var broadcastRecipients = 0
    /// The loop thread's kernel thread id (in `WebSocketServer.statsPerLoop`; not summed), for
    /// reading its CPU time from /proc.
    public var threadID: Int32 = 0

    public init() {}

    /// Adds `other`'s counters (and gauges: connections, rooms, queued bytes) to these.
    public mutating func add(_ other: ServerStats) {
        connections += other.connections
        accepted += other.accepted
        refused += other.refused
        messagesIn += other.messagesIn
        deliveries += other.deliveries
        dropped += other.dropped
        backpressureClosed += other.backpressureClosed
        rateLimited += other.rateLimited
        loopQueueDropped += other.loopQueueDropped
        loopQueueClosed += other.loopQueueClosed
        protocolErrors += other.protocolErrors
        bytesOut += other.bytesOut
        rooms += other.rooms
        bytesIn += other.bytesIn
        payloadBytesIn += other.payloadBytesIn
        broadcasts += other.broadcasts
        queuedBytes += other.queuedBytes
        queuedBytesHighWater += other.queuedBytesHighWater
        compressionBytesIn += other.compressionBytesIn
        compressionBytesOut += other.compressionBytesOut
        compressionNanoseconds += other.compressionNanoseconds
        closesByCode &+= other.closesByCode
        closesByInitiator &+= other.closesByInitiator
        handshakesFailed &+= other.handshakesFailed
        iterations += other.iterations
        events += other.events
        eventsPerIteration &+= other.eventsPerIteration
        busyNanoseconds += other.busyNanoseconds
        iterationTime &+= other.iterationTime
        fanout &+= other.fanout
        broadcastRecipients += other.broadcastRecipients
    }

    /// The close codes counted apart; anything else is "other" (the last index).
    public enum CloseCodes {
        public static let codes: [UInt16] = [1000, 1001, 1002, 1003, 1005, 1006, 1007, 1008, 1009, 1010, 1011]
        public static var other: Int { codes.count }

        @inline(__always)
        public static func index(_ code: UInt16) -> Int {
            switch code {
            case 1000...1003: Int(code - 1000)
            case 1005...1011: Int(code - 1001)
            default: other
            }
        }
    }

    /// The HTTP statuses of refused requests counted apart; anything else is "other".
    public enum FailureStatuses {
        public static let statuses = [400, 401, 403, 404, 405, 408, 411, 413, 426, 431, 503]
        public static var other: Int { statuses.count }

        public static func index(_ status: Int) -> Int { statuses.firstIndex(of: status) ?? other }
    }

    /// Upper bounds (`le`) of the histogram buckets; the last bucket of each is +Inf.
    public enum Histograms {
        /// Powers of two: 1, 2, 4, ... 1024, then +Inf.
        public static let eventsBounds: [Int] = (0...10).map { 1 << $0 }
        /// Nanoseconds: 10 µs ... 1 s, then +Inf.
        public static let iterationTimeBounds: [Int] = [
            10_000, 25_000, 100_000, 250_000, 1_000_000, 2_500_000, 10_000_000, 25_000_000, 100_000_000, 250_000_000,
            1_000_000_000,
        ]
        /// Powers of four: 0, 1, 4, 16, ... 65536, then +Inf.
        public static let fanoutBounds: [Int] = [0] + (0...8).map { 1 << (2 * $0) }

        /// The bucket of `events` socket events (1 -> 0, 2 -> 1, 3...4 -> 2, ...).
        @inline(__always)
        public static func eventsIndex(_ events: Int) -> Int {
            events <= 1 ? 0 : min(Int.bitWidth - (events - 1).leadingZeroBitCount, eventsBounds.count)
        }

        @inline(__always)
        public static func iterationTimeIndex(_ nanoseconds: Int) -> Int {
            var i = 0
            while i < iterationTimeBounds.count && nanoseconds > iterationTimeBounds[i] { i += 1 }
            return i
        }

        /// 0 -> 0, 1 -> 1, 2...4 -> 2, 5...16 -> 3, ...
        @inline(__always)
        public static func fanoutIndex(_ recipients: Int) -> Int {
            if recipients <= 1 { return recipients <= 0 ? 0 : 1 }
            let bits = Int.bitWidth - (recipients - 1).leadingZeroBitCount
            return min(1 + (bits + 1) / 2, fanoutBounds.count)
        }
    }
}
