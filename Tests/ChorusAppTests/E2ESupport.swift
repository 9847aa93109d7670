import Foundation
import Testing

/// Spawns `chorus` ($CHORUS_BIN, default <cwd>/.build/debug/chorus) and runs the Python
/// scenarios of Tests/clients/sio_scenarios.py against it ($CHORUS_PYTHON, else
/// <cwd>/.venv-test/bin/python, else python3). A missing python-socketio fails the test.
enum E2E {
    static let cwd = FileManager.default.currentDirectoryPath
    static let secret = "test-secret"
    static let apiToken = "test-api-token"

    static var chorusBinary: String {
        ProcessInfo.processInfo.environment["CHORUS_BIN"] ?? cwd + "/.build/debug/chorus"
    }

    static var python: String {
        if let p = ProcessInfo.processInfo.environment["CHORUS_PYTHON"], !p.isEmpty { return p }
        let venv = cwd + "/.venv-test/bin/python"
        if FileManager.default.isExecutableFile(atPath: venv) { return venv }
        return "/usr/bin/env"
    }

    static var pythonArguments: [String] { python == "/usr/bin/env" ? ["python3"] : [] }

    static var scenarios: String { cwd + "/Tests/clients/sio_scenarios.py" }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// A running server; `stop()` (or deinit) kills it.
    final class Server: @unchecked Sendable {
        let process: Process
        let port: Int
        let output: Pipe

        init(arguments: [String], timeout: Double = 15) throws {
            guard FileManager.default.isExecutableFile(atPath: E2E.chorusBinary) else {
                throw Failure(description: "no chorus binary at \(E2E.chorusBinary): run `swift build` first or set CHORUS_BIN")
            }
            process = Process()
            process.executableURL = URL(fileURLWithPath: E2E.chorusBinary)
            process.arguments = ["--port", "0", "--host", "127.0.0.1", "--log-level", "warning"] + arguments
            output = Pipe()
            process.standardOutput = output
            process.standardError = FileHandle.nullDevice
            try process.run()
            // Read the ready line with a deadline.
            let handle = output.fileHandleForReading
            let box = LineBox()
            let thread = Thread {
                var buffer = Data()
                while true {
                    let chunk = handle.availableData
                    if chunk.isEmpty { break }
                    buffer.append(chunk)
                    if let text = String(data: buffer, encoding: .utf8), let line = text.split(separator: "\n").first(where: { $0.contains("listening on") }) {
                        box.set(String(line))
                        break
                    }
                }
                box.set(nil)
            }
            thread.start()
            guard let line = box.wait(timeout: timeout), let portText = line.split(separator: ":").last, let port = Int(portText) else {
                process.terminate()
                throw Failure(description: "chorus did not print its ready line within \(timeout)s")
            }
            self.port = port
        }

        func stop() {
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }
        }

        deinit { stop() }

        var url: String { "http://127.0.0.1:\(port)" }
    }

    final class LineBox: @unchecked Sendable {
        private let condition = NSCondition()
        private var value: String??

        func set(_ v: String?) {
            condition.lock()
            if value == nil { value = .some(v) }
            condition.broadcast()
            condition.unlock()
        }

        func wait(timeout: Double) -> String? {
            let deadline = Date().addingTimeInterval(timeout)
            condition.lock()
            defer { condition.unlock() }
            while value == nil {
                if !condition.wait(until: deadline) { return nil }
            }
            return value!
        }
    }

    /// Runs one scenario; throws with its output unless it prints "OK <scenario>".
    static func run(_ scenario: String, url: String, extra: [String] = [], timeout: Double = 45) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = pythonArguments + [scenarios, scenario, "--url", url, "--secret", secret, "--api-token", apiToken] + extra
        let out = Pipe()
        process.standardOutput = out
        process.standardError = out
        try process.run()
        let data = LockedData()
        let reader = Thread {
            let d = out.fileHandleForReading.readDataToEndOfFile()
            data.set(d)
        }
        reader.start()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            throw Failure(description: "scenario \(scenario) timed out after \(timeout)s")
        }
        process.waitUntilExit()
        let text = data.wait()
        if process.terminationStatus == 3 || text.contains("MISSING python-socketio") {
            throw Failure(description: "python-socketio / websocket-client missing for \(python) \(pythonArguments): set CHORUS_PYTHON to a venv with python-socketio[client] and websocket-client\n\(text)")
        }
        guard process.terminationStatus == 0, text.contains("OK \(scenario)") else {
            throw Failure(description: "scenario \(scenario) failed (status \(process.terminationStatus)):\n\(text)")
        }
    }

    final class LockedData: @unchecked Sendable {
        private let condition = NSCondition()
        private var data: Data?
        func set(_ d: Data) { condition.lock(); data = d; condition.broadcast(); condition.unlock() }
        func wait() -> String {
            condition.lock()
            defer { condition.unlock() }
            while data == nil { condition.wait(until: Date().addingTimeInterval(5)); if data == nil { return "" } }
            return String(decoding: data!, as: UTF8.self)
        }
    }

    /// A server with the flags the scenarios expect, then the scenario, then the server killed.
    static func scenario(_ name: String, serverArguments: [String] = [], scenarioArguments: [String] = []) throws {
        let server = try Server(arguments: ["--jwt-secret", secret, "--api-token", apiToken, "--threads", "2"] + serverArguments)
        defer { server.stop() }
        try run(name, url: server.url, extra: scenarioArguments)
    }
}
