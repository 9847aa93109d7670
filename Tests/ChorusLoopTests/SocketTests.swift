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
    /// An idle connection's queue gives its storage back at the second check with nothing appended
    /// in between; one that keeps receiving keeps it (no allocation per frame).
    @Test func anIdleQueueReleasesItsStorageAndABusyOneKeepsIt() throws {
        let (a, b) = socketPair()
        defer { close(a); close(b) }
        let iov = UnsafeMutablePointer<iovec>.allocate(capacity: 4)
        defer { iov.deallocate() }
        var queue = OutboundQueue()
        queue.append(SharedBytes.copying(Array("hello".utf8)))
        #expect(try queue.flush(fd: a, iov: iov, iovCapacity: 4))
        #expect(queue.isEmpty && queue.holdsStorage)
        queue.releaseIdleStorage()  // something was appended since the last check
        #expect(queue.holdsStorage)
        queue.append(SharedBytes.copying(Array("again".utf8)))
        #expect(try queue.flush(fd: a, iov: iov, iovCapacity: 4))
        queue.releaseIdleStorage()  // busy: kept
        #expect(queue.holdsStorage)
        queue.releaseIdleStorage()  // a whole check period with nothing appended
        #expect(!queue.holdsStorage)
        // Not while bytes wait.
        queue.append(SharedBytes.copying(Array("pending".utf8)))
        queue.releaseIdleStorage()
        queue.releaseIdleStorage()
        #expect(queue.holdsStorage && queue.byteCount == 7)
        #expect(try queue.flush(fd: a, iov: iov, iovCapacity: 4))
        var received = [UInt8](repeating: 0, count: 64)
        #expect(read(b, &received, 64) == 17)
    }

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

    private static func frame(_ arena: FrameArena, _ count: Int, _ byte: UInt8) -> SharedBytes {
        arena.make(count: count) { $0.initializeMemory(as: UInt8.self, repeating: byte) }
    }

    @Test func framesCarvedOneAfterAnotherGoOutAsOneContiguousEntry() throws {
        let (a, b) = socketPair()
        defer { close(a); close(b) }
        let arena = FrameArena()
        var queue = OutboundQueue()
        let frames = (1...3).map { Self.frame(arena, 10 * Int($0), UInt8($0)) }
        for f in frames { queue.append(f) }
        #expect(queue.entryCount == 1)
        #expect(queue.byteCount == 60)
        #expect(queue.charge == FrameArena.chunkCapacity + OutboundQueue.entryCost)
        let iov = UnsafeMutablePointer<iovec>.allocate(capacity: 4)
        defer { iov.deallocate() }
        #expect(try queue.flush(fd: a, iov: iov, iovCapacity: 4))
        #expect(queue.isEmpty && queue.charge == 0)
        var buffer = [UInt8](repeating: 0, count: 128)
        let n = buffer.withUnsafeMutableBytes { read(b, $0.baseAddress, $0.count) }
        #expect(Array(buffer[..<n]) == frames.flatMap(\.array))
    }

    @Test func aQueueIsChargedForTheBuffersItKeepsAlive() {
        let arena = FrameArena()
        var queue = OutboundQueue()
        let first = Self.frame(arena, 10, 1)
        _ = Self.frame(arena, 10, 2)  // someone else's frame in between
        let third = Self.frame(arena, 10, 3)
        let ownBuffer = SharedBytes.copying([UInt8](repeating: 4, count: 100))
        queue.append(first)
        #expect(queue.charge == FrameArena.chunkCapacity + OutboundQueue.entryCost)
        queue.append(third)  // same chunk, not adjacent: one more entry, the chunk is already paid for
        #expect(queue.charge == FrameArena.chunkCapacity + 2 * OutboundQueue.entryCost)
        queue.append(ownBuffer)
        #expect(queue.charge == FrameArena.chunkCapacity + ownBuffer.bufferCapacity + 3 * OutboundQueue.entryCost)
        #expect(queue.entryCount == 3 && queue.byteCount == 120)
    }

    @Test func aChunkIsRewrittenOnlyOnceNobodyHoldsAViewIntoIt() {
        let arena = FrameArena(retiredLimit: 4)
        let held = Self.frame(arena, 100, 7)
        // Several chunks' worth of frames, each dropped at once, while `held` pins the first chunk.
        for i in 0..<(4 * FrameArena.chunkCapacity / 1000) {
            _ = Self.frame(arena, 1000, UInt8(truncatingIfNeeded: i))
        }
        #expect(held.array == [UInt8](repeating: 7, count: 100))
        #expect(arena.chunksAllocated == 2, "frames nobody holds leave their chunk free for the next ones")
        let stillHeld = Self.frame(arena, 100, 8)
        #expect(!stillHeld.isSameBuffer(as: held))
    }

    @Test func anUnreferencedChunkIsReusedFromItsFront() {
        let arena = FrameArena()
        let first = Self.frame(arena, 50, 1)
        let address = first.baseAddress
        _ = consume first
        let second = Self.frame(arena, 60, 2)
        #expect(second.baseAddress == address)
        #expect(second.array == [UInt8](repeating: 2, count: 60))
        #expect(arena.chunksAllocated == 1)
    }

    @Test func largeFramesGetTheirOwnBuffer() {
        let arena = FrameArena()
        let big = Self.frame(arena, FrameArena.largestCarvedFrame + 1, 9)
        let small = Self.frame(arena, 10, 1)
        #expect(!big.isSameBuffer(as: small))
        #expect(
            big.bufferCapacity >= FrameArena.largestCarvedFrame + 1 && big.bufferCapacity < FrameArena.chunkCapacity)
    }

    /// Frames keep extending an entry that the socket has only partly taken: the byte stream must
    /// still be every frame once, in order.
    @Test func extendingAPartlyWrittenEntryKeepsTheStreamIntact() throws {
        let (a, b) = socketPair()
        defer { close(a); close(b) }
        var size: Int32 = 4096
        setsockopt(a, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        let arena = FrameArena()
        var queue = OutboundQueue()
        let iov = UnsafeMutablePointer<iovec>.allocate(capacity: 8)
        defer { iov.deallocate() }
        var expected: [UInt8] = []
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 3000)
        var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next(_ bound: Int) -> Int {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return Int((seed >> 33) % UInt64(bound))
        }
        for round in 0..<400 {
            for _ in 0..<(1 + next(6)) {
                let count = 1 + next(FrameArena.largestCarvedFrame)
                let byte = UInt8(truncatingIfNeeded: round &* 31 &+ count)
                let frame = Self.frame(arena, count, byte)
                expected += frame.array
                queue.append(frame)
            }
            _ = try queue.flush(fd: a, iov: iov, iovCapacity: 8)
            // Read only part of what is there, so that writes stay partial.
            let n = buffer.withUnsafeMutableBytes { read(b, $0.baseAddress, 1 + next($0.count)) }
            if n > 0 { received += buffer[..<n] }
        }
        while !(try queue.flush(fd: a, iov: iov, iovCapacity: 8)) || received.count < expected.count {
            let n = buffer.withUnsafeMutableBytes { read(b, $0.baseAddress, $0.count) }
            if n > 0 { received += buffer[..<n] }
        }
        #expect(queue.isEmpty && queue.charge == 0)
        #expect(received.count == expected.count)
        #expect(received == expected)
    }
}
