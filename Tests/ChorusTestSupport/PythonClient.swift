import Foundation
import Synchronization

/// Runs the Python test clients in Tests/clients/ with the test venv's interpreter
/// (`$CHORUS_PYTHON`, or `.venv-test/bin/python`, both made by scripts/setup.sh).
/// A missing interpreter or client module fails the test with a message: never a skip.
public enum PythonClient {
    public struct Result: Sendable, CustomStringConvertible {
        public let exitCode: Int32
        public let stdout: String
        public let stderr: String

        public init(exitCode: Int32, stdout: String, stderr: String) {
            self.exitCode = exitCode
            self.stdout = stdout
            self.stderr = stderr
        }

        /// The client's result line: the last stdout line that is a JSON object.
        public var json: [String: Any]? {
            for line in stdout.split(separator: "\n").reversed() where line.hasPrefix("{") {
                if let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] {
                    return object
                }
            }
            return nil
        }

        public var ok: Bool { exitCode == 0 && (json?["ok"] as? Bool) == true }

        public var description: String {
            "exit \(exitCode)\n--- stdout ---\n\(stdout)\n--- stderr ---\n\(stderr.suffix(4000))"
        }
    }

    /// What the WebSocket clients (echo.py, broadcast.py, ...) import.
    public static let websockets = "websockets.asyncio.client"
    /// What the Socket.IO clients (sio_scenarios.py, python-socketio + websocket-client) import.
    public static let socketIO = "socketio, websocket"

    public static var interpreter: URL {
        if let path = ProcessInfo.processInfo.environment["CHORUS_PYTHON"], !path.isEmpty {
            return URL(fileURLWithPath: path)
        }
        return Repository.root.appendingPathComponent(".venv-test/bin/python")
    }

    public static func scriptURL(_ script: String) -> URL {
        Repository.root.appendingPathComponent("Tests/clients").appendingPathComponent(script)
    }

    /// Checked once per module list and test process: the interpreter runs and imports `modules`.
    private static let readiness = Mutex<[String: Swift.Result<URL, HarnessError>]>([:])

    private static func ready(importing modules: String) throws -> URL {
        try readiness.withLock { cache in
            if let known = cache[modules] { return known }
            let result = check(importing: modules)
            cache[modules] = result
            return result
        }.get()
    }

    private static func check(importing modules: String) -> Swift.Result<URL, HarnessError> {
        let python = interpreter
        guard FileManager.default.isExecutableFile(atPath: python.path) else {
            return .failure(
                HarnessError(
                    "Python interpreter not found at \(python.path): run scripts/setup.sh (or set CHORUS_PYTHON)"))
        }
        let process = Process()
        process.executableURL = python
        process.arguments = ["-c", "import \(modules)"]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch {
            return .failure(HarnessError("cannot run \(python.path): \(error)"))
        }
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            return .failure(HarnessError("\(python.path) cannot import \(modules): run scripts/setup.sh"))
        }
        return .success(python)
    }

    /// Starts the interpreter with `arguments` (unbuffered) and returns at once.
    public static func start(arguments: [String], requiring modules: String = websockets) throws -> ChildProcess {
        let python = try ready(importing: modules)
        var environment = ProcessInfo.processInfo.environment
        environment["PYTHONUNBUFFERED"] = "1"
        environment["PYTHONDONTWRITEBYTECODE"] = "1"
        return try ChildProcess(executable: python, arguments: ["-u"] + arguments, environment: environment)
    }

    /// Starts `Tests/clients/<script>` and returns at once (for clients a test talks to while
    /// they run, such as shutdown_watch.py).
    public static func start(_ script: String, args: [String], requiring modules: String = websockets) throws
        -> ChildProcess
    {
        let path = scriptURL(script)
        guard FileManager.default.fileExists(atPath: path.path) else {
            throw HarnessError("no such test client: \(path.path)")
        }
        return try start(arguments: [path.path] + args, requiring: modules)
    }

    /// Runs `Tests/clients/<script>` to completion (killed after `timeout`).
    public static func run(
        _ script: String, args: [String], requiring modules: String = websockets, timeout: Duration = .seconds(60)
    ) async throws -> Result {
        try await finish(
            start(script, args: args, requiring: modules),
            what: "\(script) \(args.joined(separator: " "))", timeout: timeout)
    }

    /// Runs `python -c code args...` to completion (killed after `timeout`).
    public static func run(
        code: String, args: [String], requiring modules: String = websockets, timeout: Duration = .seconds(60)
    ) async throws -> Result {
        try await finish(
            start(arguments: ["-c", code] + args, requiring: modules),
            what: "python -c … \(args.joined(separator: " "))", timeout: timeout)
    }

    private static func finish(_ child: ChildProcess, what: String, timeout: Duration) async throws -> Result {
        let code: Int32
        do {
            code = try await child.waitForExit(timeout: timeout)
        } catch {
            child.kill()
            throw HarnessError("\(what) timed out after \(timeout)\n\(child.diagnostics)")
        }
        return Result(exitCode: code, stdout: child.stdout.text, stderr: child.stderr.text)
    }
}
