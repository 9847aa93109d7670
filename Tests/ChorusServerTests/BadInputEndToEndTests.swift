import ChorusTestSupport
import Foundation
import Testing

/// Hostile clients (Tests/clients/bad_input.py): each gets the HTTP status or close code the
/// RFCs require, and afterwards the same server still serves a well-behaved echo client.
@Suite("Bad input end-to-end", .serialized, .timeLimit(.minutes(1)))
struct BadInputEndToEndTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let mode: String
        let server: [String]
        let client: [String]
        var testDescription: String { mode }
    }

    static let cases: [Case] = [
        // 16 KiB of headers against an 8 KiB limit: 431 Request Header Fields Too Large (RFC 6585 §5).
        Case(mode: "oversized_header", server: ["--max-header-size", "8192"], client: ["--size", "16384"]),
        Case(mode: "malformed", server: [], client: []),
        // RFC 6455 §4.4: 426 with the version the server speaks.
        Case(mode: "wrong_version", server: [], client: []),
        // RFC 6455 §5.1: an unmasked client frame fails the connection with 1002.
        Case(mode: "unmasked", server: [], client: []),
        // RFC 6455 §8.1: text that is not UTF-8 fails the connection with 1007.
        Case(mode: "invalid_utf8", server: [], client: []),
        // 1009 Message Too Big, for one frame and for fragments that add up past the limit.
        Case(mode: "oversized_message", server: ["--max-message-size", "200000"], client: ["--size", "300000"]),
        Case(mode: "abrupt", server: [], client: []),
        // RFC 9112 §6.3: a body whose length two parties could read differently is refused with 400.
        Case(mode: "bad_body_framing", server: [], client: []),
    ]

    @Test("hostile client is answered per the RFC and the server keeps serving", arguments: cases)
    func hostileClient(_ c: Case) async throws {
        let server = try await ChorusProcess.start(app: "echo", c.server)
        let hostile = try await PythonClient.run("bad_input.py", args: [c.mode, "--port", "\(server.port)"] + c.client)
        let hostilePassed = hostile.ok
        #expect(hostilePassed, "\(hostile)\n\(server.diagnostics)")
        #expect(server.isRunning, "chorus died after \(c.mode)\n\(server.diagnostics)")
        let echo = try await PythonClient.run("echo.py", args: ["--port", "\(server.port)", "--max-size", "65536"])
        let echoPassed = echo.ok
        #expect(echoPassed, "echo after \(c.mode): \(echo)\n\(server.diagnostics)")
    }

    @Test("a request head under --max-header-size is accepted")
    func headerUnderTheLimit() async throws {
        let server = try await ChorusProcess.start(app: "echo", ["--max-header-size", "8192"])
        let connection = try RawTCPConnection(port: server.port)
        let filler = String(repeating: "a", count: 4096)
        #expect(try connection.upgrade(extraHeaders: "X-Filler: \(filler)\r\n")?.status == 101)
    }

    @Test("a message of exactly --max-message-size is accepted")
    func messageAtTheLimit() async throws {
        let server = try await ChorusProcess.start(app: "echo", ["--max-message-size", "1000"])
        let connection = try RawTCPConnection(port: server.port)
        #expect(try connection.upgrade()?.status == 101)
        let payload = [UInt8](repeating: 0x42, count: 1000)
        try connection.send(RawTCPConnection.clientFrame(opcode: 0x2, payload: payload))
        let frame = try #require(try connection.readFrame())
        #expect(frame == .init(fin: true, opcode: 0x2, payload: payload))
    }

    @Test(
        "--message-timeout: a message trickled in (a byte at a time, or fragments kept alive by pings) is closed with 1008"
    )
    func messageTimeout() async throws {
        let server = try await ChorusProcess.start(app: "echo", ["--message-timeout", "1"])
        let payload = [UInt8](repeating: 7, count: 100)
        let frame = RawTCPConnection.clientFrame(opcode: 0x2, payload: payload)
        // Slowly but within the time: read and echoed.
        let slow = try RawTCPConnection(port: server.port)
        #expect(try slow.upgrade()?.status == 101)
        for start in stride(from: 0, to: frame.count, by: 20) {
            try slow.send(Array(frame[start..<min(frame.count, start + 20)]))
            usleep(100_000)
        }
        #expect(try slow.readFrame() == .init(fin: true, opcode: 0x2, payload: payload))
        // A byte every 300 ms: each resets the idle timer, none finishes the message.
        let trickle = try RawTCPConnection(port: server.port)
        #expect(try trickle.upgrade()?.status == 101)
        for byte in frame.prefix(8) {
            try? trickle.send([byte])
            usleep(300_000)
        }
        #expect(try trickle.readFrame()?.closeCode == 1008)
        // A fragmented message whose end never comes, the connection kept busy with pings.
        let fragments = try RawTCPConnection(port: server.port)
        #expect(try fragments.upgrade()?.status == 101)
        try fragments.send(RawTCPConnection.clientFrame(opcode: 0x1, payload: Array("start".utf8), fin: false))
        var closeCode: UInt16?
        for _ in 0..<10 where closeCode == nil {
            try? fragments.send(RawTCPConnection.clientFrame(opcode: 0x9, payload: []))
            if let f = try fragments.readFrame(), f.opcode == 0x8 { closeCode = f.closeCode }
            usleep(300_000)
        }
        #expect(closeCode == 1008)
        #expect(server.isRunning)
    }
}
