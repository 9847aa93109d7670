import ChorusTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// SIGTERM and SIGINT: stop accepting, close every client with 1001 Going Away
/// (RFC 6455 §7.4.1), drain within --shutdown-drain, exit 0.
@Suite("Shutdown end-to-end", .serialized, .timeLimit(.minutes(1)))
struct ShutdownEndToEndTests {
    @Test("clients get 1001 and chorus exits 0 within the drain time", arguments: [SIGTERM, SIGINT])
    func gracefulShutdown(signal: Int32) async throws {
        let drain = 5
        let server = try await ChorusProcess.start(app: "echo", ["--shutdown-drain", "\(drain)"])
        let watcher = try PythonClient.start(
            "shutdown_watch.py", args: ["--port", "\(server.port)", "--clients", "5", "--timeout", "20"])
        _ = try await watcher.waitForLine(timeout: .seconds(15)) { $0.contains("\"connected\"") }

        let clock = ContinuousClock()
        let start = clock.now
        server.terminate(signal: signal)
        let status = try await server.waitForExit(timeout: .seconds(drain + 3))
        let elapsed = clock.now - start
        #expect(status == 0, "exit status \(status)\n\(server.diagnostics)")
        #expect(elapsed <= .seconds(drain + 1), "took \(elapsed) to exit")

        let watched = PythonClient.Result(
            exitCode: try await watcher.waitForExit(timeout: .seconds(15)),
            stdout: watcher.stdout.text, stderr: watcher.stderr.text)
        let codes = watched.json?["codes"] as? [Int]
        #expect(codes == [1001, 1001, 1001, 1001, 1001], "\(watched)")
        #expect(watched.exitCode == 0, "\(watched)")
    }

    @Test("an idle server exits 0 promptly on SIGTERM")
    func idleShutdown() async throws {
        let server = try await ChorusProcess.start(app: "echo")
        #expect(try RawTCPConnection.httpGet(port: server.port, path: "/healthz").0.status == 200)
        server.terminate(signal: SIGTERM)
        #expect(try await server.waitForExit(timeout: .seconds(5)) == 0, "\(server.diagnostics)")
    }
}

/// Children of the test runner die with it (PR_SET_PDEATHSIG through setpriv): a crashed runner
/// leaves no server behind.
@Suite("Child processes")
struct ChildProcessTests {
    @Test("a child started by the harness has SIGKILL as its parent-death signal")
    func parentDeathSignal() async throws {
        // PR_GET_PDEATHSIG (2) from inside the child, through ctypes.
        let python = URL(fileURLWithPath: ProcessInfo.processInfo.environment["CHORUS_PYTHON"] ?? "/usr/bin/python3")
        let script =
            "import ctypes; s = ctypes.c_int(); ctypes.CDLL(None).prctl(2, ctypes.byref(s)); print('pdeathsig', s.value)"
        let child = try ChildProcess(executable: python, arguments: ["-c", script])
        let line = try await child.waitForLine(timeout: .seconds(20)) { $0.hasPrefix("pdeathsig") }
        #expect(line == "pdeathsig \(SIGKILL)")
    }
}
