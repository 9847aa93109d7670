import ChorusTestSupport
import Testing

/// The realtime app end to end: `chorus --app realtime` (a `ChorusProcess`) with the secrets the
/// scenarios of Tests/clients/sio_scenarios.py expect, and those scenarios run against it with
/// the test venv's python-socketio (a `PythonClient`). A missing client library fails the test.
enum E2E {
    static let secret = "test-secret"
    static let apiToken = "test-api-token"

    /// `chorus serve --app realtime --log-level warning` plus `arguments`, listening on a free
    /// port; killed when released (or by `kill()`).
    static func server(_ arguments: [String]) async throws -> ChorusProcess {
        try await ChorusProcess.start(app: "realtime", ["--log-level", "warning"] + arguments)
    }

    /// Runs one scenario against `url`; throws with its output unless it prints "OK <scenario>".
    static func run(_ scenario: String, url: String, extra: [String] = [], timeout: Duration = .seconds(45))
        async throws
    {
        let result = try await PythonClient.run(
            "sio_scenarios.py",
            args: [scenario, "--url", url, "--secret", secret, "--api-token", apiToken] + extra,
            requiring: PythonClient.socketIO, timeout: timeout)
        guard result.exitCode == 0, result.stdout.contains("OK \(scenario)") else {
            throw HarnessError("scenario \(scenario) failed: \(result)")
        }
    }

    /// A server with the flags the scenarios expect, then the scenario, then the server killed.
    static func scenario(_ name: String, serverArguments: [String] = [], scenarioArguments: [String] = []) async throws
    {
        let server = try await server(
            ["--jwt-secret", secret, "--api-token", apiToken, "--threads", "2"] + serverArguments)
        defer { server.kill() }
        do {
            try await run(name, url: server.url, extra: scenarioArguments)
        } catch {
            throw HarnessError("\(error)\n\(server.diagnostics)")
        }
    }

    /// `chorus serve … flags` must refuse to start, saying `message` on stderr.
    static func expectRefusedAtStart(_ flags: [String], _ message: String) async throws {
        let child = try ChildProcess(
            executable: ChorusProcess.binary,
            arguments: ["serve", "--host", "127.0.0.1", "--port", "0", "--auth", "none"] + flags)
        defer { child.kill() }
        let code = try await child.waitForExit(timeout: .seconds(20))
        #expect(code != 0)
        #expect(child.stderr.text.contains(message), "\(child.diagnostics)")
    }
}
