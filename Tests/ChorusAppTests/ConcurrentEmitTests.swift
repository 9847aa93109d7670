import ChorusJSON
import ChorusServer
import ChorusSocketIO
import ChorusTestSupport
import Foundation
import Synchronization
import Testing

/// The Socket.IO emit API is documented "safe from any thread": many threads at once create
/// namespaces (`of(_:)`, which an emit to a namespace reaches) and emit, while the loops deliver.
/// Without the namespace table's lock, concurrent inserts into one dictionary are undefined
/// behaviour (a crash, or namespaces lost); under `scripts/tsan.sh` the race itself is reported
/// (checked once with the lock taken out of `of(_:)`: 4 reports there in two runs, while this
/// test's own expectations still held), as is any other unsynchronised state on these paths.
@Suite("Emitting from many threads at once", .serialized)
struct ConcurrentEmitTests {
    static let threads = 8
    static let emitsPerThread = 100
    static let namespacesPerThread = 25

    @Test(
        "of(_:) and emit from 8 threads: every namespace exists once, every event arrives once",
        .timeLimit(.minutes(2)))
    func manyThreadsEmitAndCreateNamespaces() async throws {
        // No heartbeat during the test: under a sanitizer on a loaded machine it may outlast the
        // default 25 s ping interval, and a ping is not one of the events counted below.
        var sio = SocketIOConfiguration()
        sio.pingInterval = 600
        sio.pingTimeout = 600
        let io = SocketIOServer(configuration: sio)
        io.sockets.on("join") { socket, args, ack in
            for room in args.compactMap(\.stringValue) { socket.join(room) }
            ack?(true)
        }
        var config = ServerConfiguration()
        config.host = "127.0.0.1"
        config.port = 0
        config.threads = 2
        config.applicationTimeouts = sio.timeouts
        let server = WebSocketServer(configuration: config, application: io)
        try server.start()
        defer { server.shutdown() }

        let client = try BlockingWebSocketClient(port: server.port, path: "/socket.io/?EIO=4&transport=websocket")
        defer { client.closeNow() }
        #expect(try await client.text().hasPrefix("0{"))
        try client.send(text: "40")
        #expect(try await client.text().hasPrefix("40"))
        try client.send(text: #"420["join","r"]"#)
        #expect(try await client.text() == "430[true]")

        // Every thread waits at the gate, so that they really run the API at the same time.
        let ready = Atomic<Int>(0)
        let done = DispatchGroup()
        for t in 0..<Self.threads {
            done.enter()
            Thread {
                ready.add(1, ordering: .acquiringAndReleasing)
                while ready.load(ordering: .acquiring) < Self.threads {}
                for i in 0..<Self.emitsPerThread {
                    let namespace = io.of("/t\(t)-\(i % Self.namespacesPerThread)")
                    _ = namespace.socketCount
                    _ = io.to("r").recipientCount
                    io.to("r").emit("n", JSONValue(t * 1000 + i))
                }
                done.leave()
            }.start()
        }
        #expect(done.wait(timeout: .now() + 60) == .success)

        let expectedNamespaces = Set(
            (0..<Self.threads).flatMap { t in
                (0..<Self.namespacesPerThread).map { "/t\(t)-\($0)" }
            }
        ).union(["/"])
        #expect(Set(io.namespaceNames) == expectedNamespaces)
        for name in expectedNamespaces { #expect(io.of(name) === io.of(name)) }

        var received = Set<Int>()
        for _ in 0..<(Self.threads * Self.emitsPerThread) {
            let frame = try await client.text()
            guard frame.hasPrefix(#"42["n","#), let n = Int(frame.dropFirst(7).dropLast()) else {
                Issue.record("unexpected frame \(frame)")
                break
            }
            #expect(received.insert(n).inserted, "event \(n) twice")
        }
        #expect(received.count == Self.threads * Self.emitsPerThread)
        #expect(await client.quiet(milliseconds: 100))
        #expect(io.eventCounters.eventsOut.values.reduce(0, +) == Self.threads * Self.emitsPerThread)
    }
}
