import Testing

/// `chorus --app realtime` driven by the real python-socketio client over loopback.
@Suite("realtime end to end", .serialized)
struct RealtimeE2ETests {
    @Test("JWT at connect: auth.token, query, header; bad/expired/missing/alg-none refused", .timeLimit(.minutes(1)))
    func auth() async throws { try await E2E.scenario("auth") }

    @Test(
        "project rooms: policy, acks, emit API, isolation, leave, error event, unknown events", .timeLimit(.minutes(1)))
    func rooms() async throws { try await E2E.scenario("rooms") }

    @Test("chat: message:send to every member (sender included), validation, leave", .timeLimit(.minutes(1)))
    func chat() async throws {
        try await E2E.scenario(
            "chat", serverArguments: ["--max-content-length", "500"], scenarioArguments: ["--max-content", "500"])
    }

    @Test("notifications reach every socket of the user and nobody else", .timeLimit(.minutes(1)))
    func notifications() async throws { try await E2E.scenario("notifications") }

    @Test("emit API: 401, 400s, 404, 405, rooms/except, recipients; Engine.IO 400 errors", .timeLimit(.minutes(1)))
    func api() async throws { try await E2E.scenario("api") }

    @Test("60 clients in one room", .timeLimit(.minutes(1)))
    func many() async throws { try await E2E.scenario("many", scenarioArguments: ["--count", "60"]) }

    @Test("heartbeat: a client that does not pong is closed after pingTimeout; others stay", .timeLimit(.minutes(1)))
    func heartbeat() async throws {
        try await E2E.scenario(
            // 1 s each: a python-socketio client on a loaded 2-core machine can take 300 ms to pong.
            "heartbeat", serverArguments: ["--sio-ping-interval", "1000", "--sio-ping-timeout", "1000"],
            scenarioArguments: ["--ping-interval", "1000", "--ping-timeout", "1000"])
    }

    @Test(
        "malformed packets (1008 parse error) and oversized messages (1009); others keep working",
        .timeLimit(.minutes(1)))
    func malformed() async throws {
        try await E2E.scenario(
            "malformed", serverArguments: ["--max-payload", "20000"], scenarioArguments: ["--max-payload", "20000"])
    }
}
