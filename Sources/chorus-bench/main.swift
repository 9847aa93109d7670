// chorus-bench: a WebSocket load generator for fan-out (broadcast) servers, built on ChorusLoop.
import ArgumentParser
import ChorusBenchCore

#if canImport(Glibc)
import Glibc
#endif

struct ChorusBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chorus-bench",
        abstract: "Load generator for WebSocket and Socket.IO broadcast servers (loopback only).",
        subcommands: [Fanout.self, SocketIO.self, Connect.self])
}

func parseURL(_ s: String) throws -> WebSocketURL {
    guard let u = WebSocketURL(s) else { throw ValidationError("--url must look like ws://127.0.0.1:PORT/") }
    return u
}

/// Unbuffered, so a line that ends in no newline shows at once.
func writeToStandardOutput(_ text: String) {
    var text = text
    text.withUTF8 { bytes in
        var offset = 0
        while offset < bytes.count {
            let n = write(STDOUT_FILENO, bytes.baseAddress! + offset, bytes.count - offset)
            if n <= 0 { if n < 0 && errno == EINTR { continue }; return }
            offset += n
        }
    }
}

func parseSources(_ s: String?) -> [String] {
    (s ?? "").split(separator: ",").map { String($0).trimmingSpaces }.filter { !$0.isEmpty }
}

extension String {
    var trimmingSpaces: String { String(self.drop { $0 == " " }.reversed().drop { $0 == " " }.reversed()) }
}

/// How the generator's clients connect and report: shared by every subcommand.
struct ClientOptions: ParsableArguments {
    @Option(help: "Event-loop threads in the generator.") var threads: Int = 1
    @Flag(help: "Offer permessage-deflate (no context takeover).") var deflate = false
    @Flag(help: "Print one JSON object line after the table.") var json = false
    @Option(
        help:
            "Comma-separated local source addresses (127.0.0.1,127.0.0.2,...) to spread connections over (about 28k each)."
    ) var sourceAddresses: String?
}

/// The load options `fanout` and `socketio` share.
struct LoadOptions: ParsableArguments {
    @OptionGroup var client: ClientOptions
    @Option(help: "Receiver connections (only these count as deliveries).") var receivers: Int = 1000
    @Option(help: "Publisher connections (they also receive, uncounted).") var publishers: Int = 1
    @Option(help: "Payload bytes per message (socketio: bytes of the message content).") var size: Int = 64
    @Option(help: "Open loop: messages per second, all publishers together.") var rate: Double?
    @Option(help: "Closed loop: messages in flight per publisher (a message leaves flight when every receiver got it).")
    var window: Int?
    @Option(help: "Measured seconds.") var duration: Double = 10
    @Option(help: "Seconds of load before measuring.") var warmup: Double = 2
    @Option(
        help:
            "After the measured window, stop waiting for in-flight messages once none arrived for this long (60 s cap)."
    ) var drain: Double = 3
    @Option(help: "New connections per second while connecting.") var connectRate: Double = 5000
    @Option(help: "Seconds allowed for connecting everyone.") var connectTimeout: Double = 120
    @Option(help: "PID of the server, to read its CPU time from /proc.") var serverPid: Int32?
    @Option(help: "Messages per publisher at most (0: no limit; rates are still per --duration).") var messages: Int = 0
    @Option(help: "Exit non-zero when more than this fraction of deliveries is missed.") var maxMissed: Double = 0.001
    @Option(help: "Exit non-zero when errors (protocol, connect, handshake, closes) exceed this.") var maxErrors: Int =
        0
    @Option(
        help:
            "Another server to spread connections over (repeatable): the nodes of one cluster; connection i goes to server i mod N."
    )
    var alsoUrl: [String] = []

    func validate(minimumSize: Int) throws {
        if (rate == nil) == (window == nil) { throw ValidationError("give exactly one of --rate or --window") }
        if let w = window, w < 1 { throw ValidationError("--window must be at least 1") }
        if let r = rate, r <= 0 { throw ValidationError("--rate must be positive") }
        if size < minimumSize { throw ValidationError("--size must be at least \(minimumSize)") }
        if receivers < 1 || publishers < 1 { throw ValidationError("need at least one receiver and one publisher") }
        if publishers > 99_999 { throw ValidationError("at most 99999 publishers") }
        if duration <= 0 || duration > 3600 || warmup < 0 || warmup > 600 {
            throw ValidationError("duration in (0, 3600], warmup in [0, 600]")
        }
        if client.threads < 1 || client.threads > 64 { throw ValidationError("--threads in 1...64") }
        for u in alsoUrl where WebSocketURL(u) == nil {
            throw ValidationError("--also-url must look like ws://127.0.0.1:PORT/: \(u)")
        }
    }

    func plan(url: WebSocketURL, binary: Bool = false, socketIO: SocketIOPlan? = nil) -> LoadPlan {
        var plan = LoadPlan(
            url: url, receivers: receivers, publishers: publishers, size: size, rate: rate ?? 0,
            window: window ?? 0, duration: duration, warmup: warmup, drain: drain, threads: client.threads,
            deflate: client.deflate, binary: binary, sourceAddresses: parseSources(client.sourceAddresses),
            connectRate: connectRate,
            connectTimeout: connectTimeout, messages: messages, socketIO: socketIO)
        plan.alsoURLs = alsoUrl.compactMap { WebSocketURL($0) }
        return plan
    }

    func run(_ plan: LoadPlan) throws {
        // A terminal sees one line rewritten once a second; --json output and pipes get none.
        let progress = !client.json && isatty(STDOUT_FILENO) != 0 ? ProgressReporter(write: writeToStandardOutput) : nil
        let result = try FanoutRunner.run(plan, serverPID: serverPid, quiet: client.json, progress: progress)
        print(result.table())
        if client.json { print(result.json()) }
        if result.errors > maxErrors || result.missedRatio > maxMissed || result.stats.receivedInWindow == 0 {
            throw ExitCode(2)
        }
    }
}

struct Fanout: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "N receivers and P publishers; every message a publisher sends must reach every receiver.")

    @Option(help: "Server URL, ws://HOST:PORT/PATH") var url: String
    @OptionGroup var load: LoadOptions
    @Flag(help: "Send binary frames instead of text.") var binary = false

    func validate() throws {
        _ = try parseURL(url)
        try load.validate(minimumSize: Payload.minimumSupportedSize)
    }

    func run() throws {
        try load.run(load.plan(url: try parseURL(url), binary: binary))
    }
}

struct SocketIO: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "socketio",
        abstract:
            "Fan-out through a Socket.IO room: N receivers and P publishers join a conversation; publishers send message:send, everyone gets message:new.",
        discussion: """
            Speaks Engine.IO v4 / Socket.IO v5 over WebSocket to `chorus serve --app realtime --auth none` \
            (each connection is user u<N> via the userId query parameter). Each connection connects to the \
            main namespace and joins the conversation (with an ack) before the load starts; Engine.IO pings \
            are answered. The message content is the benchmark payload (t=<ns>;s=<seq>;p=<publisher>;<prose>, \
            exactly --size bytes). Same figures as `fanout`.
            """)

    @Option(help: "Server URL, ws://HOST:PORT[/ENGINE.IO PATH] (the path defaults to /socket.io/).") var url: String
    @OptionGroup var load: LoadOptions
    @Option(help: "The conversation id every connection joins.") var conversation = "bench"

    func validate() throws {
        _ = try parseURL(url)
        try load.validate(minimumSize: ContentPayload.minimumSupportedSize)
        guard SocketIOPlan.isPlainID(conversation) else {
            throw ValidationError("--conversation: 1-64 characters of A-Z a-z 0-9 - _ : .")
        }
    }

    func run() throws {
        let u = try parseURL(url)
        let sio = SocketIOPlan(path: u.path == "/" ? "/socket.io/" : u.path, conversation: conversation)
        try load.run(load.plan(url: u, socketIO: sio))
    }
}

struct Connect: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Open and hold N idle WebSocket connections.")

    @Option(help: "Server URL, ws://HOST:PORT/PATH") var url: String
    @Option(help: "Connections to open.") var connections: Int = 1000
    @Option(help: "New connections per second.") var rate: Double = 2000
    @Option(help: "Seconds to hold them open once all are up.") var hold: Double = 5
    @OptionGroup var client: ClientOptions
    @Option(help: "Seconds allowed for connecting everyone.") var timeout: Double = 120
    @Option(help: "PID of the server, to read its RSS from /proc.") var serverPid: Int32?
    @Option(help: "Exit non-zero when more connections than this fail.") var maxFailures: Int = 0

    func validate() throws {
        _ = try parseURL(url)
        if connections < 1 || rate <= 0 || hold < 0 || hold > 3600 {
            throw ValidationError("bad --connections/--rate/--hold")
        }
    }

    func run() throws {
        let result = try ConnectRunner.run(
            url: try parseURL(url), connections: connections, rate: rate, hold: hold, threads: client.threads,
            sourceAddresses: parseSources(client.sourceAddresses), deflate: client.deflate, timeout: timeout,
            serverPID: serverPid, quiet: client.json)
        print(result.table())
        if client.json { print(result.json()) }
        if result.failures > maxFailures || result.closedDuringHold > maxFailures { throw ExitCode(2) }
    }
}

ChorusBench.main()
