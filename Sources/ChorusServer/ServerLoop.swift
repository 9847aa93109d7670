import CChorusLinux
import ChorusDeflate
import ChorusLoop
import ChorusWebSocket
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One event loop's share of the server: its listener, its connections, its rooms.
///
/// Readiness is level-triggered: a readable socket is read once per iteration (fairness without
/// bookkeeping), and EPOLLOUT is registered only while a socket's send buffer is full, which
/// happens only for slow consumers. Writes are corked: whatever is queued for a connection during
/// an iteration goes out in one `writev` at the end of it.
///
/// This file is the driver: state, the epoll callbacks and the end of an iteration. Each job has a
/// file of its own: `+Accept` (accepting, slots), `+Reading` (buffers, HTTP head and body, frame
/// events), `+RateLimits`, `+HTTP` (plain requests and the upgrade, routed by `HTTPRouter`),
/// `+Fanout` (emits, walked by `Fanout`), `+Sending` (direct sends, flush, EPOLLOUT), `+Closing`
/// (performing what `ConnectionLifecycle` decides), `+Timers`, `+Shutdown` (loop-queue bound,
/// graceful stop). What a peer is told when the server closes or refuses is in `ServerError.swift`.
/// Unchecked Sendable: its state is touched only on its loop's thread; other threads reach it through
/// `loop.execute` and the atomic `queuedEmits`.
final class ServerLoop: EventLoopDelegate, @unchecked Sendable {
    unowned let server: WebSocketServer
    let configuration: ServerConfiguration
    let application: any ServerApplication
    let loop: EventLoop
    let index: Int
    let logger: Logger
    @exclusivity(unchecked) var listenerFD: Int32 = -1

    // Connections by slot; a token carries the slot and its generation so a stale event is ignored.
    @exclusivity(unchecked) var slots: [Connection?] = []
    @exclusivity(unchecked) var generations: [UInt32] = []
    @exclusivity(unchecked) var freeSlots: [Int32] = []
    /// Open (upgraded) connections: the target of emits to everyone.
    @exclusivity(unchecked) var openConnections = ContiguousArray<Connection>()
    @exclusivity(unchecked) var rooms = RoomRegistry()
    /// The room walk, backpressure and the flush list (Fanout.swift).
    @exclusivity(unchecked) var fanout: Fanout
    /// Plain requests' routes (HTTPRouter.swift).
    let router: HTTPRouter
    @exclusivity(unchecked) var flushing: [Connection] = []
    /// Emits made on this loop during the current iteration, for the other loops.
    @exclusivity(unchecked) var forwardBatch: [PendingEmit] = []
    /// Connections that stopped at `maxMessagesPerRead` with complete frames still buffered: resumed
    /// at the end of the iteration and in the next ones, before their sockets are read again.
    @exclusivity(unchecked) var backlogged: [Connection] = []
    /// The listener is out of epoll after EMFILE/ENFILE until the next tick (no busy loop).
    @exclusivity(unchecked) var acceptPaused = false
    /// When the tick last let idle connections' queues give their storage back.
    @exclusivity(unchecked) var lastQueueTrim: UInt64 = 0

    let readBuffer: UnsafeMutableRawPointer
    let readBufferSize: Int
    let iov: UnsafeMutablePointer<iovec>
    let iovCapacity: Int

    /// This loop's compressor for shared frames (no context takeover, reset after every message).
    let sharedDeflater: PerMessageDeflater?
    @exclusivity(unchecked) var compressScratch: [UInt8] = []
    /// Where this loop's frames are encoded: small ones back to back in reused chunks, so that
    /// steady-state sends allocate nothing and a burst of broadcasts is one `iovec` per recipient.
    let frameArena = FrameArena()
    /// The compressed variants of broadcasts, apart so they too lie back to back.
    let compressedFrameArena = FrameArena()

    @exclusivity(unchecked) var stats = ServerStats()
    /// Broadcasts handed to this loop by others and not yet delivered (`maxLoopQueue`); those it
    /// refused since the last iteration; whether its connections must be shed (`close` policy).
    let queuedEmits = Atomic<Int>(0)
    let refusedEmits = Atomic<Int>(0)
    let shedRequested = Atomic<Bool>(false)
    /// Socket events handled in the current iteration (for `ServerStats.eventsPerIteration`).
    @exclusivity(unchecked) var iterationEvents = 0
    @exclusivity(unchecked) var shuttingDown = false

    static let listenerToken = UInt64.max - 2
    /// Leftovers up to this size are copied in front of the shared read buffer; beyond it the
    /// connection reads straight into its own buffer (no quadratic copying of a slowly arriving frame).
    static let maxPendingInSharedBuffer = 16 * 1024

    init(
        server: WebSocketServer, index: Int, configuration: ServerConfiguration, application: any ServerApplication,
        logger: Logger
    ) throws(IOError) {
        self.server = server
        self.index = index
        self.configuration = configuration
        self.application = application
        self.logger = logger
        fanout = Fanout(maxBackpressure: configuration.maxBackpressure, policy: configuration.backpressurePolicy)
        router = HTTPRouter(maxBodySize: configuration.maxBodySize, application: application)
        loop = try EventLoop(index: index, tickNanoseconds: configuration.tickNanoseconds)
        readBufferSize = configuration.readBufferSize
        readBuffer = .allocate(byteCount: readBufferSize, alignment: 16)
        iovCapacity = min(Socket.maxIOVecs, 1024)
        iov = .allocate(capacity: iovCapacity)
        sharedDeflater = configuration.deflate.makeSharedDeflater()
    }

    deinit {
        readBuffer.deallocate()
        iov.deallocate()
    }

    func listen(address: SocketAddress) throws(IOError) {
        listenerFD = try Socket.listen(address: address, backlog: configuration.backlog, reusePort: true)
        try loop.epoll.add(listenerFD, events: .readable, token: Self.listenerToken)
    }

    func closeListener() {
        if listenerFD >= 0 {
            Socket.close(listenerFD)
            listenerFD = -1
        }
    }

    func run() {
        // The server outlives its loop threads, so the unretained pointer stays valid while set.
        chorus_set_current_loop(Unmanaged.passUnretained(self).toOpaque())
        defer { chorus_set_current_loop(nil) }
        stats.threadID = Self.kernelThreadID()
        do {
            try loop.run(delegate: self)
        } catch {
            logger.critical("event loop \(index) failed: \(error)")
        }
        // Whatever is left (forced stop) is closed without ceremony.
        for case let connection? in slots { finalize(connection) }
        if listenerFD >= 0 { Socket.close(listenerFD) }
    }

    /// The loop of `server` running on the calling thread, if any (several servers may share a
    /// process, e.g. in tests, so the loop found must belong to the one asking).
    static func current(of server: WebSocketServer) -> ServerLoop? {
        guard let pointer = chorus_current_loop() else { return nil }
        let loop = Unmanaged<ServerLoop>.fromOpaque(pointer).takeUnretainedValue()
        return loop.server === server ? loop : nil
    }

    /// This thread's kernel id, from /proc/thread-self ("PID/task/TID"); once per loop, at start.
    static func kernelThreadID() -> Int32 {
        var buffer = [CChar](repeating: 0, count: 64)
        let n = readlink("/proc/thread-self", &buffer, buffer.count - 1)
        guard n > 0 else { return 0 }
        let path = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return path.split(separator: "/").last.flatMap { Int32($0) } ?? 0
    }

    // MARK: EventLoopDelegate

    func eventLoop(_ loop: EventLoop, ready token: UInt64, events: Epoll.Events) {
        iterationEvents &+= 1
        if token == Self.listenerToken {
            acceptConnections()
            return
        }
        let slot = Int(UInt32(truncatingIfNeeded: token))
        guard slot < slots.count, let connection = slots[slot], connection.id.token == token else { return }
        if events.contains(.writable) && connection.awaitingWritable {
            flush(connection)
            if case .closed = connection.state { return }
        }
        if events.contains(.readable) || events.contains(.hangup) || events.contains(.error) {
            readFrom(connection)
        }
    }

    func eventLoopTick(_ loop: EventLoop, now: UInt64) {
        if acceptPaused && listenerFD >= 0 {
            acceptPaused = false
            try? loop.epoll.add(listenerFD, events: .readable, token: Self.listenerToken)
        }
        sweepTimers(now: now)
        application.tick(loopIndex: index, now: now)
    }

    func eventLoopDidFinishIteration(_ loop: EventLoop) {
        if !backlogged.isEmpty {
            let resuming = backlogged
            backlogged = []
            for connection in resuming where connection.hasBacklog { resumeBacklog(connection) }
            // Still more: the loop must come round again even if no socket is ready.
            if !backlogged.isEmpty { loop.execute {} }
        }
        while let connection = fanout.backpressureCloses.popLast() {
            connection.backpressureClosePending = false
            close(connection, .backpressureLimit)
        }
        // Other loops first, so they write in parallel with this loop's flush. Flushing can produce
        // more (a failed write closes a connection, whose application callback may emit): repeat
        // until both are quiet.
        while !forwardBatch.isEmpty || !fanout.dirty.isEmpty {
            if !forwardBatch.isEmpty {
                server.forward(forwardBatch, from: self)
                forwardBatch = []
            }
            swap(&fanout.dirty, &flushing)
            for connection in flushing {
                connection.isDirty = false
                // A full socket is flushed by its EPOLLOUT, not retried every iteration.
                if !connection.awaitingWritable { flush(connection) }
            }
            flushing.removeAll(keepingCapacity: true)
        }
        stats.rooms = rooms.count
        fanout.record(into: &stats)
        stats.loopQueueDropped &+= refusedEmits.exchange(0, ordering: .relaxed)
        recordIteration()
        server.publish(stats, loop: index)
    }

    /// One iteration's events and busy time into the histograms: a clock read and a few adds per
    /// iteration, nothing per event or per frame.
    func recordIteration() {
        let busy = Int(truncatingIfNeeded: monotonicNanoseconds() &- loop.now)
        stats.iterations &+= 1
        stats.events &+= iterationEvents
        stats.eventsPerIteration[ServerStats.Histograms.eventsIndex(iterationEvents)] &+= 1
        stats.busyNanoseconds &+= busy
        stats.iterationTime[ServerStats.Histograms.iterationTimeIndex(busy)] &+= 1
        iterationEvents = 0
    }

    /// An HTTP request refused before any upgrade, by status.
    func countRefusedRequest(_ status: Int) {
        stats.handshakesFailed[ServerStats.FailureStatuses.index(status)] &+= 1
    }

    /// This loop's largest rooms (name, members), at most `limit` of them (on the loop's thread).
    func roomSizes(limit: Int) -> [(String, Int)] {
        rooms.rooms.map { ($0.key, $0.value.count) }
            .sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }.prefix(limit).map { $0 }
    }

    /// Compresses a broadcast once on this thread's compressor.
    func makeFrame(_ opcode: WebSocketOpcode, _ payload: UnsafeRawBufferPointer, compress: Bool) -> OutgoingFrame {
        guard compress, sharedDeflater != nil, !opcode.isControl else {
            return OutgoingFrame.make(
                opcode, payload, deflater: nil, scratch: &compressScratch, arenas: (frameArena, compressedFrameArena))
        }
        let started = monotonicNanoseconds()
        let frame = OutgoingFrame.make(
            opcode, payload, deflater: sharedDeflater, scratch: &compressScratch,
            arenas: (frameArena, compressedFrameArena))
        countCompression(payload.count, started: started)
        return frame
    }

    /// One compression (once per broadcast, not per recipient): what went in, what came out
    /// (left in `compressScratch`), and the time it took.
    func countCompression(_ bytesIn: Int, started: UInt64) {
        stats.compressionBytesIn &+= bytesIn
        stats.compressionBytesOut &+= compressScratch.count
        stats.compressionNanoseconds &+= Int(truncatingIfNeeded: monotonicNanoseconds() &- started)
    }
}
