import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A failure of the end-to-end harness itself (missing binary, no ready line, time-out).
/// Its description is what the failing test shows, so it says what to do about it.
public struct HarnessError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Where the repository is: the working directory when it holds Package.swift (as under
/// `swift test`), otherwise derived from this file's path (Tests/ChorusTestSupport/).
public enum Repository {
    public static let root: URL = {
        let cwd = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        if FileManager.default.fileExists(atPath: cwd.appendingPathComponent("Package.swift").path) {
            return cwd
        }
        return URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }()
}

/// Output collected from one pipe by a dedicated thread (blocking read until EOF), so
/// nothing depends on run-loop callbacks and a chatty child never blocks on a full pipe.
public final class OutputCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    private var finished = false

    public init(fileDescriptor fd: Int32) {
        let thread = Thread { [self] in
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n > 0 {
                    lock.withLock { data.append(contentsOf: buffer[0..<n]) }
                } else if n < 0 && errno == EINTR {
                    continue
                } else {
                    break
                }
            }
            lock.withLock { finished = true }
        }
        thread.start()
    }

    public var text: String { lock.withLock { String(decoding: data, as: UTF8.self) } }
    public var isFinished: Bool { lock.withLock { finished } }
    public var lines: [String] { text.split(separator: "\n", omittingEmptySubsequences: true).map(String.init) }
}

/// A child process with captured stdout and stderr, waited on without blocking the test's
/// thread for long. Killed (SIGKILL) when released while still running, so a failing test
/// never leaves a server behind.
public final class ChildProcess: @unchecked Sendable {
    public let name: String
    private let process: Process
    public let stdout: OutputCollector
    public let stderr: OutputCollector

    /// util-linux's setpriv, to start children with PR_SET_PDEATHSIG (nil if absent).
    static let setpriv = ["/usr/bin/setpriv", "/bin/setpriv"].first { FileManager.default.isExecutableFile(atPath: $0) }

    public init(executable: URL, arguments: [String], environment: [String: String]? = nil) throws {
        name = executable.lastPathComponent
        process = Process()
        if let setpriv = Self.setpriv {
            // The child gets SIGKILL when the test runner dies, even of a crash: no server is left
            // behind. setpriv sets the signal and execs the program (same pid).
            process.executableURL = URL(fileURLWithPath: setpriv)
            process.arguments = ["--pdeathsig", "KILL", "--", executable.path] + arguments
        } else {
            process.executableURL = executable
            process.arguments = arguments
        }
        process.currentDirectoryURL = Repository.root
        if let environment { process.environment = environment }
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        // The test's threads (libdispatch workers) block most signals, and a spawned child
        // inherits the spawning thread's mask: chorus would then never see SIGTERM/SIGINT.
        // Spawn with nothing blocked, as from a shell, and restore the thread's mask after.
        // Spawned from the one spawner thread: the parent-death signal fires when the *thread*
        // that started the child exits, and the cooperative pool retires idle threads.
        let process = self.process
        let failure: (any Error)? = SpawnerThread.shared.run {
            var empty = sigset_t()
            var saved = sigset_t()
            sigemptyset(&empty)
            pthread_sigmask(SIG_SETMASK, &empty, &saved)
            defer { pthread_sigmask(SIG_SETMASK, &saved, nil) }
            do {
                try process.run()
                return nil
            } catch {
                return error
            }
        }
        if let failure { throw HarnessError("could not start \(executable.path): \(failure)") }
        // The parent must not hold the write ends, or the readers never see EOF.
        try? out.fileHandleForWriting.close()
        try? err.fileHandleForWriting.close()
        stdout = OutputCollector(fileDescriptor: out.fileHandleForReading.fileDescriptor)
        stderr = OutputCollector(fileDescriptor: err.fileHandleForReading.fileDescriptor)
    }

    deinit { kill() }

    public var pid: Int32 { process.processIdentifier }
    public var isRunning: Bool { process.isRunning }

    /// SIGKILL if still running, then waits for it to be gone.
    public func kill() {
        if process.isRunning {
            Glibc.kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    public func send(signal: Int32) {
        if process.isRunning { Glibc.kill(process.processIdentifier, signal) }
    }

    /// The first stdout line satisfying `matches`, waiting up to `timeout`.
    public func waitForLine(timeout: Duration, where matches: (String) -> Bool) async throws -> String {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while true {
            if let line = stdout.lines.first(where: matches) { return line }
            if !process.isRunning {
                // One more look: the line may have arrived together with the exit.
                try await Task.sleep(for: .milliseconds(50))
                if let line = stdout.lines.first(where: matches) { return line }
                throw HarnessError("\(name) exited (\(exitStatus)) before printing the expected line\n\(diagnostics)")
            }
            if clock.now >= deadline {
                throw HarnessError("\(name) printed no expected line within \(timeout)\n\(diagnostics)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Waits for the process to exit; its exit code, or 128 + signal if a signal ended it.
    /// Throws if it is still running after `timeout` (the process is left running).
    public func waitForExit(timeout: Duration) async throws -> Int32 {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while process.isRunning {
            if clock.now >= deadline {
                throw HarnessError("\(name) (pid \(pid)) still running after \(timeout)\n\(diagnostics)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        // Let the readers drain what the child wrote just before exiting.
        let drainDeadline = clock.now + .seconds(2)
        while !(stdout.isFinished && stderr.isFinished) && clock.now < drainDeadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        return exitStatus
    }

    private var exitStatus: Int32 {
        guard !process.isRunning else { return -1 }
        switch process.terminationReason {
        case .exit: return process.terminationStatus
        case .uncaughtSignal: return 128 + process.terminationStatus
        @unknown default: return process.terminationStatus
        }
    }

    /// The captured output, for failure messages.
    public var diagnostics: String {
        func tail(_ s: String) -> String {
            let lines = s.split(separator: "\n", omittingEmptySubsequences: false)
            return lines.suffix(40).joined(separator: "\n")
        }
        return "--- \(name) stdout ---\n\(tail(stdout.text))\n--- \(name) stderr ---\n\(tail(stderr.text))"
    }
}

/// A thread that lives as long as the test process and starts every child process, so that
/// PR_SET_PDEATHSIG (set by setpriv in the child) fires only when the whole runner dies.
final class SpawnerThread: @unchecked Sendable {
    static let shared = SpawnerThread()
    private let callers = NSLock()
    private let condition = NSCondition()
    private var job: (() -> (any Error)?)?
    private var result: (any Error)??

    private init() {
        let thread = Thread { [unowned self] in self.serve() }
        thread.name = "child-spawner"
        thread.start()
    }

    private func serve() {
        while true {
            condition.lock()
            while job == nil { condition.wait() }
            let work = job!
            job = nil
            condition.unlock()
            let outcome = work()
            condition.lock()
            result = .some(outcome)
            condition.broadcast()
            condition.unlock()
        }
    }

    /// Runs `work` on the spawner thread and returns its result; one caller at a time (the
    /// `callers` lock is held for the whole hand-off, so no caller can take another's result).
    func run(_ work: @escaping () -> (any Error)?) -> (any Error)? {
        callers.lock()
        defer { callers.unlock() }
        condition.lock()
        defer { condition.unlock() }
        job = work
        condition.broadcast()
        while result == nil { condition.wait() }
        let outcome = result!
        result = nil
        return outcome
    }
}
