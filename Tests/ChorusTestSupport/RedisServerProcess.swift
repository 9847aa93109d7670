import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A `redis-server` for one test, on a free loopback port, without persistence, started by this
/// process and stopped by its PID (never by name). `restart` starts a new server on the same
/// port (and socket), to test reconnection; `pause`/`resume` SIGSTOP/SIGCONT it, to test time-outs.
/// Killed when released.
public final class RedisServerProcess: @unchecked Sendable {
    public let port: UInt16
    /// The Unix socket it also listens on, when asked for one.
    public let unixSocket: String?
    public let extraArguments: [String]
    private let lock = NSLock()
    private var current: ChildProcess?

    public static var binary: URL {
        for path in ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
        where FileManager.default.isExecutableFile(atPath: path) {
            return URL(fileURLWithPath: path)
        }
        return URL(fileURLWithPath: "/usr/bin/redis-server")
    }

    /// Starts it and waits until it accepts connections. `arguments` are extra options, e.g.
    /// `["--requirepass", "secret"]`.
    public static func start(_ arguments: [String] = [], unixSocket: Bool = false, port: UInt16? = nil) async throws
        -> RedisServerProcess
    {
        let chosen = try port ?? freeLoopbackPort()
        let socket = unixSocket ? "/tmp/chorus-redis-test-\(getpid())-\(chosen).sock" : nil
        let server = RedisServerProcess(port: chosen, unixSocket: socket, extraArguments: arguments)
        try await server.launch()
        return server
    }

    /// A port that nothing listens on: bound to port 0, read back, released.
    public static func freeLoopbackPort() throws -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("socket() failed: \(errno)") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else { throw HarnessError("bind() failed: \(errno)") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return UInt16(bigEndian: address.sin_port)
    }

    private init(port: UInt16, unixSocket: String?, extraArguments: [String]) {
        self.port = port
        self.unixSocket = unixSocket
        self.extraArguments = extraArguments
    }

    deinit {
        current?.kill()
        if let unixSocket { unlink(unixSocket) }
    }

    public var url: String { "redis://127.0.0.1:\(port)" }
    public var pid: Int32? { lock.withLock { current?.pid } }
    public var isRunning: Bool { lock.withLock { current?.isRunning ?? false } }
    public var diagnostics: String { lock.withLock { current?.diagnostics ?? "(redis-server not running)" } }

    private func launch() async throws {
        guard FileManager.default.isExecutableFile(atPath: Self.binary.path) else {
            throw HarnessError("redis-server not found: install it with scripts/setup.sh (Debian package redis-server)")
        }
        var arguments = [
            "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--daemonize", "no", "--protected-mode", "no", "--loglevel", "notice",
        ]
        if let unixSocket { arguments += ["--unixsocket", unixSocket, "--unixsocketperm", "700"] }
        arguments += extraArguments
        let child = try ChildProcess(executable: Self.binary, arguments: arguments)
        lock.withLock { current = child }
        _ = try await child.waitForLine(timeout: .seconds(20)) { $0.contains("Ready to accept connections") }
    }

    /// SIGKILL, as a crash would (no goodbye to clients), and wait until it is gone.
    public func kill() {
        let child = lock.withLock { () -> ChildProcess? in
            let c = current
            current = nil
            return c
        }
        child?.kill()
        if let unixSocket { unlink(unixSocket) }
    }

    /// A new server on the same port (and socket), after `kill`.
    public func restart() async throws {
        kill()
        try await launch()
    }

    /// SIGSTOP: the server keeps its connections but answers nothing.
    public func pause() { lock.withLock { current?.send(signal: SIGSTOP) } }

    /// SIGCONT after `pause`.
    public func resume() { lock.withLock { current?.send(signal: SIGCONT) } }
}
