import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A `chorus serve` process for one test: `$CHORUS_BIN`, or `.build/debug/chorus` in the
/// repository. `start` returns once the server printed `chorus: listening on HOST:PORT`.
final class ChorusProcess: Sendable {
    let port: UInt16
    let child: ChildProcess

    static var binary: URL {
        if let path = ProcessInfo.processInfo.environment["CHORUS_BIN"], !path.isEmpty {
            return URL(fileURLWithPath: path)
        }
        return Repository.root.appendingPathComponent(".build/debug/chorus")
    }

    /// Starts `chorus serve --host 127.0.0.1 --port 0 --app APP` plus `arguments`.
    static func start(
        app: String = "echo", _ arguments: [String] = [], readyTimeout: Duration = .seconds(20)
    ) async throws -> ChorusProcess {
        try await start(
            arguments: ["serve", "--host", "127.0.0.1", "--port", "0", "--app", app] + arguments,
            readyTimeout: readyTimeout)
    }

    /// Starts the binary with exactly `arguments` (which must make it listen).
    static func start(arguments: [String], readyTimeout: Duration = .seconds(20)) async throws -> ChorusProcess {
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

    var pid: Int32 { child.pid }
    var isRunning: Bool { child.isRunning }
    /// What the server wrote to stderr so far (its log), for diagnostics.
    var stderr: String { child.stderr.text }
    var diagnostics: String { child.diagnostics }

    func terminate(signal: Int32 = SIGTERM) { child.send(signal: signal) }

    func waitForExit(timeout: Duration) async throws -> Int32 {
        try await child.waitForExit(timeout: timeout)
    }
}
