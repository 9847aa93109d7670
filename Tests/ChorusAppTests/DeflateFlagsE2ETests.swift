import ChorusTestSupport
import Testing

/// The permessage-deflate flags at their edges: what zlib cannot take is refused before the server
/// listens, with the flag's name and range on stderr.
@Suite("permessage-deflate flags")
struct DeflateFlagsE2ETests {
    @Test(
        "bad deflate flags are refused at start", .timeLimit(.minutes(1)),
        arguments: [
            (["--deflate-level", "10"], "--deflate-level must be -1...9"),
            (["--deflate-level=-2"], "--deflate-level must be -1...9"),
            (["--deflate-window-bits", "8"], "--deflate-window-bits must be 9...15"),
            (["--deflate-mem-level", "0"], "--deflate-mem-level must be 1...9"),
        ])
    func badFlags(_ flags: [String], _ message: String) async throws {
        try await E2E.expectRefusedAtStart(flags, message)
    }
}
