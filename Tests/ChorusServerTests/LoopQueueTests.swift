import ChorusServer
import ChorusTestSupport
import Glibc
import Synchronization
import Testing

/// `maxLoopQueue`: a loop that falls behind takes at most that many broadcasts from the others;
/// the rest are skipped (counted) or, under the `close` policy, its connections are closed with
/// 1013 once it has delivered what it took.
@Suite("Cross-loop queue bound", .serialized, .timeLimit(.minutes(1)))
struct LoopQueueTests {
    /// Holds loop 0 busy for `milliseconds` (its queue fills meanwhile), then emits `count` messages
    /// to everyone from this thread (one queue entry each).
    static func stallAndEmit(_ server: WebSocketServer, count: Int, milliseconds: UInt32 = 300) {
        let started = Atomic<Bool>(false)
        server.execute(onLoop: 0) {
            started.store(true, ordering: .releasing)
            usleep(milliseconds * 1000)
        }
        while !started.load(ordering: .acquiring) { usleep(1000) }
        for i in 0..<count { server.emit(text: "m\(i)", to: .rooms([BroadcastApplication.room])) }
    }

    static func loopStats(_ server: WebSocketServer, until condition: (ServerStats) -> Bool) -> ServerStats {
        for _ in 0..<500 {
            let stats = server.stats
            if condition(stats) { return stats }
            usleep(10_000)
        }
        return server.stats
    }

    @Test("drop: the first maxLoopQueue broadcasts are delivered in order, the rest skipped and counted")
    func drop() throws {
        let server = try startServer(BroadcastApplication(), threads: 1) {
            $0.maxLoopQueue = 4
            $0.backpressurePolicy = .drop
        }
        defer { server.shutdown() }
        let c = try BlockingWebSocketClient(port: server.port)
        defer { c.closeNow() }
        #expect(Self.loopStats(server) { $0.connections == 1 }.connections == 1)
        Self.stallAndEmit(server, count: 10)
        for i in 0..<4 { #expect(try c.receiveText() == "m\(i)") }
        #expect(c.isQuiet(milliseconds: 200))
        #expect(Self.loopStats(server) { $0.loopQueueDropped == 6 }.loopQueueDropped == 6)
        // Caught up: it takes broadcasts again.
        server.emit(text: "after", to: .rooms([BroadcastApplication.room]))
        #expect(try c.receiveText() == "after")
    }

    @Test("close: what was taken is delivered, then the loop's connections are closed with 1013")
    func close() throws {
        let server = try startServer(BroadcastApplication(), threads: 1) {
            $0.maxLoopQueue = 4
            $0.backpressurePolicy = .close
        }
        defer { server.shutdown() }
        let c = try BlockingWebSocketClient(port: server.port)
        defer { c.closeNow() }
        #expect(Self.loopStats(server) { $0.connections == 1 }.connections == 1)
        Self.stallAndEmit(server, count: 10)
        for i in 0..<4 { #expect(try c.receiveText() == "m\(i)") }
        #expect(try c.receiveClose() == 1013)
        let stats = Self.loopStats(server) { $0.loopQueueClosed == 1 }
        #expect(stats.loopQueueClosed == 1 && stats.loopQueueDropped == 6)
    }

    @Test("0: no bound")
    func unbounded() throws {
        let server = try startServer(BroadcastApplication(), threads: 1) { $0.maxLoopQueue = 0 }
        defer { server.shutdown() }
        let c = try BlockingWebSocketClient(port: server.port)
        defer { c.closeNow() }
        #expect(Self.loopStats(server) { $0.connections == 1 }.connections == 1)
        Self.stallAndEmit(server, count: 10)
        for i in 0..<10 { #expect(try c.receiveText() == "m\(i)") }
        #expect(server.stats.loopQueueDropped == 0)
    }
}
