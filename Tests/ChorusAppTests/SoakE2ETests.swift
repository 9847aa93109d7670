import ChorusTestSupport
import Foundation
import Testing

/// A short run of scripts/soak.py (churn, floods, slow consumers, API emits against a realtime and a
/// broadcast server): both servers survive and hold no more descriptors once every client has left
/// than before the load. The long run (`scripts/soak.sh 1800`) is quoted in BENCHMARKS.md.
@Suite("Soak (short)", .serialized)
struct SoakE2ETests {
    @Test("20 s of churn, floods and slow consumers: servers alive, no descriptor kept")
    func shortSoak() async throws {
        let script = Repository.root.appendingPathComponent("scripts/soak.py").path
        let child = try PythonClient.start(
            arguments: [
                script, "--bin", ChorusProcess.binary.path, "--duration", "20", "--warmup", "5",
                "--sample", "5", "--settle", "5", "--rate", "0.5",
            ],
            requiring: "json")
        let code: Int32
        do {
            code = try await child.waitForExit(timeout: .seconds(120))
        } catch {
            child.kill()
            throw error
        }
        let result = PythonClient.Result(exitCode: code, stdout: child.stdout.text, stderr: child.stderr.text)
        let json = try #require(result.json, "no summary line\n\(result)")
        #expect(result.ok, "\(result)")
        let servers = try #require(json["servers"] as? [String: [String: Any]])
        for name in ["realtime", "broadcast"] {
            let server = try #require(servers[name], "\(name) missing\n\(result)")
            #expect(server["alive"] as? Bool == true, "\(name) died\n\(result)")
            let idle = try #require(server["idle"] as? [String: Any])
            let end = try #require(server["end"] as? [String: Any])
            let idleFDs = try #require(idle["fds"] as? Int)
            let endFDs = try #require(end["fds"] as? Int)
            #expect(endFDs <= idleFDs + 8, "\(name): \(idleFDs) descriptors before, \(endFDs) after")
        }
        // The load really ran: connections came and went, some abruptly, and events were sent.
        let counts = try #require(json["load"] as? [String: Any])
        func load(_ key: String) -> Int { counts[key] as? Int ?? 0 }
        #expect(load("sioConnects") > 50 && load("wsConnects") > 20, "\(counts)")
        #expect(load("abruptCloses") > 10 && load("floodEvents") > 1000, "\(counts)")
        #expect(load("slowConsumers") >= 15 && load("emits") > 50, "\(counts)")
    }
}
