import ChorusTestSupport
import Foundation
import Testing

/// `chorus serve --app broadcast`: every message goes to every connection, sender included,
/// with the same opcode and payload.
@Suite("Broadcast end-to-end", .serialized, .timeLimit(.minutes(1)))
struct BroadcastEndToEndTests {
    @Test(
        "N clients × K messages: every client receives all N×K, per-sender order kept",
        arguments: [(clients: 10, messages: 20, size: 64), (clients: 50, messages: 10, size: 1024)])
    func everyoneReceivesEverything(clients: Int, messages: Int, size: Int) async throws {
        let server = try await ChorusProcess.start(app: "broadcast")
        let result = try await PythonClient.run(
            "broadcast.py",
            args: [
                "--port", "\(server.port)", "--clients", "\(clients)", "--messages", "\(messages)",
                "--size", "\(size)", "--binary", "--timeout", "40",
            ])
        let resultPassed = result.ok
        #expect(resultPassed, "\(result)\n\(server.diagnostics)")
        let json = try #require(result.json, "no result line: \(result)")
        #expect(json["deliveries"] as? Int == clients * messages * clients)
    }

    @Test("with permessage-deflate shared, deliveries are intact")
    func broadcastCompressed() async throws {
        let server = try await ChorusProcess.start(app: "broadcast", ["--deflate", "shared"])
        let result = try await PythonClient.run(
            "broadcast.py",
            args: [
                "--port", "\(server.port)", "--clients", "8", "--messages", "10", "--size", "2048", "--binary",
            ])
        let resultPassed = result.ok
        #expect(resultPassed, "\(result)\n\(server.diagnostics)")
    }
}
