import ChorusTestSupport
import Testing

/// The limits that had no flag (`--close-timeout`, `--read-buffer-size`, `--sio-max-attachments`,
/// `--sio-max-pending-packets`) and the loop cap: bad values refused at start, the Socket.IO limit
/// at its edge.
@Suite("Configuration flags", .serialized)
struct ConfigurationFlagsTests {
    @Test(
        "bad values are refused at start", .timeLimit(.minutes(1)),
        arguments: [
            (["--threads", "257"], "--threads must be 1...256"),
            (["--threads", "0"], "--threads must be 1...256"),
            (["--close-timeout", "0"], "--close-timeout must be positive"),
            (["--read-buffer-size", "4095"], "--read-buffer-size must be at least 4096"),
            (["--sio-max-attachments=-1"], "--sio-max-attachments and --sio-max-pending-packets must not be negative"),
            (
                ["--sio-max-pending-packets=-1"],
                "--sio-max-attachments and --sio-max-pending-packets must not be negative"
            ),
        ])
    func badFlags(_ flags: [String], _ message: String) async throws {
        try await E2E.expectRefusedAtStart(flags, message)
    }

    @Test(
        "--sio-max-attachments: N attachments are taken, N + 1 close the connection", .timeLimit(.minutes(1)),
        arguments: [1, 3])
    func maxAttachments(_ n: Int) async throws {
        try await E2E.scenario(
            "attachments", serverArguments: ["--sio-max-attachments", "\(n)"],
            scenarioArguments: ["--max-attachments", "\(n)"])
    }

    @Test(
        "--read-buffer-size 4096: a chat session with large messages works as with the default", .timeLimit(.minutes(1))
    )
    func smallReadBuffer() async throws {
        try await E2E.scenario(
            "chat", serverArguments: ["--read-buffer-size", "4096"], scenarioArguments: ["--max-content", "10000"])
    }
}
