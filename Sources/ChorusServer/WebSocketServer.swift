import ChorusDeflate
import ChorusLoop
import ChorusWebSocket
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The server: N event loops, each with its own SO_REUSEPORT listener, its own connections and its
/// own share of every room. An emit is encoded once and handed to every loop by one queue entry.
/// Unchecked Sendable: configuration and loops are fixed once started; the counters are atomics,
/// the hooks (`operatorRoutes`...) are set before start, and per-connection state lives on its loop.
public final class WebSocketServer: @unchecked Sendable {
    public let configuration: ServerConfiguration
    public let application: any ServerApplication
    public let logger: Logger
    @exclusivity(unchecked) private var loops: [ServerLoop] = []
    @exclusivity(unchecked) private var threads: [LoopThread] = []
    @exclusivity(unchecked) public private(set) var localAddress: SocketAddress?

    private let connectionCount = Atomic<Int>(0)
    private let perAddress = Mutex<[[UInt8]: Int]>([:])
    /// Open connections that negotiated permessage-deflate: no compression work when there are none.
    let compressionClients = Atomic<Int>(0)
    private let loopStats: Mutex<[ServerStats]>
    private let stopped = Atomic<Bool>(false)
    /// A compressor for emits from threads that are not loops (embedders, tests).
    private let foreignDeflater: ForeignDeflater

    public init(
        configuration: ServerConfiguration, application: any ServerApplication, logger: Logger = Logger(label: "chorus")
    ) {
        self.configuration = configuration
        self.application = application
        self.logger = logger
        loopStats = Mutex(Array(repeating: ServerStats(), count: max(configuration.threads, 1)))
        foreignDeflater = ForeignDeflater(configuration.deflate.makeSharedDeflater())
    }

    /// Binds every loop's listener and starts the loop threads. Returns once the server accepts.
    /// Throws `ServerConfigurationError` for a configuration out of its limits, `IOError` when a
    /// listener cannot be bound.
    public func start() throws {
        try configuration.validate()
        var address = try SocketAddress(host: configuration.host, port: configuration.port)
        // A failed start must not leave SO_REUSEPORT listeners behind: the kernel would keep
        // handing them a share of new connections that nobody accepts.
        var started = false
        defer { if !started { for loop in loops { loop.closeListener() }; loops.removeAll() } }
        for index in 0..<max(configuration.threads, 1) {
            let loop = try ServerLoop(
                server: self, index: index, configuration: configuration, application: application, logger: logger)
            try loop.listen(address: address)
            if index == 0 {
                // With port 0 the first bind picks the port; the other loops share it.
                address = try Socket.localAddress(loop.listenerFD)
                localAddress = address
            }
            loops.append(loop)
        }
        started = true
        for loop in loops {
            threads.append(LoopThread(name: "chorus-loop-\(loop.index)") { loop.run() })
        }
        application.serverDidStart(self)
    }

    public var port: Int { localAddress?.port ?? 0 }

    /// Graceful shutdown: stop accepting, send 1001 to every client, wait up to `shutdownDrain`
    /// seconds for them to close, then stop the loops. Safe from any thread; returns when done.
    public func shutdown() {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        for loop in loops { loop.loop.execute { loop.beginShutdown() } }
        let deadline = monotonicNanoseconds() + UInt64(configuration.shutdownDrain * 1e9)
        while connectionCount.load(ordering: .relaxed) > 0 && monotonicNanoseconds() < deadline {
            usleep(5_000)
        }
        for loop in loops { loop.loop.stop() }
        for thread in threads { thread.join() }
        logger.info("stopped", metadata: ["connections-left": "\(connectionCount.load(ordering: .relaxed))"])
    }

    // MARK: Emitting

    /// Sends one message to `target`. Encoded (and compressed) once; each loop gets one queue
    /// entry; each recipient a reference. Safe from any thread.
    public func emit(_ opcode: WebSocketOpcode, _ payload: UnsafeRawBufferPointer, to target: BroadcastTarget) {
        emit(makeFrame(opcode, payload), to: target)
    }

    public func emit(text: String, to target: BroadcastTarget) {
        var text = text
        text.withUTF8 { emit(.text, UnsafeRawBufferPointer($0), to: target) }
    }

    public func emit(binary: [UInt8], to target: BroadcastTarget) {
        binary.withUnsafeBytes { emit(.binary, $0, to: target) }
    }

    /// Sends a pre-encoded frame to `target`. Safe from any thread.
    public func emit(_ frame: OutgoingFrame, to target: BroadcastTarget) {
        dispatch(.frame(frame, target))
    }

    /// Sends frames that must arrive together and in order (e.g. a Socket.IO binary event and its
    /// attachments): each recipient gets all of them back to back, or none under backpressure.
    public func emit(frames: [OutgoingFrame], to target: BroadcastTarget) {
        dispatch(.group(frames, target))
    }

    /// Like `emit(frames:to:)`, but through every loop's task queue, never inline on the calling
    /// loop. Callers that need one order across loops (connection state recovery numbers its
    /// broadcasts) call it under their own lock: each loop's queue is first in, first out, so every
    /// connection then receives those frames in the order they were numbered. Safe from any thread.
    public func emitInOrder(frames: [OutgoingFrame], to target: BroadcastTarget) {
        let emit: PendingEmit = frames.count == 1 ? .frame(frames[0], target) : .group(frames, target)
        for loop in loops { hand([emit], to: loop) }
    }

    /// Queues broadcasts for `loop` within `maxLoopQueue` (one atomic add per loop per batch, not
    /// per message or recipient); beyond it the loop refuses them (`ServerLoop.refuseQueued`).
    private func hand(_ emits: [PendingEmit], to loop: ServerLoop) {
        let limit = configuration.maxLoopQueue
        guard limit > 0 else {
            loop.loop.execute { for emit in emits { loop.deliver(emit) } }
            return
        }
        let count = emits.count
        if loop.queuedEmits.wrappingAdd(count, ordering: .relaxed).newValue > limit {
            loop.queuedEmits.subtract(count, ordering: .relaxed)
            loop.refuseQueued(count)
            return
        }
        loop.loop.execute {
            loop.queuedEmits.subtract(count, ordering: .relaxed)
            for emit in emits { loop.deliver(emit) }
        }
    }

    /// From a loop: delivered to its own connections now, and handed to the other loops in one batch
    /// at the end of the iteration (so they cork as many frames per write as this loop does). From
    /// any other thread: one task per loop.
    private func dispatch(_ emit: PendingEmit) {
        if let current = ServerLoop.current(of: self) {
            current.deliver(emit)
            if loops.count > 1 { current.forwardLater(emit) }
            return
        }
        for loop in loops { hand([emit], to: loop) }
    }

    /// Hands a loop's batch of emits to every other loop: one queue entry each.
    func forward(_ batch: [PendingEmit], from origin: ServerLoop) {
        for loop in loops where loop !== origin { hand(batch, to: loop) }
    }

    /// Encodes a message once, compressed too if any client may use it.
    public func makeFrame(_ opcode: WebSocketOpcode, _ payload: UnsafeRawBufferPointer) -> OutgoingFrame {
        let compress =
            configuration.deflate.mode != .off
            && payload.count >= configuration.deflate.threshold
            && compressionClients.load(ordering: .relaxed) > 0
        if let loop = ServerLoop.current(of: self) {
            return loop.makeFrame(opcode, payload, compress: compress)
        }
        return foreignDeflater.make(opcode, payload, compress: compress)
    }

    /// The index of the loop running the calling thread, nil off the loops (a thread-local read):
    /// for counters an application keeps per loop in plain integers.
    public var currentLoopIndex: Int? { ServerLoop.current(of: self)?.index }

    /// The number of event loops (0 before `start`).
    public var loopCount: Int { loops.count }

    /// Loop `index`'s event loop, to run work there (`execute`) — e.g. a Redis connection driven
    /// by that loop, whose incoming broadcasts are then framed on a loop and forwarded to the
    /// others in one batch, as a local emit is.
    public func eventLoop(_ index: Int) -> EventLoop { loops[index].loop }

    /// Answers an HTTP request deferred by `ServerApplication.handleHTTPLater`. Safe from any thread.
    func respondLater(_ id: ConnectionID, _ response: HTTPResponse) {
        guard Int(id.loop) < loops.count else { return }
        let loop = loops[Int(id.loop)]
        loop.loop.execute { loop.connection(id).map { loop.respondLater($0, response) } }
    }

    /// Runs `body` on the loop that owns `connection`, if it is still there.
    public func withConnection(_ id: ConnectionID, _ body: @escaping @Sendable (Connection) -> Void) {
        guard Int(id.loop) < loops.count else { return }
        let loop = loops[Int(id.loop)]
        loop.loop.execute { loop.connection(id).map(body) }
    }

    /// Runs `body` on loop `index` (a connection's `id.loop`) whether or not the connection is still
    /// there: to finish, in order, work a connection started (a proxied chat message is broadcast
    /// even when its sender left before the backend answered).
    public func execute(onLoop index: Int, _ body: @escaping @Sendable () -> Void) {
        guard index >= 0, index < loops.count else { return }
        loops[index].loop.execute(body)
    }

    // MARK: Admission and accounting

    /// nil to admit, or the reason for refusing.
    func admit(_ address: SocketAddress) -> RequestRefusal? {
        let count = connectionCount.wrappingAdd(1, ordering: .relaxed).newValue
        if configuration.maxConnections > 0 && count > configuration.maxConnections {
            connectionCount.subtract(1, ordering: .relaxed)
            return .connectionLimit
        }
        if configuration.maxConnectionsPerIP > 0 {
            let key = address.hostKey
            let admitted = perAddress.withLock { table -> Bool in
                let current = table[key, default: 0]
                if current >= configuration.maxConnectionsPerIP { return false }
                table[key] = current + 1
                return true
            }
            if !admitted {
                connectionCount.subtract(1, ordering: .relaxed)
                return .perAddressConnectionLimit
            }
        }
        return nil
    }

    func release(_ address: SocketAddress) {
        connectionCount.subtract(1, ordering: .relaxed)
        if configuration.maxConnectionsPerIP > 0 {
            let key = address.hostKey
            perAddress.withLock { table in
                let current = table[key, default: 1] - 1
                table[key] = current > 0 ? current : nil
            }
        }
    }

    func publish(_ stats: ServerStats, loop: Int) {
        loopStats.withLock { $0[loop] = stats }
    }

    /// Counters summed over all loops (each loop publishes once per iteration).
    public var stats: ServerStats {
        loopStats.withLock { all in
            var total = ServerStats()
            for s in all { total.add(s) }
            return total
        }
    }

    /// Each loop's counters as last published, by loop index.
    public var statsPerLoop: [ServerStats] { loopStats.withLock { $0 } }

    /// Routes answered before the application's (`/metrics`, `/dashboard`): set before `start()`.
    /// Runs on a loop thread; nil (the default) hands every request to the application.
    @exclusivity(unchecked) public var operatorRoutes: (@Sendable (HTTPRequest, WebSocketServer) -> HTTPResponse?)?

    /// The largest rooms by members, summed over loops, from each loop's own registry (read on its
    /// thread). `completion` runs once, on the last loop to answer, with at most `limit` rooms.
    public func largestRooms(limit: Int, completion: @escaping @Sendable ([(name: String, members: Int)]) -> Void) {
        let collector = RoomSizeCollector(expected: loops.count, limit: limit, completion: completion)
        if loops.isEmpty { collector.finish() }
        for loop in loops {
            loop.loop.execute { collector.add(loop.roomSizes(limit: limit)) }
        }
    }

    public var openConnections: Int { connectionCount.load(ordering: .relaxed) }
}

/// Gathers the loops' room sizes for `largestRooms`.
private final class RoomSizeCollector: Sendable {
    private let state: Mutex<(sizes: [String: Int], pending: Int)>
    private let limit: Int
    private let completion: @Sendable ([(name: String, members: Int)]) -> Void

    init(expected: Int, limit: Int, completion: @escaping @Sendable ([(name: String, members: Int)]) -> Void) {
        state = Mutex(([:], expected))
        self.limit = limit
        self.completion = completion
    }

    func add(_ sizes: [(String, Int)]) {
        let done = state.withLock { state -> Bool in
            for (name, members) in sizes { state.sizes[name, default: 0] += members }
            state.pending -= 1
            return state.pending == 0
        }
        if done { finish() }
    }

    func finish() {
        let sizes = state.withLock { $0.sizes }
        let top = sizes.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(limit)
        completion(top.map { (name: $0.key, members: $0.value) })
    }
}

/// The compressor for emits from threads that are not loops, behind a lock (never on a loop's path).
/// Unchecked Sendable: the zlib stream and the scratch buffer are used only while `lock` is held.
private final class ForeignDeflater: @unchecked Sendable {
    private let lock = Mutex<Void>(())
    private let deflater: PerMessageDeflater?
    @exclusivity(unchecked) private var scratch: [UInt8] = []

    init(_ deflater: PerMessageDeflater?) { self.deflater = deflater }

    func make(_ opcode: WebSocketOpcode, _ payload: UnsafeRawBufferPointer, compress: Bool) -> OutgoingFrame {
        lock.withLock { _ in
            OutgoingFrame.make(opcode, payload, deflater: compress ? deflater : nil, scratch: &scratch)
        }
    }
}

/// An emit on its way to a loop.
enum PendingEmit: Sendable {
    case frame(OutgoingFrame, BroadcastTarget)
    case group([OutgoingFrame], BroadcastTarget)
}
