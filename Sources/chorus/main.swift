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
    case echo, broadcast
}

extension BackpressurePolicy: ExpressibleByArgument {}
extension DeflateMode: ExpressibleByArgument {}

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the server.")

    @Option(help: "Address to listen on.") var host = "0.0.0.0"
    @Option(help: "TCP port (0 picks a free one).") var port = 3001
    @Option(help: "Application: echo (every message back to its sender) or broadcast (every message to everyone).")
    var app = AppName.broadcast
    @Option(help: "Event loops, one thread each (default: the number of cores).") var threads: Int?
    @Option(help: "Largest message in bytes after reassembly and inflation; larger ones are closed with 1009.")
    var maxMessageSize = 16 * 1024 * 1024
    @Option(help: "Largest HTTP request head in bytes; larger ones get 431.") var maxHeaderSize = 8 * 1024
    @Option(help: "Seconds a client has to send its HTTP request (0: no limit).") var handshakeTimeout = 10.0
    @Option(help: "Seconds without traffic before a connection is closed with 1001 (0: never).") var idleTimeout = 120.0
    @Option(help: "Seconds of silence before the server pings a client (0: never).") var pingInterval = 30.0
    @Option(help: "Bytes queued for one connection before the backpressure policy applies.") var maxBackpressure = 1024 * 1024
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

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0...65535") }
        guard (9...15).contains(deflateWindowBits) else { throw ValidationError("--deflate-window-bits must be 9...15") }
        guard (1...9).contains(deflateMemLevel) else { throw ValidationError("--deflate-mem-level must be 1...9") }
        guard maxMessageSize > 0, maxHeaderSize >= 256 else { throw ValidationError("message and header limits must be positive (header >= 256)") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level \(logLevel)") }
        if let threads, threads < 1 || threads > 256 { throw ValidationError("--threads must be 1...256") }
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
        switch app {
        case .echo: application = EchoApplication()
        case .broadcast: application = BroadcastApplication()
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
    }
}
