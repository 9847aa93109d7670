import Foundation

/// Runs the JavaScript test clients in Tests/clients/ (recovery.js) under Node.js with the official
/// socket.io-client bundle that scripts/setup.sh places (`$CHORUS_SIO_JS`, or
/// `.venv-test/js/socket.io.min.js`). A missing `node` or bundle fails the test with a message:
/// never a skip.
public enum NodeClient {
    public static var bundle: URL {
        if let path = ProcessInfo.processInfo.environment["CHORUS_SIO_JS"], !path.isEmpty {
            return URL(fileURLWithPath: path)
        }
        return Repository.root.appendingPathComponent(".venv-test/js/socket.io.min.js")
    }

    /// `node` on the PATH.
    static func node() throws -> URL {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":") {
            let candidate = URL(fileURLWithPath: String(dir)).appendingPathComponent("node")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        throw HarnessError("node not found on PATH: run scripts/setup.sh (it installs Debian's nodejs)")
    }

    /// Node 20 and 21 have a global WebSocket only behind this flag (22 has it by default, older
    /// ones not at all: recovery.js then falls back to Debian's node-ws).
    static func flags(_ node: URL) -> [String] {
        let process = Process()
        let pipe = Pipe()
        process.executableURL = node
        process.arguments = ["--version"]
        process.standardOutput = pipe
        guard (try? process.run()) != nil else { return [] }
        process.waitUntilExit()
        let version = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let major = Int(version.dropFirst().prefix(while: \.isNumber)) ?? 0
        return major == 20 || major == 21 ? ["--experimental-websocket"] : []
    }

    /// Runs `Tests/clients/<script> args...` to completion (killed after `timeout`).
    public static func run(_ script: String, args: [String], timeout: Duration = .seconds(90)) async throws
        -> PythonClient.Result
    {
        let node = try node()
        guard FileManager.default.fileExists(atPath: bundle.path) else {
            throw HarnessError(
                "the official socket.io-client bundle is not at \(bundle.path): run scripts/setup.sh (or set CHORUS_SIO_JS)"
            )
        }
        let path = PythonClient.scriptURL(script)
        var environment = ProcessInfo.processInfo.environment
        environment["CHORUS_SIO_JS"] = bundle.path
        let child = try ChildProcess(
            executable: node, arguments: flags(node) + [path.path] + args, environment: environment)
        let code: Int32
        do {
            code = try await child.waitForExit(timeout: timeout)
        } catch {
            child.kill()
            throw HarnessError(
                "\(script) \(args.joined(separator: " ")) timed out after \(timeout)\n\(child.diagnostics)")
        }
        return PythonClient.Result(exitCode: code, stdout: child.stdout.text, stderr: child.stderr.text)
    }
}
