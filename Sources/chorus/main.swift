import ArgumentParser
import ChorusApp
import ChorusLoop
import ChorusServer
import ChorusWebSocket
import Logging
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

extension AuthMode: ExpressibleByArgument {}
extension AuthorizationMode: ExpressibleByArgument {}

extension BackpressurePolicy: ExpressibleByArgument {}
extension DeflateMode: ExpressibleByArgument {}

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the server.")

    @Option(help: "Address to listen on.") var host = "0.0.0.0"
    @Option(help: "TCP port (0 picks a free one).") var port = 3001
    @Option(help: "Application: realtime (the Socket.IO chat + project gateway), echo (every message back to its sender) or broadcast (every message to everyone).")
    var app = AppName.realtime
    @Option(help: "Event loops, one thread each (default: the number of cores).") var threads: Int?
    @Option(help: "Largest message in bytes after reassembly and inflation; larger ones are closed with 1009.")
    var maxMessageSize = 16 * 1024 * 1024
    @Option(help: "Largest HTTP request head in bytes; larger ones get 431.") var maxHeaderSize = 8 * 1024
    @Option(help: "Seconds a client has to send its HTTP request (0: no limit).") var handshakeTimeout = 10.0
    @Option(help: "Seconds without traffic before a connection is closed with 1001 (0: never).") var idleTimeout = 120.0
    @Option(help: "Seconds of silence before the server pings a client (0: never).") var pingInterval = 30.0
    @Option(help: "Memory one connection's queue may keep alive (the frame buffers it points into, + 64 per entry) before the backpressure policy applies.") var maxBackpressure = 1024 * 1024
    @Option(help: "What to do with a connection over --max-backpressure: drop (skip messages) or close (1008).")
    var backpressurePolicy = BackpressurePolicy.drop
    @Option(help: "Open connections at most (0: limited only by file descriptors); beyond, HTTP 503.") var maxConnections = 0
    @Option(help: "Open connections per client IP at most (0: unlimited); beyond, HTTP 503.") var maxConnectionsPerIp = 0
    @Option(help: "Listen backlog.") var backlog: Int32 = 1024
    @Option(help: "A Sec-WebSocket-Protocol the server accepts (repeatable).") var subprotocol: [String] = []
    @Option(help: "permessage-deflate: off, shared (compress each broadcast once), dedicated (per-connection context for direct messages).")
    var deflate = DeflateMode.shared
    @Option(help: "Payloads smaller than this many bytes are sent uncompressed.") var deflateThreshold = 64
    @Option(help: "Largest LZ77 window the server compresses with (9-15).") var deflateWindowBits = 15
    @Option(help: "zlib memLevel for compression (1-9): lower uses less memory per stream.") var deflateMemLevel = 8
    @Option(help: "Seconds a graceful shutdown waits for clients to close.") var shutdownDrain = 5.0
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.") var logLevel = "info"

    // --app realtime (Socket.IO)
    @Option(help: "Engine.IO endpoint path (realtime).") var socketioPath = "/socket.io/"
    @Option(help: "Milliseconds between Engine.IO pings (realtime).") var sioPingInterval = 25_000
    @Option(help: "Milliseconds a client has to answer a ping before it is disconnected (realtime).") var sioPingTimeout = 20_000
    @Option(help: "Largest Socket.IO message in bytes (Engine.IO maxPayload); larger closes the connection with 1009 (realtime).")
    var maxPayload = 1_000_000
    @Option(help: "Seconds a client has to connect to a namespace after the handshake (realtime).") var connectTimeout = 45.0
    @Option(help: "Authentication: jwt, or none (development: trusts the userId query parameter).") var auth = AuthMode.jwt
    @Option(help: "Authorization of room joins: claims (token's projects/conversations arrays) or open (default: claims with --auth jwt, open with --auth none).")
    var authz: AuthorizationMode?
    @Option(help: "HS256 secret.") var jwtSecret: String?
    @Option(help: "File holding the HS256 secret (trailing newline stripped).") var jwtSecretFile: String?
    @Option(help: "PEM public key file for RS256 (RSA) or ES256 (P-256).") var jwtPublicKeyFile: String?
    @Option(help: "Required iss claim.") var jwtIssuer: String?
    @Option(help: "Required aud claim.") var jwtAudience: String?
    @Option(help: "Seconds of clock skew tolerated for exp/nbf.") var jwtLeeway = 0.0
    @Option(help: "Bearer token of the HTTP emit API (/api/v1/...); without it the API answers 401.") var apiToken: String?
    @Option(help: "File holding the emit API token.") var apiTokenFile: String?
    @Option(help: "Longest chat message content in characters (realtime).") var maxContentLength = 10_000

    // Backend proxies (realtime): the product's backend decides, Chorus fans out.
    @Option(help: "URL the backend stores each message:send at before it is broadcast (POST JSON; realtime).") var proxyMessage: String?
    @Option(help: "URL the backend decides each join:project / join:conversation at, instead of --authz (realtime).") var proxyJoin: String?
    @Option(help: "URL the backend decides each CONNECT at: alone with --auth none, after the JWT with --auth jwt (realtime).") var proxyConnect: String?
    @Option(help: "Bearer token the proxies send to the backend.") var proxyToken: String?
    @Option(help: "File holding the proxies' bearer token.") var proxyTokenFile: String?
    @Option(help: "Seconds a proxy call has before it fails as unavailable.") var proxyTimeout = 3.0
    @Option(help: "Proxy calls in flight per endpoint at most; beyond, refused as unavailable at once.") var proxyMaxInFlight = 1000
    @Option(help: "Kept-alive connections to the backend per host at most.") var proxyConnections = 8
    @Option(help: "message:send calls one socket may have waiting for the backend; beyond, refused as unavailable.") var proxyMaxPerSocket = 32
    @Option(help: "Seconds a join decision (allowed/forbidden) is reused for the same user and room (0: ask every time).") var proxyJoinCache = 0.0
    @Option(help: "Join decisions cached at most.") var proxyJoinCacheSize = 100_000
    @Option(help: "Comma-separated request headers forwarded to the connect proxy (empty: none).")
    var proxyConnectHeaders = "authorization,cookie,origin,user-agent"

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0...65535") }
        guard (9...15).contains(deflateWindowBits) else { throw ValidationError("--deflate-window-bits must be 9...15") }
        guard (1...9).contains(deflateMemLevel) else { throw ValidationError("--deflate-mem-level must be 1...9") }
        guard maxMessageSize > 0, maxHeaderSize >= 256 else { throw ValidationError("message and header limits must be positive (header >= 256)") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level \(logLevel)") }
        if let threads, threads < 1 || threads > 256 { throw ValidationError("--threads must be 1...256") }
        if app == .realtime {
            guard sioPingInterval > 0, sioPingTimeout > 0 else { throw ValidationError("--sio-ping-interval and --sio-ping-timeout must be positive") }
            guard maxPayload > 0, maxContentLength > 0 else { throw ValidationError("--max-payload and --max-content-length must be positive") }
            for (flag, url) in [("--proxy-message", proxyMessage), ("--proxy-join", proxyJoin), ("--proxy-connect", proxyConnect)] {
                if let url, !(url.hasPrefix("http://") || url.hasPrefix("https://")) {
                    throw ValidationError("\(flag) must be an http:// or https:// URL")
                }
            }
            guard proxyTimeout > 0 else { throw ValidationError("--proxy-timeout must be positive") }
            guard proxyMaxInFlight >= 1, proxyConnections >= 1, proxyMaxPerSocket >= 1, proxyJoinCacheSize >= 1 else {
                throw ValidationError("--proxy-max-in-flight, --proxy-connections, --proxy-max-per-socket and --proxy-join-cache-size must be at least 1")
            }
            guard proxyJoinCache >= 0 else { throw ValidationError("--proxy-join-cache must not be negative") }
            guard proxyToken == nil || proxyTokenFile == nil else { throw ValidationError("give --proxy-token or --proxy-token-file, not both") }
            if auth == .jwt {
                let keys = [jwtSecret, jwtSecretFile, jwtPublicKeyFile].compactMap { $0 }.count
                guard keys == 1 else {
                    throw ValidationError("--auth jwt needs exactly one of --jwt-secret, --jwt-secret-file, --jwt-public-key-file")
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

    func run() throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "chorus")

        var config = ServerConfiguration()
        config.host = host
        config.port = port
        config.threads = threads ?? Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        config.maxMessageSize = maxMessageSize
        config.maxHeaderSize = maxHeaderSize
        config.handshakeTimeout = handshakeTimeout
        config.idleTimeout = idleTimeout
        config.pingInterval = pingInterval
        config.maxBackpressure = maxBackpressure
        config.backpressurePolicy = backpressurePolicy
        config.maxConnections = maxConnections
        config.maxConnectionsPerIP = maxConnectionsPerIp
        config.backlog = backlog
        config.subprotocols = subprotocol
        config.deflate = PerMessageDeflateConfig(
            mode: deflate, serverMaxWindowBits: deflateWindowBits, memLevel: deflateMemLevel, threshold: deflateThreshold)
        config.shutdownDrain = shutdownDrain

        let application: any ServerApplication
        var realtimeApp: RealtimeApplication?
        switch app {
        case .echo: application = EchoApplication()
        case .broadcast: application = BroadcastApplication()
        case .realtime:
            var rc = RealtimeConfiguration()
            rc.socketIO.path = socketioPath
            rc.socketIO.pingInterval = Double(sioPingInterval) / 1000
            rc.socketIO.pingTimeout = Double(sioPingTimeout) / 1000
            rc.socketIO.maxPayload = maxPayload
            rc.socketIO.connectTimeout = connectTimeout
            rc.auth = auth
            // Claims by default whenever someone vouches for the user (the token or the connect proxy).
            rc.authorization = authz ?? (auth == .jwt || proxyConnect != nil ? .claims : .open)
            rc.maxContentLength = maxContentLength
            rc.apiToken = try apiToken ?? apiTokenFile.map { try Self.readSecret($0) }
            if auth == .jwt {
                let key: JWTVerifier.Key
                if let file = jwtPublicKeyFile {
                    key = try JWTVerifier.publicKey(pem: try Self.readSecret(file))
                } else {
                    key = .hs256(Array((try jwtSecret ?? Self.readSecret(jwtSecretFile!)).utf8))
                }
                rc.jwt = JWTVerifier(key: key, issuer: jwtIssuer, audience: jwtAudience, leeway: jwtLeeway)
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
            let realtime = RealtimeApplication(configuration: rc, logger: logger)
            realtimeApp = realtime
            application = realtime.serverApplication
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
        try server.start()
        logger.info("chorus started", metadata: [
            "app": "\(app.rawValue)", "threads": "\(config.threads)", "open-file-limit": "\(fileLimit)",
            "deflate": "\(deflate.rawValue)",
        ])
        print("chorus: listening on \(server.localAddress!)")
        fflush(nil)

        var signalNumber: Int32 = 0
        sigwait(&mask, &signalNumber)
        logger.info("shutting down", metadata: ["signal": "\(signalNumber)"])
        server.shutdown()
        realtimeApp?.shutdownProxies()
    }
}
