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

    @Test func aWrittenBufferReturnsToThePoolAndIsReused() throws {
        let (a, b) = socketPair()
        defer { close(a); close(b) }
        let pool = SharedBytesPool(limit: 4)
        let iov = UnsafeMutablePointer<iovec>.allocate(capacity: 4)
        defer { iov.deallocate() }
        var queue = OutboundQueue()
        let first = pool.make(count: 10) { $0.initializeMemory(as: UInt8.self, repeating: 1) }
        let identity = first
        queue.append(first)
        #expect(try queue.flush(fd: a, iov: iov, iovCapacity: 4, pool: pool))
        #expect(pool.count == 0, "a buffer someone still holds is not recycled")
        _ = consume first
        let second = pool.make(count: 20) { $0.initializeMemory(as: UInt8.self, repeating: 2) }
        #expect(!second.isSameBuffer(as: identity))
        queue.append(second)
        _ = consume second
        #expect(try queue.flush(fd: a, iov: iov, iovCapacity: 4, pool: pool))
        #expect(pool.count == 1, "the queue held the last reference: the buffer comes back")
        let third = pool.make(count: 30) { $0.initializeMemory(as: UInt8.self, repeating: 3) }
        #expect(pool.count == 0)
        #expect(third.count == 30 && third.array == [UInt8](repeating: 3, count: 30))
    }

    @Test func largeBuffersAreNotPooled() throws {
        let pool = SharedBytesPool()
        var big = pool.make(count: 4 * SharedBytesPool.bufferCapacity) { $0.initializeMemory(as: UInt8.self, repeating: 0) }
        pool.recycle(&big)
        #expect(pool.count == 0)
    }
}
