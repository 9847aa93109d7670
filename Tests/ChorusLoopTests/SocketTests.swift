import ChorusLoop
import Glibc
import Testing

/// A connected pair of non-blocking stream sockets.
private func socketPair() -> (Int32, Int32) {
    var fds: [Int32] = [0, 0]
    let rc = socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0, &fds)
    precondition(rc == 0)
    return (fds[0], fds[1])
}

@Suite("Sockets and the outbound queue")
struct SocketTests {
    /// A vanished peer is an EPIPE error for that socket, never a SIGPIPE for the process
    /// (this test runner does not ignore SIGPIPE: with plain writev it would die here).
    @Test func writingToAClosedPeerThrowsEPIPEInsteadOfRaisingSIGPIPE() {
        let (a, b) = socketPair()
        defer { close(a) }
        close(b)
        let bytes = SharedBytes.copying(Array("hello".utf8))
        var queue = OutboundQueue()
        queue.append(bytes)
        let iov = UnsafeMutablePointer<iovec>.allocate(capacity: 4)
        defer { iov.deallocate() }
        #expect {
            _ = try queue.flush(fd: a, iov: iov, iovCapacity: 4)
        } throws: { ($0 as? IOError)?.errno == EPIPE }
        #expect(throws: IOError.self) { _ = try Socket.write(a, bytes.baseAddress, count: bytes.count) }
    }

    @Test func aFullSocketLeavesTheRestQueuedAndResumesWhereItStopped() throws {
        let (a, b) = socketPair()
        defer { close(a); close(b) }
        let chunk = SharedBytes.make(count: 64 * 1024) { buffer in
            for i in 0..<buffer.count { buffer[i] = UInt8(truncatingIfNeeded: i / 7) }
        }
        var queue = OutboundQueue()
        for _ in 0..<64 { queue.append(chunk) }  // 4 MiB: more than a socket buffer holds
        let iov = UnsafeMutablePointer<iovec>.allocate(capacity: 8)
        defer { iov.deallocate() }
        var drained = try queue.flush(fd: a, iov: iov, iovCapacity: 8)
        #expect(!drained)
        #expect(queue.byteCount > 0 && queue.byteCount < 64 * 64 * 1024)
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 256 * 1024)
        while !drained || received.count < 64 * 64 * 1024 {
            let n = buffer.withUnsafeMutableBytes { read(b, $0.baseAddress, $0.count) }
            if n > 0 { received += buffer[..<n] }
            if !drained { drained = try queue.flush(fd: a, iov: iov, iovCapacity: 8) }
        }
        #expect(queue.isEmpty)
        let expected = chunk.array
        for i in stride(from: 0, to: received.count, by: expected.count) {
            #expect(Array(received[i..<(i + expected.count)]) == expected)
        }
    }

    @Test func readingAnEmptyNonBlockingSocketWouldBlock() throws {
        let (a, b) = socketPair()
        defer { close(a); close(b) }
        var byte: UInt8 = 0
        guard case .wouldBlock = try Socket.read(a, into: &byte, count: 1) else {
            Issue.record("expected wouldBlock")
            return
        }
    }

    @Test func anEventLoopRunsTasksFromOtherThreadsInOrder() throws {
        final class Collector: EventLoopDelegate, @unchecked Sendable {
            var seen: [Int] = []
            func eventLoop(_ loop: EventLoop, ready token: UInt64, events: Epoll.Events) {}
            func eventLoopTick(_ loop: EventLoop, now: UInt64) {}
            func eventLoopDidFinishIteration(_ loop: EventLoop) {}
        }
        let loop = try EventLoop(index: 0, tickNanoseconds: 50_000_000)
        let collector = Collector()
        let thread = LoopThread(name: "test-loop") { try? loop.run(delegate: collector) }
        for i in 0..<1000 { loop.execute { collector.seen.append(i) } }
        loop.execute { loop.stop() }
        thread.join()
        #expect(collector.seen == Array(0..<1000))
    }
}
