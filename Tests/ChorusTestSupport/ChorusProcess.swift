import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A `chorus serve` process for one test: `$CHORUS_BIN`, or `.build/debug/chorus` in the
/// repository. `start` returns once the server printed `chorus: listening on HOST:PORT`.
public final class ChorusProcess: Sendable {
    public let port: UInt16
    public let child: ChildProcess

    public static var binary: URL {
        if let path = ProcessInfo.processInfo.environment["CHORUS_BIN"], !path.isEmpty {
            return URL(fileURLWithPath: path)
        }
        return Repository.root.appendingPathComponent(".build/debug/chorus")
    }

    /// Starts `chorus serve --host 127.0.0.1 --port 0 --app APP` plus `arguments`.
    public static func start(
        app: String = "echo", _ arguments: [String] = [], readyTimeout: Duration = .seconds(20)
    ) async throws -> ChorusProcess {
        try await start(
            arguments: ["serve", "--host", "127.0.0.1", "--port", "0", "--app", app] + arguments,
            readyTimeout: readyTimeout)
    }

    /// Starts the binary with exactly `arguments` (which must make it listen).
    public static func start(arguments: [String], readyTimeout: Duration = .seconds(20)) async throws -> ChorusProcess {
        let binary = Self.binary
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            throw HarnessError(
                "chorus binary not found at \(binary.path): run `swift build` (or scripts/test.sh), or set CHORUS_BIN")
        }
        let child = try ChildProcess(executable: binary, arguments: arguments)
        let line = try await child.waitForLine(timeout: readyTimeout) { $0.hasPrefix("chorus: listening on ") }
        guard let colon = line.lastIndex(of: ":"),
            let port = UInt16(line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)),
            port != 0
        else {
            throw HarnessError("unexpected ready line \(line.debugDescription)\n\(child.diagnostics)")
        }
        return ChorusProcess(port: port, child: child)
    }

    private init(port: UInt16, child: ChildProcess) {
        self.port = port
        self.child = child
    }

    public var pid: Int32 { child.pid }
    public var isRunning: Bool { child.isRunning }
    /// What the server wrote to stderr so far (its log), for diagnostics.
    public var stderr: String { child.stderr.text }
    public var diagnostics: String { child.diagnostics }
    /// The Socket.IO / HTTP base URL, `http://127.0.0.1:PORT`.
    public var url: String { "http://127.0.0.1:\(port)" }

    public func terminate(signal: Int32 = SIGTERM) { child.send(signal: signal) }

    /// SIGKILL and wait (what releasing the last reference does too).
    public func kill() { child.kill() }

    public func waitForExit(timeout: Duration) async throws -> Int32 {
        try await child.waitForExit(timeout: timeout)
    }
}
