// Over the ~400-line guide: the load generator's connection state machine and its worker loop,
// kept together for the receive path the measurements depend on (the bench, not the product).
import CChorusLinux
import ChorusLoop
import Histogram
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// What the load is. `window` > 0: closed loop; else open loop at `rate` messages/s in total.
public struct LoadPlan: Sendable {
    public var url: WebSocketURL
    public var receivers: Int
    public var publishers: Int
    public var size: Int
    public var rate: Double
    public var window: Int
    public var duration: Double
    public var warmup: Double
    public var drain: Double
    public var threads: Int
    public var deflate: Bool
    public var binary: Bool
    public var sourceAddresses: [String]
    public var connectRate: Double
    public var connectTimeout: Double
    /// Closed loop: a window that makes no progress this long is abandoned (lost messages).
    public var stallTimeout: Double
    /// Messages per publisher at most (0: no limit, the duration decides).
    public var messages: Int
    /// Socket.IO mode (`chorus-bench socketio`): Engine.IO v4 / Socket.IO v5 over WebSocket, messages
    /// sent as `message:send` to a conversation room, received as `message:new`. Nil: raw WebSocket.
    public var socketIO: SocketIOPlan?
    /// More servers (nodes of one cluster): connection `id` goes to server `id % (1 + count)`, the
    /// first being `url`, so publishers and receivers are spread over the nodes.
    public var alsoURLs: [WebSocketURL] = []

    public init(
        url: WebSocketURL, receivers: Int, publishers: Int, size: Int, rate: Double = 0, window: Int = 0,
        duration: Double, warmup: Double, drain: Double = 3, threads: Int = 1, deflate: Bool = false,
        binary: Bool = false,
        sourceAddresses: [String] = [], connectRate: Double = 5000, connectTimeout: Double = 60,
        stallTimeout: Double = 2,
        messages: Int = 0, socketIO: SocketIOPlan? = nil
    ) {
        self.url = url; self.receivers = receivers; self.publishers = publishers; self.size = size
        self.rate = rate; self.window = window; self.duration = duration; self.warmup = warmup; self.drain = drain
        self.threads = max(1, threads); self.deflate = deflate; self.binary = binary
        self.sourceAddresses = sourceAddresses; self.connectRate = connectRate; self.connectTimeout = connectTimeout
        self.stallTimeout = stallTimeout
        self.messages = messages
        self.socketIO = socketIO
    }

    /// "fanout" or "socketio".
    public var modeName: String { socketIO == nil ? "fanout" : "socketio" }
}

/// Shared, set-once-then-read run timing. Workers read it after `go` (acquire).
/// Unchecked Sendable: the coordinating thread writes the plain fields before it sets `go`
/// (release); workers read them only after seeing `go` (acquire).
final class RunControl: @unchecked Sendable {
    let go = Atomic<Bool>(false)
    @exclusivity(unchecked) var sendStart: UInt64 = 0
    @exclusivity(unchecked) var window = MeasureWindow(start: 0, end: 0)
    @exclusivity(unchecked) var tracker: WindowTracker?
    @exclusivity(unchecked) var publisherHomes: [(Worker, Connection)] = []
    @exclusivity(unchecked) var connectStart: UInt64 = 0
}

/// Counters a worker publishes for the coordinating thread while it runs.
final class Progress: Sendable {
    let opened = Atomic<Int>(0)
    let openedPublishers = Atomic<Int>(0)
    let failed = Atomic<Int>(0)
    let receivedInWindow = Atomic<UInt64>(0)
    let sentInWindow = Atomic<UInt64>(0)
    let closed = Atomic<Int>(0)
    /// Every delivery so far (warm-up included), for the progress line's deliveries/s.
    let received = Atomic<UInt64>(0)
    /// This worker's p99 latency of the measured deliveries so far (ns), refreshed once a second.
    let p99Nanoseconds = Atomic<UInt64>(0)
}

enum Role { case receiver, publisher(Int) }

/// Unchecked Sendable: each connection belongs to one worker and is touched only on its thread.
final class Connection: @unchecked Sendable {
    enum State { case idle, connecting, handshaking, open, closed }
    /// Socket.IO mode, once the WebSocket is open: waiting for the Engine.IO open packet, for the
    /// namespace CONNECT reply, for the join's ack; then ready.
    enum SIOState { case off, awaitOpen, awaitConnect, awaitJoin, ready }
    let index: Int
    /// Over all workers (Socket.IO mode: the user id `u<id>`).
    let id: Int
    let role: Role
    @exclusivity(unchecked) var fd: Int32 = -1
    @exclusivity(unchecked) var state = State.idle
    @exclusivity(unchecked) var head: [UInt8] = []
    @exclusivity(unchecked) var reader = MessageReader()
    @exclusivity(unchecked) var out = OutboundQueue()
    @exclusivity(unchecked) var staging: [UInt8] = []
    @exclusivity(unchecked) var dirty = false
    @exclusivity(unchecked) var writable = false
    @exclusivity(unchecked) var sent: UInt64 = 0
    @exclusivity(unchecked) var sentInWindow: UInt64 = 0
    @exclusivity(unchecked) var lastCompleted: UInt64 = 0
    @exclusivity(unchecked) var lastProgress: UInt64 = 0
    @exclusivity(unchecked) var needsPump = false
    let wake = Atomic<Bool>(false)
    @exclusivity(unchecked) var connectStartedAt: UInt64 = 0
    @exclusivity(unchecked) var deflate = false
    /// Counted as open: the WebSocket is up (raw mode), or the conversation is joined (Socket.IO).
    @exclusivity(unchecked) var ready = false
    @exclusivity(unchecked) var sio = SIOState.off
    @exclusivity(unchecked) var pingInterval = 0

    init(index: Int, id: Int, role: Role) {
        self.index = index
        self.id = id
        self.role = role
    }

    var isPublisher: Bool { if case .publisher = role { true } else { false } }
}

/// Per-worker results, merged after the loops stop.
public struct WorkerStats: Sendable {
    public var latency = LatencyRecorder()
    public var receivedInWindow: UInt64 = 0
    public var payloadBytes: UInt64 = 0
    public var wireBytes: UInt64 = 0
    public var compressedMessages: UInt64 = 0
    public var protocolErrors = 0
    public var connectFailures = 0
    public var handshakeFailures = 0
    public var serverCloses = 0
    public var disconnects = 0
    public var deflateAccepted = 0
    public var sentTotal: UInt64 = 0
    public var sentInWindow: UInt64 = 0
    public var stalls = 0
    public var backlogSkips: UInt64 = 0
    public var handshakeLatency = LatencyRecorder()
    /// With several servers (`--also-url`): the receivers' latency per server, in URL order.
    public var latencyByServer: [LatencyRecorder] = []
    public var firstError: String?

    mutating func merge(_ o: WorkerStats) {
        latency.merge(o.latency)
        if latencyByServer.count < o.latencyByServer.count {
            latencyByServer += Array(
                repeating: LatencyRecorder(), count: o.latencyByServer.count - latencyByServer.count)
        }
        for (i, l) in o.latencyByServer.enumerated() { latencyByServer[i].merge(l) }
        handshakeLatency.merge(o.handshakeLatency)
        receivedInWindow += o.receivedInWindow; payloadBytes += o.payloadBytes; wireBytes += o.wireBytes
        compressedMessages += o.compressedMessages; protocolErrors += o.protocolErrors
        connectFailures += o.connectFailures; handshakeFailures += o.handshakeFailures
        serverCloses += o.serverCloses; disconnects += o.disconnects; deflateAccepted += o.deflateAccepted
        sentTotal += o.sentTotal; sentInWindow += o.sentInWindow; stalls += o.stalls; backlogSkips += o.backlogSkips
        if firstError == nil { firstError = o.firstError }
    }
}

/// One event loop on one thread owning a slice of the connections.
/// Unchecked Sendable: its state is touched only on its own loop's thread; the coordinator talks to
/// it through `loop.execute` and the atomics of `Progress`.
final class Worker: EventLoopDelegate, @unchecked Sendable {
    let loop: EventLoop
    let plan: LoadPlan
    let control: RunControl
    let servers: [SocketAddress]
    let sources: [SocketAddress]
    @exclusivity(unchecked) var conns: [Connection] = []
    @exclusivity(unchecked) var publishers: [Connection] = []
    @exclusivity(unchecked) var connectQueue = 0
    @exclusivity(unchecked) var connectsStarted = 0
    @exclusivity(unchecked) var inProgress = 0
    let maxInProgress = 512
    @exclusivity(unchecked) var sourceCursor = 0
    @exclusivity(unchecked) var stats = WorkerStats()
    let progress = Progress()
    let readBuffer: UnsafeMutableRawBufferPointer
    let payloadBuffer: UnsafeMutableRawBufferPointer
    /// Socket.IO mode: a whole `message:send` packet; the content (at `sioContentOffset`) is rewritten per message.
    let sioFrame: UnsafeMutableRawBufferPointer
    let sioContentOffset: Int
    let iov: UnsafeMutablePointer<iovec>
    @exclusivity(unchecked) var dirty: [Connection] = []
    @exclusivity(unchecked) var rng = FastRandom()
    @exclusivity(unchecked) var started = false
    @exclusivity(unchecked) var measure = MeasureWindow(start: 0, end: 0)
    @exclusivity(unchecked) var tracker: WindowTracker?
    /// `tracker`'s counters, read per delivery.
    @exclusivity(unchecked) var counters: WindowTracker.Counters?
    let share: Double
    @exclusivity(unchecked) var opened = 0
    @exclusivity(unchecked) var failed = 0
    /// Every delivery, warm-up included (`progress.received`).
    @exclusivity(unchecked) var received: UInt64 = 0
    /// When the p99 is next read from the histogram for `progress` (once a second, not per delivery).
    @exclusivity(unchecked) var nextPercentileAt: UInt64 = 0

    init(
        index: Int, plan: LoadPlan, control: RunControl, servers: [SocketAddress], sources: [SocketAddress],
        share: Double
    ) throws(IOError) {
        loop = try EventLoop(index: index, tickNanoseconds: 1_000_000, eventBatch: 1024)
        self.plan = plan
        self.control = control
        self.servers = servers
        self.sources = sources
        if servers.count > 1 { stats.latencyByServer = Array(repeating: LatencyRecorder(), count: servers.count) }
        self.share = share
        readBuffer = .allocate(byteCount: 256 * 1024, alignment: 16)
        payloadBuffer = .allocate(byteCount: max(plan.size, 64), alignment: 16)
        if let sio = plan.socketIO {
            let (prefix, suffix) = SocketIOClient.sendFraming(conversation: sio.conversation)
            let frame = UnsafeMutableRawBufferPointer.allocate(
                byteCount: prefix.count + plan.size + suffix.count, alignment: 16)
            prefix.withUnsafeBytes { frame.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: prefix.count) }
            suffix.withUnsafeBytes {
                (frame.baseAddress! + prefix.count + plan.size).copyMemory(
                    from: $0.baseAddress!, byteCount: suffix.count)
            }
            sioFrame = frame
            sioContentOffset = prefix.count
        } else {
            sioFrame = .allocate(byteCount: 0, alignment: 16)
            sioContentOffset = 0
        }
        iov = .allocate(capacity: 64)
        sourceCursor = index
    }

    deinit {
        readBuffer.deallocate()
        payloadBuffer.deallocate()
        sioFrame.deallocate()
        iov.deallocate()
    }

    func fail(_ message: @autoclosure () -> String) {
        if stats.firstError == nil { stats.firstError = message() }
    }

    // MARK: connecting

    func startConnects(now: UInt64) {
        let elapsed = Double(now &- control.connectStart) / 1e9
        let due = min(conns.count, Int(elapsed * plan.connectRate * share) + 1)
        while connectsStarted < due && inProgress < maxInProgress {
            let c = conns[connectsStarted]
            connectsStarted += 1
            startConnect(c, now: now)
        }
    }

    func startConnect(_ c: Connection, now: UInt64) {
        var attempts = max(1, sources.count)
        while attempts > 0 {
            attempts -= 1
            let source: SocketAddress? = sources.isEmpty ? nil : sources[sourceCursor % sources.count]
            do {
                let fd = try Socket.connect(to: servers[c.id % servers.count], from: source)
                _ = try? Socket.setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1)
                c.fd = fd
                c.state = .connecting
                c.connectStartedAt = now
                try loop.epoll.add(fd, events: [.readable, .writable], token: UInt64(c.index))
                c.writable = true
                inProgress += 1
                sourceCursor += 1
                return
            } catch {
                if c.fd >= 0 { Socket.close(c.fd); c.fd = -1 }
                if error.errno == EADDRNOTAVAIL || error.errno == EADDRINUSE, !sources.isEmpty {
                    sourceCursor += 1  // this source address is out of ports: try the next
                    continue
                }
                fail("connect: \(error)")
                break
            }
        }
        c.state = .closed
        stats.connectFailures += 1
        failed += 1
    }

    func connected(_ c: Connection) {
        let err = Socket.pendingError(c.fd)
        if err != 0 {
            fail("connect: \(String(cString: strerror(err)))")
            stats.connectFailures += 1
            failed += 1
            inProgress -= 1
            closeConnection(c, counted: false)
            return
        }
        c.state = .handshaking
        let key = Handshake.randomKey(using: &rng)
        var url = plan.url
        if let sio = plan.socketIO { url.path = sio.requestPath(user: c.id) }
        c.staging.append(contentsOf: Handshake.request(url: url, key: key, offerDeflate: plan.deflate))
        markDirty(c)
    }

    func handshakeBytes(_ c: Connection, _ bytes: UnsafeRawBufferPointer, now: UInt64) {
        c.head.append(contentsOf: bytes)
        let result: Handshake.Response?
        do {
            result = try c.head.withUnsafeBytes { buf throws(Handshake.Failure) in try Handshake.parseResponse(buf) }
        } catch {
            fail("handshake: \(error)")
            stats.handshakeFailures += 1
            failed += 1
            inProgress -= 1
            closeConnection(c, counted: false)
            return
        }
        guard let response = result else { return }
        c.state = .open
        if plan.socketIO != nil { c.sio = .awaitOpen } else { becameReady(c, now: now) }
        if response.deflate {
            stats.deflateAccepted += 1
            c.deflate = true
            do {
                c.reader = MessageReader(inflater: try Inflater(resetPerMessage: response.serverNoContextTakeover))
            } catch {
                fail("inflateInit failed")
                closeConnection(c, counted: true)
                return
            }
        }
        let rest = Array(c.head[response.headLength...])
        c.head = []
        if !rest.isEmpty { rest.withUnsafeBytes { frames(c, $0, now: now) } }
    }

    /// The connection counts as open (raw: upgraded; Socket.IO: joined the conversation).
    func becameReady(_ c: Connection, now: UInt64) {
        inProgress -= 1
        c.ready = true
        opened += 1
        if c.isPublisher { progress.openedPublishers.add(1, ordering: .relaxed) }
        stats.handshakeLatency.record(sentAt: c.connectStartedAt, receivedAt: now)
    }

    // MARK: reading

    func readable(_ c: Connection) {
        while c.state == .handshaking || c.state == .open {
            let result: IOResult<Int>
            do {
                result = try Socket.read(c.fd, into: readBuffer.baseAddress!, count: readBuffer.count)
            } catch {
                stats.disconnects += 1
                fail("read: \(error)")
                closeConnection(c, counted: true)
                return
            }
            guard case .processed(let n) = result else { return }
            if n == 0 {
                stats.disconnects += 1
                closeConnection(c, counted: true)
                return
            }
            let now = monotonicNanoseconds()
            let bytes = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(readBuffer)[0..<n])
            if c.state == .handshaking { handshakeBytes(c, bytes, now: now) } else { frames(c, bytes, now: now) }
            if n < readBuffer.count { return }
        }
    }

    func frames(_ c: Connection, _ bytes: UnsafeRawBufferPointer, now: UInt64) {
        do {
            try c.reader.feed(bytes) { event in
                switch event {
                case .message(let m):
                    if self.plan.socketIO != nil { try self.socketIOMessage(c, m, now: now); return }
                    if c.isPublisher { return }
                    self.delivery(c, m, now: now)
                case .ping(let payload):
                    FrameEncoder.append(
                        opcode: .pong, payload: payload, maskKey: UInt32(truncatingIfNeeded: self.rng.next()),
                        to: &c.staging)
                    self.markDirty(c)
                case .pong:
                    break
                case .close(let code):
                    self.stats.serverCloses += 1
                    self.fail("server closed a connection with code \(code)")
                    throw CloseSeen()
                }
            }
        } catch is CloseSeen {
            closeConnection(c, counted: true)
        } catch is SocketIORefused {
            closeConnection(c, counted: true)
        } catch {
            stats.protocolErrors += 1
            fail("protocol: \(error)")
            closeConnection(c, counted: true)
        }
    }

    struct CloseSeen: Error {}
    /// The Socket.IO handshake or join failed (already counted as a handshake failure).
    struct SocketIORefused: Error {}

    @inline(__always)
    func delivery(_ c: Connection, _ m: Message, now: UInt64) {
        checkStarted()
        guard let f = Payload.decode(m.payload) else {
            stats.protocolErrors += 1
            fail("unexpected payload of \(m.payload.count) bytes")
            return
        }
        account(c, f, payloadBytes: m.payload.count, m, now: now)
    }

    @inline(__always)
    func account(_ c: Connection, _ f: Payload.Fields, payloadBytes: Int, _ m: Message, now: UInt64) {
        if let counters, counters.delivered(publisher: f.publisher, seq: f.seq) {
            wakePublisher(f.publisher)
        }
        received &+= 1
        if measure.contains(f.time) {
            stats.receivedInWindow += 1
            stats.payloadBytes += UInt64(payloadBytes)
            stats.wireBytes += UInt64(m.wireLength)
            if m.compressed { stats.compressedMessages += 1 }
            stats.latency.record(sentAt: f.time, receivedAt: now)
            // Several nodes: also per node, since the receivers of the publisher's own node are
            // reached without the cluster hop and would hide it in the overall percentiles.
            if servers.count > 1 { stats.latencyByServer[c.id % servers.count].record(sentAt: f.time, receivedAt: now) }
        }
    }

    // MARK: Socket.IO

    func sendText(_ c: Connection, _ bytes: [UInt8]) {
        bytes.withUnsafeBytes {
            FrameEncoder.append(
                opcode: .text, payload: $0, maskKey: UInt32(truncatingIfNeeded: rng.next()), to: &c.staging)
        }
        markDirty(c)
    }

    func refusal(_ why: String) -> SocketIORefused {
        fail("socket.io: \(why)")
        stats.handshakeFailures += 1
        return SocketIORefused()
    }

    static let joinAckID = 1

    /// One Engine.IO packet (one text frame). The hot path is a `message:new` on a ready receiver.
    @inline(__always)
    func socketIOMessage(_ c: Connection, _ m: Message, now: UInt64) throws {
        let b = m.payload
        if c.sio == .ready, b.count > 2, b[0] == 0x34, b[1] == 0x32 {  // "42": EVENT
            if c.isPublisher {
                if SocketIOClient.isErrorEvent(b) {
                    stats.protocolErrors += 1
                    fail(
                        "server error event: \(String(decoding: UnsafeRawBufferPointer(rebasing: b.prefix(200)), as: UTF8.self))"
                    )
                }
                return
            }
            checkStarted()
            guard let content = SocketIOClient.messageNewContent(b), let f = ContentPayload.decode(content) else {
                if SocketIOClient.isErrorEvent(b) {
                    stats.protocolErrors += 1
                    fail(
                        "server error event: \(String(decoding: UnsafeRawBufferPointer(rebasing: b.prefix(200)), as: UTF8.self))"
                    )
                }
                return  // other events (none expected) are ignored
            }
            account(c, f, payloadBytes: content.count, m, now: now)
            return
        }
        let text = { String(decoding: UnsafeRawBufferPointer(rebasing: b.prefix(200)), as: UTF8.self) }
        switch SocketIOClient.classify(b) {
        case .ping:
            sendText(c, SocketIOClient.pong(forPing: b))
        case .open:
            guard c.sio == .awaitOpen, let open = SocketIOClient.parseOpen(b) else {
                throw refusal("unexpected open packet \(text())")
            }
            c.pingInterval = open.pingInterval
            c.sio = .awaitConnect
            sendText(c, SocketIOClient.connectRequest)
        case .connected:
            guard c.sio == .awaitConnect else { throw refusal("unexpected CONNECT \(text())") }
            c.sio = .awaitJoin
            sendText(c, SocketIOClient.joinRequest(conversation: plan.socketIO!.conversation, ackId: Self.joinAckID))
        case .ack(let id, let ok):
            guard c.sio == .awaitJoin, id == Self.joinAckID else { return }
            guard ok else { throw refusal("join refused: \(text())") }
            c.sio = .ready
            becameReady(c, now: now)
        case .connectError:
            throw refusal("CONNECT_ERROR \(text())")
        case .close, .disconnect:
            stats.serverCloses += 1
            fail("server closed a Socket.IO session: \(text())")
            throw CloseSeen()
        case .event, .pong, .noop, .other:
            break
        }
    }

    func wakePublisher(_ id: Int) {
        let (home, conn) = control.publisherHomes[id]
        if home === self {
            conn.needsPump = true
        } else if !conn.wake.exchange(true, ordering: .acquiringAndReleasing) {
            home.loop.execute {
                conn.wake.store(false, ordering: .releasing)
                conn.needsPump = true
            }
        }
    }

    // MARK: sending

    func encode(_ c: Connection, publisher: Int, now: UInt64) {
        let seq = c.sent
        tracker?.willSend(publisher: publisher, seq: seq)
        if plan.socketIO != nil {
            ContentPayload.encode(
                time: now, seq: seq, publisher: publisher, size: plan.size,
                into: UnsafeMutableRawBufferPointer(
                    rebasing: sioFrame[sioContentOffset..<(sioContentOffset + plan.size)]))
            FrameEncoder.append(
                opcode: .text, payload: UnsafeRawBufferPointer(sioFrame),
                maskKey: UInt32(truncatingIfNeeded: rng.next()),
                to: &c.staging)
        } else {
            Payload.encode(time: now, seq: seq, publisher: publisher, size: plan.size, into: payloadBuffer)
            FrameEncoder.append(
                opcode: plan.binary ? .binary : .text,
                payload: UnsafeRawBufferPointer(rebasing: payloadBuffer[0..<plan.size]),
                maskKey: UInt32(truncatingIfNeeded: rng.next()), to: &c.staging)
        }
        c.sent += 1
        stats.sentTotal += 1
        if measure.contains(now) { c.sentInWindow += 1; stats.sentInWindow += 1 }
    }

    func pump(_ c: Connection, now: UInt64) {
        guard case .publisher(let id) = c.role, c.state == .open, c.ready, started, now >= control.sendStart,
            now < measure.end
        else { return }
        let limit = plan.messages > 0 ? UInt64(plan.messages) : UInt64.max
        guard c.sent < limit else { return }
        if plan.window > 0, let tracker {
            var inFlight = tracker.inFlight(publisher: id, sent: c.sent)
            let done = tracker.completedCount(publisher: id)
            if done != c.lastCompleted || inFlight < plan.window {
                c.lastCompleted = done
                c.lastProgress = now
            } else if now &- c.lastProgress > UInt64(plan.stallTimeout * 1e9) {
                tracker.abandonInFlight(publisher: id, sent: c.sent)
                stats.stalls += 1
                c.lastProgress = now
                inFlight = 0
            }
            guard inFlight < plan.window else { return }
            let t = monotonicNanoseconds()
            while inFlight < plan.window && c.sent < limit {
                encode(c, publisher: id, now: t)
                inFlight += 1
            }
            markDirty(c)
        } else if plan.rate > 0 {
            let perPublisher = plan.rate / Double(plan.publishers)
            let due = UInt64(Double(now &- control.sendStart) / 1e9 * perPublisher) + 1
            guard due > c.sent else { return }
            if c.out.byteCount > 8 << 20 { stats.backlogSkips += due - c.sent; c.sent = due; return }
            var n = min(due - c.sent, 10_000, limit - c.sent)
            let t = monotonicNanoseconds()
            while n > 0 { encode(c, publisher: id, now: t); n -= 1 }
            markDirty(c)
        }
    }

    @inline(__always)
    func markDirty(_ c: Connection) {
        if !c.dirty { c.dirty = true; dirty.append(c) }
    }

    func flush(_ c: Connection) {
        c.dirty = false
        guard c.state != .closed, c.fd >= 0 else { c.staging.removeAll(); return }
        if !c.staging.isEmpty {
            c.out.append(SharedBytes.copying(c.staging))
            c.staging.removeAll(keepingCapacity: true)
        }
        do {
            let done = try c.out.flush(fd: c.fd, iov: iov, iovCapacity: 64)
            if done == c.writable {  // want writable iff not done
                c.writable = !done
                try loop.epoll.modify(
                    c.fd, events: done ? [.readable] : [.readable, .writable], token: UInt64(c.index))
            }
        } catch {
            stats.disconnects += 1
            fail("write: \(error)")
            closeConnection(c, counted: true)
        }
    }

    func closeConnection(_ c: Connection, counted: Bool) {
        guard c.fd >= 0 else { c.state = .closed; return }
        loop.epoll.remove(c.fd)
        Socket.close(c.fd)
        c.fd = -1
        if c.ready {
            progress.closed.add(1, ordering: .relaxed)
        } else if c.state == .open {  // Socket.IO: upgraded but not joined yet
            inProgress -= 1
            failed += 1
        }
        c.ready = false
        c.state = .closed
        c.out.removeAll()
        c.staging.removeAll()
    }

    /// Called on the coordinating thread after the loop stopped: RST instead of FIN so no TIME_WAIT
    /// piles up on the generator's ports between runs.
    func abortAll() {
        var lin = linger(l_onoff: 1, l_linger: 0)
        for c in conns where c.fd >= 0 {
            _ = setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &lin, socklen_t(MemoryLayout<linger>.size))
            Socket.close(c.fd)
            c.fd = -1
            c.state = .closed
        }
    }

    // MARK: EventLoopDelegate

    func eventLoop(_ loop: EventLoop, ready token: UInt64, events: Epoll.Events) {
        let c = conns[Int(token)]
        switch c.state {
        case .connecting:
            if !events.isDisjoint(with: [.writable, .error, .hangup]) { connected(c) }
        case .handshaking, .open:
            if events.contains(.writable) { markDirty(c) }
            if !events.isDisjoint(with: [.readable, .error, .hangup, .readHangup]) { readable(c) }
        case .idle, .closed:
            break
        }
    }

    /// Picks up the run timing once the coordinator says go (before any message can arrive).
    @inline(__always)
    func checkStarted() {
        if !started && control.go.load(ordering: .acquiring) {
            started = true
            measure = control.window
            tracker = control.tracker
            counters = tracker?.counters
        }
    }

    func eventLoopTick(_ loop: EventLoop, now: UInt64) {
        if connectsStarted < conns.count && control.connectStart != 0 { startConnects(now: now) }
        checkStarted()
        if started {
            for p in publishers { pump(p, now: now) }
        }
        if now >= nextPercentileAt {
            nextPercentileAt = now + 1_000_000_000
            let l = stats.latency
            progress.p99Nanoseconds.store(l.count == 0 ? 0 : l.histogram.valueAtPercentile(99), ordering: .relaxed)
        }
    }

    func eventLoopDidFinishIteration(_ loop: EventLoop) {
        if started {
            for p in publishers where p.needsPump {
                p.needsPump = false
                pump(p, now: monotonicNanoseconds())
            }
        }
        if !dirty.isEmpty {
            let list = dirty
            dirty.removeAll(keepingCapacity: true)
            for c in list { flush(c) }
        }
        progress.opened.store(opened, ordering: .relaxed)
        progress.failed.store(failed, ordering: .relaxed)
        progress.receivedInWindow.store(stats.receivedInWindow, ordering: .relaxed)
        progress.sentInWindow.store(stats.sentInWindow, ordering: .relaxed)
        progress.received.store(received, ordering: .relaxed)
    }
}
