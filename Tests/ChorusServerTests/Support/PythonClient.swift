import Foundation

/// Runs the Python test clients in Tests/clients/ with the test venv's interpreter
/// (`$CHORUS_PYTHON`, or `.venv-test/bin/python`, both made by scripts/setup.sh).
/// A missing interpreter or `websockets` module fails the test with a message: never a skip.
enum PythonClient {
    struct Result: Sendable, CustomStringConvertible {
        let exitCode: Int32
        let stdout: String
        let stderr: String

        /// The client's result line: the last stdout line that is a JSON object.
        var json: [String: Any]? {
            for line in stdout.split(separator: "\n").reversed() where line.hasPrefix("{") {
                if let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] {
                    return object
                }
            }
            return nil
        }

        var ok: Bool { exitCode == 0 && (json?["ok"] as? Bool) == true }

        var description: String {
            "exit \(exitCode)\n--- stdout ---\n\(stdout)\n--- stderr ---\n\(stderr.suffix(4000))"
        }
    }

    static var interpreter: URL {
        if let path = ProcessInfo.processInfo.environment["CHORUS_PYTHON"], !path.isEmpty {
            return URL(fileURLWithPath: path)
        }
        return Repository.root.appendingPathComponent(".venv-test/bin/python")
    }

    static func scriptURL(_ script: String) -> URL {
        Repository.root.appendingPathComponent("Tests/clients").appendingPathComponent(script)
    }

    /// Checked once per test process: the interpreter runs and imports the client libraries.
    private static let readiness: Swift.Result<URL, HarnessError> = {
        let python = interpreter
        guard FileManager.default.isExecutableFile(atPath: python.path) else {
            return .failure(HarnessError(
                "Python interpreter not found at \(python.path): run scripts/setup.sh (or set CHORUS_PYTHON)"))
        }
        let process = Process()
        process.executableURL = python
        process.arguments = ["-c", "import websockets.asyncio.client"]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch {
            return .failure(HarnessError("cannot run \(python.path): \(error)"))
        }
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            return .failure(HarnessError(
                "\(python.path) cannot import websockets.asyncio.client: run scripts/setup.sh"))
        }
        return .success(python)
    }()

    /// Starts `Tests/clients/<script>` and returns at once (for clients a test talks to while
    /// they run, such as shutdown_watch.py).
    static func start(_ script: String, args: [String]) throws -> ChildProcess {
        let python = try readiness.get()
        let path = scriptURL(script)
        guard FileManager.default.fileExists(atPath: path.path) else {
            throw HarnessError("no such test client: \(path.path)")
        }
        var environment = ProcessInfo.processInfo.environment
        environment["PYTHONUNBUFFERED"] = "1"
        environment["PYTHONDONTWRITEBYTECODE"] = "1"
        return try ChildProcess(executable: python, arguments: ["-u", path.path] + args, environment: environment)
    }

    /// Runs `Tests/clients/<script>` to completion (killed after `timeout`).
    static func run(_ script: String, args: [String], timeout: Duration = .seconds(60)) async throws -> Result {
        let child = try start(script, args: args)
        let code: Int32
        do {
            code = try await child.waitForExit(timeout: timeout)
        } catch {
            child.send(signal: SIGKILL)
            throw HarnessError("\(script) \(args.joined(separator: " ")) timed out after \(timeout)\n\(child.diagnostics)")
        }
        return Result(exitCode: code, stdout: child.stdout.text, stderr: child.stderr.text)
    }
}
