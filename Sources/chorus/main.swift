// Over the ~400-line guide: one declaration per `chorus serve` flag (about ninety), their
// validation and the configuration they build; nothing else lives here.
import ArgumentParser
import ChorusApp
import ChorusCluster
import ChorusLoop
import ChorusMetrics
import ChorusProxy
import ChorusRedis
import ChorusServer
import ChorusSocketIO
import ChorusWebSocket
import Logging
import Metrics

#if canImport(Glibc)
import Glibc
#endif

@main
struct Chorus: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chorus",
        abstract: "A high-performance WebSocket server for Linux.",
        subcommands: [Serve.self],
        defaultSubcommand: Serve.self)
}

enum AppName: String, ExpressibleByArgument, CaseIterable {
    case realtime, echo, broadcast
}

enum AdapterName: String, ExpressibleByArgument, CaseIterable {
    case memory, redis
    case redisStreams = "redis-streams"

    var usesRedis: Bool { self != .memory }
}

extension RedisSubscriptionMode: ExpressibleByArgument {}
extension AuthMode: ExpressibleByArgument {}
extension AuthorizationMode: ExpressibleByArgument {}

extension BackpressurePolicy: ExpressibleByArgument {}
extension RateLimitPolicy: ExpressibleByArgument {}
extension DeflateMode: ExpressibleByArgument {}
extension LogFormat: ExpressibleByArgument {}

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the server.")

    @Option(help: "Address to listen on.") var host = "0.0.0.0"
    @Option(help: "TCP port (0 picks a free one).") var port = 3001
    @Option(
        help:
            "Application: realtime (the Socket.IO chat + project gateway), echo (every message back to its sender) or broadcast (every message to everyone)."
    )
    var app = AppName.realtime
    @Option(help: "Event loops, one thread each (default: the number of cores).") var threads: Int?
    @Option(help: "Largest message in bytes after reassembly and inflation; larger ones are closed with 1009.")
    var maxMessageSize = 16 * 1024 * 1024
    @Option(help: "Largest HTTP request head in bytes; larger ones get 431.") var maxHeaderSize = 8 * 1024
    @Option(
        help:
            "Largest HTTP request body in bytes on the plain routes (the emit API), Content-Length or chunked; larger ones get 413."
    )
    var maxBodySize = 1024 * 1024
    @Option(help: "Seconds a client has to send its HTTP request (0: no limit).") var handshakeTimeout = 10.0
    @Option(help: "Seconds without traffic before a connection is closed with 1001 (0: never).") var idleTimeout = 120.0
    @Option(help: "Seconds of silence before the server pings a client (0: never).") var pingInterval = 30.0
    @Option(
        help:
            "Seconds one message may take from its first byte to its last (0: no limit); beyond, the connection is closed with 1008."
    )
    var messageTimeout = 60.0
    @Option(
        help:
            "Memory one connection's queue may keep alive (the frame buffers it points into, + 64 per entry) before the backpressure policy applies."
    ) var maxBackpressure = 1024 * 1024
    @Option(
        help:
            "What to do with a connection over --max-backpressure: drop (skip messages) or close (1008). Default: close for --app realtime with recovery on (the client comes back and gets what it missed), drop otherwise."
    )
    var backpressurePolicy: BackpressurePolicy?
    @Option(
        help:
            "SO_SNDBUF of each client socket in bytes (the kernel doubles it); bounds the kernel memory a client that stops reading can pin. 0: kernel autotuning (up to 4 MiB per socket)."
    )
    var socketSendBuffer = 64 * 1024
    @Option(
        help: "Messages per second one connection may send (WebSocket messages, so Socket.IO events too; 0: unlimited)."
    )
    var rateLimitMessages = 0.0
    @Option(help: "Messages a connection may send at once after a quiet period (default: twice --rate-limit-messages).")
    var rateLimitMessageBurst: Double?
    @Option(help: "Message bytes per second one connection may send (0: unlimited).")
    var rateLimitBytes = 0.0
    @Option(
        help:
            "Message bytes a connection may send at once (default: twice --rate-limit-bytes; a message larger than this never passes)."
    )
    var rateLimitByteBurst: Double?
    @Option(help: "Beyond a rate limit: drop (the message is not delivered, counted) or close (1008).")
    var rateLimitPolicy = RateLimitPolicy.drop
    @Option(
        help:
            "Messages handled per connection per read (0: no bound); the rest waits for the next turn, so one client cannot stall the others on its loop."
    )
    var maxMessagesPerRead = 1024
    @Option(
        help:
            "Broadcasts waiting for one event loop, handed to it by the others (0: no bound); beyond, the loop takes no more: skipped (counted) under --backpressure-policy drop, its connections closed with 1013 once it caught up under close."
    )
    var maxLoopQueue = 65_536
    @Option(help: "Open connections at most (0: limited only by file descriptors); beyond, HTTP 503.")
    var maxConnections = 0
    @Option(help: "Open connections per client IP at most (0: unlimited); beyond, HTTP 503.") var maxConnectionsPerIp =
        0
    @Option(help: "Listen backlog.") var backlog: Int32 = 1024
    @Option(help: "A Sec-WebSocket-Protocol the server accepts (repeatable).") var subprotocol: [String] = []
    @Option(
        help:
            "permessage-deflate: off, shared (compress each broadcast once), dedicated (per-connection context for direct messages)."
    )
    var deflate = DeflateMode.shared
    @Option(help: "Payloads smaller than this many bytes are sent uncompressed.") var deflateThreshold = 64
    @Option(help: "Largest LZ77 window the server compresses with (9-15).") var deflateWindowBits = 15
    @Option(help: "zlib memLevel for compression (1-9): lower uses less memory per stream.") var deflateMemLevel = 8
    @Option(
        help:
            "zlib compression level (0-9, or -1 for zlib's default 6): 0 sends stored blocks, higher trades CPU for ratio."
    )
    var deflateLevel = PerMessageDeflateConfig.defaultLevel
    @Option(help: "Seconds a graceful shutdown waits for clients to close.") var shutdownDrain = 5.0
    @Option(
        help:
            "Seconds the server waits for the client's close frame (or its FIN) after sending its own, before it drops the connection."
    )
    var closeTimeout = 5.0
    @Option(
        help:
            "Bytes of each loop's shared read buffer (at least 4096); longer frames are assembled in the connection's own buffer."
    )
    var readBufferSize = 256 * 1024
    @Option(
        help:
            "Binary attachments one Socket.IO packet may announce (realtime); more closes the connection (parse error)."
    )
    var sioMaxAttachments = 10
    @Option(
        help:
            "Packets a client may send for a namespace whose CONNECT still waits on an asynchronous middleware (realtime); more closes the connection."
    )
    var sioMaxPendingPackets = 16
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.") var logLevel = "info"
    @Option(help: "Log format on standard error: text, or json (one object per line).") var logFormat = LogFormat.text

    // Observing (see README, "Observing Chorus")
    @Option(help: "Bearer token for GET /metrics and the dashboard's data on the main port (default: --api-token).")
    var metricsToken: String?
    @Option(help: "Also serve GET /metrics without a token on this port (a separate listener; 0 picks a free one).")
    var metricsPort: Int?
    @Option(help: "Address of the --metrics-port listener (keep it private).") var metricsHost = "127.0.0.1"

    // --app realtime (Socket.IO)
    @Option(help: "Engine.IO endpoint path (realtime).") var socketioPath = "/socket.io/"
    @Option(help: "Milliseconds between Engine.IO pings (realtime).") var sioPingInterval = 25_000
    @Option(help: "Milliseconds a client has to answer a ping before it is disconnected (realtime).")
    var sioPingTimeout = 20_000
    @Option(
        help:
            "Largest Socket.IO message in bytes (Engine.IO maxPayload); larger closes the connection with 1009 (realtime)."
    )
    var maxPayload = 1_000_000
    @Option(help: "Seconds a client has to connect to a namespace after the handshake (realtime).") var connectTimeout =
        45.0
    @Option(
        help:
            "Largest message in bytes before the client's first namespace CONNECT succeeds (0: --max-payload); larger closes with 1009 (realtime)."
    )
    var maxPayloadBeforeConnect = 16 * 1024
    @Option(
        help:
            "Seconds an asynchronous connection middleware (JWT verification) may take before the CONNECT is refused with CONNECT_ERROR (0: no limit; realtime)."
    )
    var middlewareTimeout = 10.0
    @Option(
        help:
            "Seconds a client whose transport dropped may come back as the same socket, with its rooms and the events it missed (Socket.IO connection state recovery; 0: off, and no offsets on the wire; realtime)."
    )
    var recoveryWindow = 120.0
    @Flag(
        inversion: .prefixedNo,
        help:
            "A recovered socket skips the connection middleware (JWT, connect proxy) and keeps its authenticated user (realtime)."
    )
    var recoverySkipMiddlewares = true
    @Option(
        help:
            "Bytes of events kept for replay per namespace; the oldest go first, and a client whose offset fell out gets a fresh session (realtime)."
    )
    var recoveryBuffer = 64 << 20
    @Option(help: "Disconnected sessions kept for recovery per namespace; the oldest go first (realtime).")
    var recoveryMaxSessions = 100_000
    @Option(help: "Authentication: jwt, or none (development: trusts the userId query parameter).") var auth = AuthMode
        .jwt
    @Option(
        help:
            "Authorization of room joins: claims (token's projects/conversations arrays) or open (default: claims with --auth jwt, open with --auth none)."
    )
    var authz: AuthorizationMode?
    @Option(help: "HS256 secret.") var jwtSecret: String?
    @Option(help: "File holding the HS256 secret (trailing newline stripped).") var jwtSecretFile: String?
    @Option(help: "PEM public key file for RS256 (RSA) or ES256 (P-256).") var jwtPublicKeyFile: String?
    @Option(help: "Required iss claim.") var jwtIssuer: String?
    @Option(help: "Required aud claim.") var jwtAudience: String?
    @Option(help: "Seconds of clock skew tolerated for exp/nbf.") var jwtLeeway = 0.0
    @Option(help: "Longest JWT in bytes; longer tokens are refused before decoding (realtime).")
    var jwtMaxSize = JWTVerifier.defaultMaxTokenSize
    @Option(
        help:
            "Deepest [ / { nesting of a JWT's header and claims; deeper tokens are refused before decoding (realtime).")
    var jwtMaxDepth = JWTVerifier.defaultMaxNestingDepth
    @Option(help: "Bearer token of the HTTP emit API (/api/v1/...); without it the API answers 401.") var apiToken:
        String?
    @Option(help: "File holding the emit API token.") var apiTokenFile: String?
    @Option(help: "Longest chat message content in characters (realtime).") var maxContentLength = 10_000
    @Option(
        help:
            "Sockets one user may have connected at once (0: unlimited); beyond, CONNECT_ERROR \"too many connections\" (realtime)."
    )
    var maxConnectionsPerUser = 32

    @Option(
        help:
            "Where broadcasts and cluster-wide operations reach (realtime): memory (this process), redis (every node on one Redis, wire-compatible with socket.io-redis-adapter 8.x and socket.io-redis-emitter 5.x) or redis-streams (one Redis stream, wire-compatible with socket.io-redis-streams-adapter 0.3.x: connection state recovery works across nodes)."
    )
    var adapter = AdapterName.memory
    @Option(help: "Redis of the cluster (--adapter redis): redis://[[user]:password@]host[:port][/db] or unix:///path.")
    var redisUrl = "redis://127.0.0.1:6379"
    @Option(help: "Prefix of the cluster's Redis channels (the adapter's and emitter's `key`).") var redisKey =
        "socket.io"
    @Option(
        help:
            "Milliseconds a cluster-wide request (fetch sockets, all rooms, server-side emit with ack) waits for the other nodes."
    )
    var redisRequestTimeout = 5000
    @Option(help: "Publishes kept while Redis is unreachable; beyond, they are dropped and counted.")
    var redisPublishQueue = 10_000
    @Option(
        help:
            "Entries the stream is trimmed to, about (XADD MAXLEN ~; --adapter redis-streams): the events a recovery can replay across nodes."
    )
    var redisStreamMaxLen = 10_000
    @Option(
        help:
            "Broadcast channels a node subscribes to: pattern (every broadcast of the namespace, as socket.io-redis-adapter) or rooms (the namespace's channel and one channel per room with a local member, socket-id rooms included; a broadcast for a room this node does not hold never reaches it)."
    )
    var redisSubscription = RedisSubscriptionMode.pattern
    @Option(
        help:
            "Milliseconds before the first reconnect to Redis; each failed attempt doubles it up to --redis-reconnect-max."
    )
    var redisReconnectMin = 100
    @Option(help: "Milliseconds between reconnect attempts at most.") var redisReconnectMax = 5000
    @Option(
        help:
            "Milliseconds a Redis connect and login (AUTH, SELECT, PING) may take before the attempt is abandoned and retried."
    )
    var redisConnectTimeout = 5000

    // Backend proxies (realtime): the product's backend decides, Chorus fans out.
    @Option(help: "URL the backend stores each message:send at before it is broadcast (POST JSON; realtime).")
    var proxyMessage: String?
    @Option(help: "URL the backend decides each join:project / join:conversation at, instead of --authz (realtime).")
    var proxyJoin: String?
    @Option(
        help:
            "URL the backend decides each CONNECT at: alone with --auth none, after the JWT with --auth jwt (realtime)."
    ) var proxyConnect: String?
    @Option(help: "Bearer token the proxies send to the backend.") var proxyToken: String?
    @Option(help: "File holding the proxies' bearer token.") var proxyTokenFile: String?
    @Option(help: "Seconds a proxy call has before it fails as unavailable.") var proxyTimeout = 3.0
    @Option(help: "Proxy calls in flight per endpoint at most; beyond, refused as unavailable at once.")
    var proxyMaxInFlight = 1000
    @Option(help: "Kept-alive connections to the backend per host at most.") var proxyConnections = 8
    @Option(help: "message:send calls one socket may have waiting for the backend; beyond, refused as unavailable.")
    var proxyMaxPerSocket = 32
    @Option(
        help: "Seconds a join decision (allowed/forbidden) is reused for the same user and room (0: ask every time).")
    var proxyJoinCache = 0.0
    @Option(help: "Join decisions cached at most.") var proxyJoinCacheSize = 100_000
    @Option(help: "Comma-separated request headers forwarded to the connect proxy (empty: none).")
    var proxyConnectHeaders = "authorization,cookie,origin,user-agent"

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0...65535") }
        if let metricsPort, !(0...65535).contains(metricsPort) {
            throw ValidationError("--metrics-port must be 0...65535")
        }
        guard (9...15).contains(deflateWindowBits) else {
            throw ValidationError("--deflate-window-bits must be 9...15")
        }
        guard (1...9).contains(deflateMemLevel) else { throw ValidationError("--deflate-mem-level must be 1...9") }
        guard PerMessageDeflateConfig.levels.contains(deflateLevel) else {
            throw ValidationError("--deflate-level must be -1...9")
        }
        guard maxMessageSize > 0, maxHeaderSize >= 256 else {
            throw ValidationError("message and header limits must be positive (header >= 256)")
        }
        guard socketSendBuffer >= 0 else { throw ValidationError("--socket-send-buffer must not be negative") }
        guard rateLimitMessages >= 0, rateLimitBytes >= 0, (rateLimitMessageBurst ?? 1) > 0,
            (rateLimitByteBurst ?? 1) > 0
        else {
            throw ValidationError("rate limits must not be negative, bursts must be positive")
        }
        guard maxMessagesPerRead >= 0 else { throw ValidationError("--max-messages-per-read must not be negative") }
        guard maxLoopQueue >= 0 else { throw ValidationError("--max-loop-queue must not be negative") }
        guard messageTimeout >= 0 else { throw ValidationError("--message-timeout must not be negative") }
        guard maxBodySize >= 0 else { throw ValidationError("--max-body-size must not be negative") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level \(logLevel)") }
        if let threads, threads < 1 || threads > ServerConfiguration.maxThreads {
            throw ValidationError("--threads must be 1...\(ServerConfiguration.maxThreads)")
        }
        guard closeTimeout > 0 else { throw ValidationError("--close-timeout must be positive") }
        guard readBufferSize >= ServerConfiguration.minReadBufferSize else {
            throw ValidationError("--read-buffer-size must be at least \(ServerConfiguration.minReadBufferSize)")
        }
        guard sioMaxAttachments >= 0, sioMaxPendingPackets >= 0 else {
            throw ValidationError("--sio-max-attachments and --sio-max-pending-packets must not be negative")
        }
        if adapter.usesRedis {
            guard app == .realtime else { throw ValidationError("--adapter \(adapter.rawValue) needs --app realtime") }
            guard redisStreamMaxLen >= 1 else { throw ValidationError("--redis-stream-max-len must be at least 1") }
            do { _ = try RedisURL(parsing: redisUrl) } catch { throw ValidationError("--redis-url: \(error)") }
            guard !redisKey.isEmpty else { throw ValidationError("--redis-key must not be empty") }
            guard redisRequestTimeout > 0 else { throw ValidationError("--redis-request-timeout must be positive") }
            guard redisPublishQueue >= 0 else { throw ValidationError("--redis-publish-queue must be 0 or more") }
            guard redisReconnectMin >= 1 else { throw ValidationError("--redis-reconnect-min must be at least 1 (ms)") }
            guard redisReconnectMax >= redisReconnectMin else {
                throw ValidationError("--redis-reconnect-max must be at least --redis-reconnect-min")
            }
            guard redisConnectTimeout >= 1 else {
                throw ValidationError("--redis-connect-timeout must be at least 1 (ms)")
            }
        }
        if app == .realtime {
            guard sioPingInterval > 0, sioPingTimeout > 0 else {
                throw ValidationError("--sio-ping-interval and --sio-ping-timeout must be positive")
            }
            guard maxPayload > 0, maxContentLength > 0 else {
                throw ValidationError("--max-payload and --max-content-length must be positive")
            }
            guard maxPayloadBeforeConnect >= 0 else {
                throw ValidationError("--max-payload-before-connect must not be negative")
            }
            guard maxConnectionsPerUser >= 0 else {
                throw ValidationError("--max-connections-per-user must not be negative")
            }
            guard middlewareTimeout >= 0 else { throw ValidationError("--middleware-timeout must not be negative") }
            guard recoveryWindow >= 0, recoveryWindow <= 86_400 else {
                throw ValidationError("--recovery-window must be 0...86400 seconds")
            }
            guard recoveryBuffer > 0, recoveryMaxSessions > 0 else {
                throw ValidationError("--recovery-buffer and --recovery-max-sessions must be positive")
            }
            guard jwtMaxSize > 0, jwtMaxDepth > 0 else {
                throw ValidationError("--jwt-max-size and --jwt-max-depth must be positive")
            }
            for (flag, url) in [
                ("--proxy-message", proxyMessage), ("--proxy-join", proxyJoin), ("--proxy-connect", proxyConnect),
            ] {
                if let url, !(url.hasPrefix("http://") || url.hasPrefix("https://")) {
                    throw ValidationError("\(flag) must be an http:// or https:// URL")
                }
            }
            guard proxyTimeout > 0 else { throw ValidationError("--proxy-timeout must be positive") }
            guard proxyMaxInFlight >= 1, proxyConnections >= 1, proxyMaxPerSocket >= 1, proxyJoinCacheSize >= 1 else {
                throw ValidationError(
                    "--proxy-max-in-flight, --proxy-connections, --proxy-max-per-socket and --proxy-join-cache-size must be at least 1"
                )
            }
            guard proxyJoinCache >= 0 else { throw ValidationError("--proxy-join-cache must not be negative") }
            guard proxyToken == nil || proxyTokenFile == nil else {
                throw ValidationError("give --proxy-token or --proxy-token-file, not both")
            }
            if auth == .jwt {
                let keys = [jwtSecret, jwtSecretFile, jwtPublicKeyFile].compactMap { $0 }.count
                guard keys == 1 else {
                    throw ValidationError(
                        "--auth jwt needs exactly one of --jwt-secret, --jwt-secret-file, --jwt-public-key-file")
                }
            }
        }
    }

    static func readSecret(_ path: String) throws -> String {
        guard let f = fopen(path, "r") else { throw ValidationError("cannot read \(path)") }
        defer { fclose(f) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = fread(&buffer, 1, buffer.count, f)
            if n <= 0 { break }
            bytes += buffer[0..<n]
        }
        while let last = bytes.last, last == 10 || last == 13 { bytes.removeLast() }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The Redis connections' settings, for either adapter.
    var redisClientConfiguration: RedisClientConfiguration {
        var c = RedisClientConfiguration()
        c.maxQueuedCommands = redisPublishQueue
        c.initialReconnectDelay = .milliseconds(redisReconnectMin)
        c.maximumReconnectDelay = .milliseconds(redisReconnectMax)
        c.connectTimeout = .milliseconds(redisConnectTimeout)
        return c
    }

    func run() throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrapChorus(format: logFormat, level: level)
        let logger = Logger(label: "chorus")

        var config = ServerConfiguration()
        config.host = host
        config.port = port
        config.threads = threads ?? Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        config.maxMessageSize = maxMessageSize
        config.maxHeaderSize = maxHeaderSize
        config.maxBodySize = maxBodySize
        config.handshakeTimeout = handshakeTimeout
        config.idleTimeout = idleTimeout
        config.pingInterval = pingInterval
        config.messageTimeout = messageTimeout
        config.maxBackpressure = maxBackpressure
        // A dropped event would be a gap that recovery never repairs (the client's offsets go on);
        // closing lets the client reconnect and receive it from the recovery log.
        config.backpressurePolicy = backpressurePolicy ?? (app == .realtime && recoveryWindow > 0 ? .close : .drop)
        config.socketSendBuffer = socketSendBuffer
        config.messageRate = RateLimit(
            perSecond: rateLimitMessages, burst: rateLimitMessageBurst ?? 2 * rateLimitMessages)
        config.byteRate = RateLimit(perSecond: rateLimitBytes, burst: rateLimitByteBurst ?? 2 * rateLimitBytes)
        config.rateLimitPolicy = rateLimitPolicy
        config.maxMessagesPerRead = maxMessagesPerRead
        config.maxLoopQueue = maxLoopQueue
        config.maxConnections = maxConnections
        config.maxConnectionsPerIP = maxConnectionsPerIp
        config.backlog = backlog
        config.subprotocols = subprotocol
        config.deflate = PerMessageDeflateConfig(
            mode: deflate, serverMaxWindowBits: deflateWindowBits, memLevel: deflateMemLevel,
            threshold: deflateThreshold,
            clientMaxWindowBits: 15, level: deflateLevel)
        config.shutdownDrain = shutdownDrain
        config.closeTimeout = closeTimeout
        config.readBufferSize = readBufferSize

        let application: any ServerApplication
        var realtime: RealtimeApplication?
        switch app {
        case .echo: application = EchoApplication()
        case .broadcast: application = BroadcastApplication()
        case .realtime:
            var rc = RealtimeConfiguration()
            rc.socketIO.path = socketioPath
            rc.socketIO.pingInterval = Double(sioPingInterval) / 1000
            rc.socketIO.pingTimeout = Double(sioPingTimeout) / 1000
            rc.socketIO.maxPayload = maxPayload
            rc.socketIO.maxAttachments = sioMaxAttachments
            rc.socketIO.maxPendingPackets = sioMaxPendingPackets
            rc.socketIO.connectTimeout = connectTimeout
            rc.socketIO.middlewareTimeout = middlewareTimeout
            rc.socketIO.maxPayloadBeforeConnect = maxPayloadBeforeConnect
            if recoveryWindow > 0 {
                rc.socketIO.recovery = RecoveryConfiguration(
                    window: recoveryWindow, skipMiddlewares: recoverySkipMiddlewares,
                    maxBufferedBytes: recoveryBuffer, maxSessions: recoveryMaxSessions)
            }
            rc.auth = auth
            // Claims by default whenever someone vouches for the user (the token or the connect proxy).
            rc.authorization = authz ?? (auth == .jwt || proxyConnect != nil ? .claims : .open)
            rc.maxContentLength = maxContentLength
            rc.maxConnectionsPerUser = maxConnectionsPerUser
            rc.apiToken = try apiToken ?? apiTokenFile.map { try Self.readSecret($0) }
            if auth == .jwt {
                let key: JWTVerifier.Key
                if let file = jwtPublicKeyFile {
                    key = try JWTVerifier.publicKey(pem: try Self.readSecret(file))
                } else {
                    key = .hs256(Array((try jwtSecret ?? Self.readSecret(jwtSecretFile!)).utf8))
                }
                rc.jwt = JWTVerifier(
                    key: key, issuer: jwtIssuer, audience: jwtAudience, leeway: jwtLeeway,
                    maxTokenSize: jwtMaxSize, maxNestingDepth: jwtMaxDepth)
            }
            if rc.apiToken == nil { logger.warning("no --api-token: the HTTP emit API answers 401") }
            rc.proxies.messageURL = proxyMessage
            rc.proxies.joinURL = proxyJoin
            rc.proxies.connectURL = proxyConnect
            rc.proxies.client.token = try proxyToken ?? proxyTokenFile.map { try Self.readSecret($0) }
            rc.proxies.client.timeout = proxyTimeout
            rc.proxies.client.maxInFlight = proxyMaxInFlight
            rc.proxies.client.connections = proxyConnections
            // A stored message must fit in a Socket.IO packet anyway.
            rc.proxies.client.maxResponseSize = maxPayload
            rc.proxies.maxPerSocket = proxyMaxPerSocket
            rc.proxies.joinCacheTTL = proxyJoinCache
            rc.proxies.joinCacheSize = proxyJoinCacheSize
            rc.proxies.connectHeaders = proxyConnectHeaders.split(separator: ",")
                .map { String($0.filter { $0 != " " }) }.filter { !$0.isEmpty }
            // Engine.IO's limits replace the WebSocket ones; its heartbeat replaces WebSocket pings.
            config.maxMessageSize = rc.socketIO.webSocketMessageLimit
            config.applicationTimeouts = rc.socketIO.timeouts
            let app = RealtimeApplication(configuration: rc, logger: logger)
            if adapter == .redis {
                var cluster = RedisAdapterConfiguration(url: try RedisURL(parsing: redisUrl))
                cluster.key = redisKey
                cluster.requestTimeout = Double(redisRequestTimeout) / 1000
                cluster.client = redisClientConfiguration
                cluster.subscription = redisSubscription
                app.io.adapter = RedisAdapter(configuration: cluster, logger: Logger(label: "chorus.cluster"))
            } else if adapter == .redisStreams {
                var cluster = RedisStreamsAdapterConfiguration(url: try RedisURL(parsing: redisUrl))
                cluster.key = redisKey
                cluster.maxLength = redisStreamMaxLen
                cluster.requestTimeout = Double(redisRequestTimeout) / 1000
                cluster.client = redisClientConfiguration
                app.io.adapter = RedisStreamsAdapter(configuration: cluster, logger: Logger(label: "chorus.cluster"))
            }
            realtime = app
            application = app.serverApplication
        }

        // Signals are taken synchronously by one thread; every other thread inherits the mask.
        signal(SIGPIPE, SIG_IGN)
        var mask = sigset_t()
        sigemptyset(&mask)
        sigaddset(&mask, SIGINT)
        sigaddset(&mask, SIGTERM)
        pthread_sigmask(SIG_BLOCK, &mask, nil)

        let fileLimit = ResourceLimits.raiseOpenFileLimit()
        let server = WebSocketServer(configuration: config, application: application, logger: logger)
        // swift-metrics, backed by swift-prometheus: the loops' counters are handed over on each scrape.
        let metricsFactory = ChorusPrometheusFactory()
        MetricsSystem.bootstrap(metricsFactory)
        var jwtFailures: (@Sendable () -> [String: Int])?
        if let realtime { jwtFailures = { realtime.jwtFailures } }
        var clusterCounters: (@Sendable () -> ClusterCounters)?
        if let redis = realtime?.io.adapter as? any ClusterCountersSource {
            clusterCounters = { redis.publishedCounters }
        }
        let collector = MetricsCollector(
            server: server, socketIO: realtime?.io, jwtFailures: jwtFailures,
            cluster: clusterCounters, factory: metricsFactory)
        let routes = OperatorRoutes(
            collector: collector, tokens: [metricsToken, realtime?.configuration.apiToken ?? apiToken],
            adapter: adapter.rawValue)
        server.operatorRoutes = { request, _ in routes.handle(request) }
        try server.start()
        var metricsServer: WebSocketServer?
        if let metricsPort {
            var mc = ServerConfiguration()
            mc.host = metricsHost
            mc.port = metricsPort
            mc.threads = 1
            mc.maxConnections = 64
            mc.deflate = PerMessageDeflateConfig(mode: .off)
            let endpoint = WebSocketServer(
                configuration: mc, application: MetricsEndpoint(collector: collector), logger: logger)
            try endpoint.start()
            print("chorus: metrics on \(endpoint.localAddress!)")
            metricsServer = endpoint
        }
        logger.info(
            "chorus started",
            metadata: [
                "app": "\(app.rawValue)", "threads": "\(config.threads)", "open-file-limit": "\(fileLimit)",
                "deflate": "\(deflate.rawValue)",
            ])
        print("chorus: listening on \(server.localAddress!)")
        fflush(nil)

        var signalNumber: Int32 = 0
        sigwait(&mask, &signalNumber)
        logger.info("shutting down", metadata: ["signal": "\(signalNumber)"])
        server.shutdown()
        metricsServer?.shutdown()
        (application as? SocketIOServer)?.adapter.stop()
        realtime?.shutdownProxies()
    }
}
