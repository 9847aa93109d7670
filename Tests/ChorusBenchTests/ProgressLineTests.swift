import ChorusLoop
import Foundation
import Synchronization
import Testing

@testable import ChorusBenchCore

#if canImport(Glibc)
import Glibc
#endif

/// The progress line `chorus-bench` writes to a terminal: its text, and a real run that feeds it.
@Suite struct ProgressLineTests {
    @Test func firstUpdateHasNoRateAndNoPercentileYet() {
        var line = ProgressLine()
        #expect(
            line.update(now: 1_000_000_000, opened: 10, total: 20, received: 0, p99Micros: 0)
                == "\r10/20 connections open, 0 deliveries/s, p99 - so far")
    }

    @Test func rateIsDeliveriesSinceTheLastUpdatePerSecond() {
        var line = ProgressLine()
        _ = line.update(now: 1_000_000_000, opened: 20, total: 20, received: 1_000, p99Micros: 0)
        // 250,000 more in half a second.
        #expect(
            line.update(now: 1_500_000_000, opened: 20, total: 20, received: 251_000, p99Micros: 71_250)
                == "\r20/20 connections open, 500000 deliveries/s, p99 71.3 ms so far")
    }

    @Test func aShorterLineCoversTheLongerOneBeforeIt() {
        var line = ProgressLine()
        let long = line.update(now: 1, opened: 12_345, total: 12_345, received: 0, p99Micros: 123_456)
        let short = line.update(now: 2, opened: 1, total: 12_345, received: 0, p99Micros: 0)
        #expect(short.count == long.count)
        #expect(short.hasSuffix(" "))
        // What is left to blank is the last text; its padding is blank already.
        let lastText = short.dropFirst().reversed().drop { $0 == " " }.reversed()
        #expect(line.clear() == "\r" + String(repeating: " ", count: lastText.count) + "\r")
    }

    @Test func aRunWritesTheLineAboutOnceASecondWithMovingFigures() throws {
        let server = try TinyBroadcastServer()
        server.start()
        defer { server.stop() }
        let written = Mutex<[String]>([])
        let reporter = ProgressReporter { text in written.withLock { $0.append(text) } }
        let plan = LoadPlan(
            url: WebSocketURL(host: "127.0.0.1", port: server.port, path: "/"), receivers: 20, publishers: 1, size: 64,
            window: 4, duration: 2.5, warmup: 0.5, drain: 2)
        let result = try FanoutRunner.run(plan, serverPID: nil, quiet: true, progress: reporter)
        #expect(result.stats.receivedInWindow > 0)
        let lines = written.withLock { $0 }
        // About one a second over 3 s of load (connecting included), then the blanking one.
        #expect(lines.count >= 3 && lines.count <= 6, "\(lines)")
        #expect(lines.dropLast().allSatisfy { $0.hasPrefix("\r") && $0.contains("connections open") })
        #expect(
            lines.contains {
                $0.contains("21/21 connections open") && !$0.contains(" 0 deliveries/s") && !$0.contains("p99 -")
            },
            "\(lines)")
        #expect(
            lines.last.map { $0.first == "\r" && $0.last == "\r" && $0.dropFirst().dropLast().allSatisfy { $0 == " " } }
                == true)
    }

    /// The binary decides: the line on a terminal, nothing of it with --json. `script` gives the
    /// run a pseudo-terminal as its standard output.
    @Test func theBinaryShowsTheLineOnATerminalAndStaysQuietWithJSON() throws {
        let environment = ProcessInfo.processInfo.environment
        let bench =
            environment["CHORUS_BENCH_BIN"]
            ?? environment["CHORUS_BIN"].map {
                URL(fileURLWithPath: $0).deletingLastPathComponent().appendingPathComponent("chorus-bench").path
            }
            ?? ".build/debug/chorus-bench"
        try #require(FileManager.default.isExecutableFile(atPath: bench), "build chorus-bench first: \(bench)")
        let server = try TinyBroadcastServer()
        server.start()
        defer { server.stop() }
        func onTerminal(_ extra: String) throws -> String {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/script")
            process.arguments = [
                "-qec",
                "\(bench) fanout --url ws://127.0.0.1:\(server.port)/ --receivers 10 --window 4 "
                    + "--duration 2 --warmup 0.5 --drain 1 \(extra)", "/dev/null",
            ]
            let output = Pipe()
            process.standardOutput = output
            process.standardInput = FileHandle.nullDevice
            try process.run()
            let data = output.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return String(decoding: data, as: UTF8.self)
        }
        let plain = try onTerminal("")
        #expect(
            plain.contains("\r11/11 connections open, ") && plain.contains(" deliveries/s, p99 ")
                && plain.contains("deliveries"), "\(plain)")
        let json = try onTerminal("--json")
        #expect(!json.contains("connections open,") && json.contains("\"deliveries_per_s\""), "\(json)")
    }
}
