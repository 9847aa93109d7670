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
final class ServerLoop: EventLoopDelegate, @unchecked Sendable {
    unowned let server: WebSocketServer
    let configuration: ServerConfiguration
    let application: any ServerApplication
    let loop: EventLoop
    let index: Int
    let logger: Logger
    @exclusivity(unchecked) private(set) var listenerFD: Int32 = -1

    // Connections by slot; a token carries the slot and its generation so a stale event is ignored.
    @exclusivity(unchecked) private var slots: [Connection?] = []
    @exclusivity(unchecked) private var generations: [UInt32] = []
    @exclusivity(unchecked) private var freeSlots: [Int32] = []
    /// Open (upgraded) connections: the target of emits to everyone.
    @exclusivity(unchecked) private var openConnections = ContiguousArray<Connection>()
    @exclusivity(unchecked) var rooms = RoomRegistry()
    @exclusivity(unchecked) private var dirty: [Connection] = []
    @exclusivity(unchecked) private var flushing: [Connection] = []
    /// Emits made on this loop during the current iteration, for the other loops.
    @exclusivity(unchecked) private var forwardBatch: [PendingEmit] = []
    /// Connections that stopped at `maxMessagesPerRead` with complete frames still buffered: resumed
    /// at the end of the iteration and in the next ones, before their sockets are read again.
    @exclusivity(unchecked) private var backlogged: [Connection] = []
    /// Slow consumers to close (policy `close`) once the emit that found them is done.
    @exclusivity(unchecked) private var pendingBackpressureCloses: [Connection] = []
    /// The listener is out of epoll after EMFILE/ENFILE until the next tick (no busy loop).
    @exclusivity(unchecked) private var acceptPaused = false
    @exclusivity(unchecked) private var emitEpoch: UInt64 = 0

    private let readBuffer: UnsafeMutableRawPointer
    private let readBufferSize: Int
    private let iov: UnsafeMutablePointer<iovec>
    private let iovCapacity: Int

    /// This loop's compressor for shared frames (no context takeover, reset after every message).
    private let sharedDeflater: PerMessageDeflater?
    @exclusivity(unchecked) private var compressScratch: [UInt8] = []
    /// Where this loop's frames are encoded: small ones back to back in reused chunks, so that
    /// steady-state sends allocate nothing and a burst of broadcasts is one `iovec` per recipient.
    let frameArena = FrameArena()
    /// The compressed variants of broadcasts, apart so they too lie back to back.
    let compressedFrameArena = FrameArena()

    @exclusivity(unchecked) private(set) var stats = ServerStats()
    /// Broadcasts handed to this loop by others and not yet delivered (`maxLoopQueue`); those it
    /// refused since the last iteration; whether its connections must be shed (`close` policy).
    let queuedEmits = Atomic<Int>(0)
    private let refusedEmits = Atomic<Int>(0)
    private let shedRequested = Atomic<Bool>(false)
    /// Socket events handled in the current iteration (for `ServerStats.eventsPerIteration`).
    @exclusivity(unchecked) private var iterationEvents = 0
    @exclusivity(unchecked) private var shuttingDown = false

    static let listenerToken = UInt64.max - 2
    /// Leftovers up to this size are copied in front of the shared read buffer; beyond it the
    /// connection reads straight into its own buffer (no quadratic copying of a slowly arriving frame).
    static let maxPendingInSharedBuffer = 16 * 1024

    init(server: WebSocketServer, index: Int, configuration: ServerConfiguration, application: any ServerApplication, logger: Logger) throws(IOError) {
        self.server = server
        self.index = index
        self.configuration = configuration
        self.application = application
        self.logger = logger
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
    private static func kernelThreadID() -> Int32 {
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
        while let connection = pendingBackpressureCloses.popLast() {
            connection.backpressureClosePending = false
            beginClose(connection, code: .policyViolation, reason: "backpressure limit exceeded")
        }
        // Other loops first, so they write in parallel with this loop's flush. Flushing can produce
        // more (a failed write closes a connection, whose application callback may emit): repeat
        // until both are quiet.
        while !forwardBatch.isEmpty || !dirty.isEmpty {
            if !forwardBatch.isEmpty {
                server.forward(forwardBatch, from: self)
                forwardBatch = []
            }
            swap(&dirty, &flushing)
            for connection in flushing {
                connection.isDirty = false
                // A full socket is flushed by its EPOLLOUT, not retried every iteration.
                if !connection.awaitingWritable { flush(connection) }
            }
            flushing.removeAll(keepingCapacity: true)
        }
        stats.rooms = rooms.count
        stats.loopQueueDropped &+= refusedEmits.exchange(0, ordering: .relaxed)
        recordIteration()
        server.publish(stats, loop: index)
    }

    /// One iteration's events and busy time into the histograms: a clock read and a few adds per
    /// iteration, nothing per event or per frame.
    private func recordIteration() {
        let busy = Int(truncatingIfNeeded: monotonicNanoseconds() &- loop.now)
        stats.iterations &+= 1
        stats.events &+= iterationEvents
        stats.eventsPerIteration[ServerStats.Histograms.eventsIndex(iterationEvents)] &+= 1
        stats.busyNanoseconds &+= busy
        stats.iterationTime[ServerStats.Histograms.iterationTimeIndex(busy)] &+= 1
        iterationEvents = 0
    }

    /// An HTTP request refused before any upgrade, by status.
    private func countRefusedRequest(_ status: Int) {
        stats.handshakesFailed[ServerStats.FailureStatuses.index(status)] &+= 1
    }

    // MARK: Accept

    private func acceptConnections() {
        for _ in 0..<128 {
            let accepted: (fd: Int32, address: SocketAddress)
            do {
                switch try Socket.accept(listenerFD) {
                case .wouldBlock: return
                case .processed(let result): accepted = result
                }
            } catch {
                switch error.errno {
                case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                    // Out of descriptors or memory: a level-triggered listener would spin, so take
                    // it out of epoll until the next tick.
                    logger.warning("accept failed, pausing accepts until the next tick: \(error)")
                    loop.epoll.remove(listenerFD)
                    acceptPaused = true
                    return
                default:
                    // A connection that failed before we took it (ECONNABORTED, EPERM...): next.
                    continue
                }
            }
            if let refusal = server.admit(accepted.address) {
                stats.refused += 1
                refuse(accepted.fd, refusal)
                continue
            }
            register(fd: accepted.fd, address: accepted.address)
        }
    }

    private func refuse(_ fd: Int32, _ reason: String) {
        let response = HTTPResponse.text(503, reason + "\n").serialize()
        response.withUnsafeBytes { _ = try? Socket.write(fd, $0.baseAddress!, count: $0.count) }
        Socket.close(fd)
    }

    private func register(fd: Int32, address: SocketAddress) {
        let slot: Int32
        if let free = freeSlots.popLast() {
            slot = free
        } else {
            slot = Int32(slots.count)
            slots.append(nil)
            generations.append(0)
        }
        generations[Int(slot)] &+= 1
        let id = ConnectionID(loop: Int32(index), slot: slot, generation: generations[Int(slot)])
        let connection = Connection(loop: self, id: id, fd: fd, remoteAddress: address, now: loop.now)
        if configuration.handshakeTimeout > 0 {
            connection.deadline = loop.now + UInt64(configuration.handshakeTimeout * 1e9)
        }
        _ = try? Socket.setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1)
        if configuration.socketSendBuffer > 0 {
            // Bounds what a client that stops reading pins in kernel memory (autotuning would let
            // it grow to 4 MiB, outside the process's RSS and outside maxBackpressure).
            _ = try? Socket.setOption(fd, SOL_SOCKET, SO_SNDBUF, Int32(clamping: configuration.socketSendBuffer))
        }
        do {
            try loop.epoll.add(fd, events: [.readable, .readHangup], token: id.token)
        } catch {
            logger.warning("epoll add failed: \(error)")
            Socket.close(fd)
            server.release(address)
            return
        }
        slots[Int(slot)] = connection
        stats.accepted += 1
        stats.connections += 1
    }

    func connection(_ id: ConnectionID) -> Connection? {
        let slot = Int(id.slot)
        guard slot < slots.count, let connection = slots[slot], connection.id == id else { return nil }
        return connection
    }

    // MARK: Reading

    private func readFrom(_ connection: Connection) {
        switch connection.state {
        case .closed: return
        default: break
        }
        // Frames already here come first: the socket (and the client's sending) waits for them.
        if connection.hasBacklog {
            resumeBacklog(connection)
            return
        }
        let needed = connection.reader?.bytesNeededForCurrentFrame ?? 0
        let pending = connection.inbound.count
        let result: IOResult<Int>
        let base: UnsafeMutableRawPointer
        do {
            if pending <= Self.maxPendingInSharedBuffer && needed <= readBufferSize - 4096 && !connection.discardInput {
                // The common case: the shared buffer, with any leftover copied in front.
                if pending > 0 { readBuffer.copyMemory(from: connection.inbound.base!, byteCount: pending) }
                base = readBuffer
                result = try Socket.read(connection.fd, into: readBuffer + pending, count: readBufferSize - pending)
            } else if connection.discardInput {
                base = readBuffer
                result = try Socket.read(connection.fd, into: readBuffer, count: readBufferSize)
                if case .processed(let n) = result, n > 0 { return }
            } else {
                // A frame larger than the shared buffer: assemble it in the connection's own buffer.
                connection.inbound.reserve(max(needed, pending + 64 * 1024))
                base = connection.inbound.base!
                result = try Socket.read(connection.fd, into: base + pending, count: connection.inbound.capacity - pending)
            }
        } catch {
            finalize(connection)
            return
        }
        guard case .processed(let n) = result else { return }
        if n == 0 {
            // The peer's FIN. A closing connection is done; an open one vanished (1006).
            finalize(connection)
            return
        }
        connection.lastActivity = loop.now
        stats.bytesIn &+= n
        let total = pending + n
        let consumed = process(connection, UnsafeMutableRawBufferPointer(start: base, count: total))
        if case .closed = connection.state { return }
        let rest = UnsafeRawBufferPointer(start: base + consumed, count: total - consumed)
        if connection.discardInput {
            connection.inbound.replace(with: UnsafeRawBufferPointer(start: nil, count: 0))
        } else {
            connection.inbound.replace(with: rest)
        }
        noteMessageProgress(connection)
    }

    /// A message under way (a partial frame, or fragments) must be complete within messageTimeout
    /// of its first byte, however its bytes trickle in.
    private func noteMessageProgress(_ connection: Connection) {
        guard connection.isOpen else { return }
        if (!connection.inbound.isEmpty && !connection.hasBacklog) || connection.reader?.isAssemblingMessage == true {
            if connection.messageStartedAt == 0 { connection.messageStartedAt = loop.now }
        } else {
            connection.messageStartedAt = 0
        }
    }

    /// Handles the next `maxMessagesPerRead` messages of a connection's buffered input.
    private func resumeBacklog(_ connection: Connection) {
        connection.hasBacklog = false
        guard connection.isOpen, !connection.discardInput, let base = connection.inbound.base else { return }
        let total = connection.inbound.count
        let consumed = process(connection, UnsafeMutableRawBufferPointer(start: base, count: total))
        if case .closed = connection.state { return }
        if connection.discardInput {
            connection.inbound.replace(with: UnsafeRawBufferPointer(start: nil, count: 0))
        } else {
            connection.inbound.replace(with: UnsafeRawBufferPointer(start: base + consumed, count: total - consumed))
        }
        noteMessageProgress(connection)
    }

    /// Handles `bytes`; returns how many were consumed.
    private func process(_ connection: Connection, _ bytes: UnsafeMutableRawBufferPointer) -> Int {
        var offset = 0
        while offset < bytes.count {
            let slice = UnsafeMutableRawBufferPointer(rebasing: bytes[offset...])
            switch connection.state {
            case .http:
                switch connection.httpParser.parse(UnsafeRawBufferPointer(slice)) {
                case .needMoreData:
                    return offset
                case .failed(let error):
                    countRefusedRequest(error.status)
                    respondAndClose(connection, HTTPResponse.text(error.status, error.message + "\n"))
                    return bytes.count
                case .complete(let head, let headerLength):
                    offset += headerLength
                    handleRequest(connection, head)
                }
            case .httpBody(let head):
                // The body goes straight into its reader (bounded by maxBodySize), not into the
                // connection's leftovers.
                switch connection.bodyReader!.read(UnsafeRawBufferPointer(slice)) {
                case .needMoreData:
                    return bytes.count
                case .failed(let error):
                    respondAndClose(connection, error.response)
                    return bytes.count
                case .complete(let consumed):
                    offset += consumed
                    let body = connection.bodyReader!.body
                    connection.bodyReader = nil
                    answerHTTP(connection, HTTPRequest(head: head, body: body, remoteAddress: connection.remoteAddress))
                }
            case .open, .closing:
                guard !connection.discardInput, connection.reader != nil else { return bytes.count }
                offset += readFrames(connection, slice)
                return offset
            case .httpDone, .closed:
                return bytes.count
            }
        }
        return offset
    }

    private func readFrames(_ connection: Connection, _ bytes: UnsafeMutableRawBufferPointer) -> Int {
        var consumed = 0
        // Fairness: one read can hold tens of thousands of tiny frames; the rest waits its turn.
        var budget = configuration.maxMessagesPerRead > 0 ? configuration.maxMessagesPerRead : Int.max
        while true {
            // The application may change the connection's limit from a message's callback (a
            // client that just authenticated): the frames after that message are read with it.
            let limit = connection.messageLimit
            let (n, limitChanged) = readFrames(connection, UnsafeMutableRawBufferPointer(rebasing: bytes[consumed...]), limit: limit, budget: &budget)
            consumed += n
            if budget == 0 && consumed < bytes.count && connection.isOpen && !connection.discardInput {
                connection.hasBacklog = true
                backlogged.append(connection)
                return consumed
            }
            guard limitChanged, n > 0, consumed < bytes.count, connection.isOpen, !connection.discardInput else { return consumed }
        }
    }

    private func readFrames(_ connection: Connection, _ bytes: UnsafeMutableRawBufferPointer, limit: Int, budget: inout Int) -> (Int, limitChanged: Bool) {
        var reader = connection.reader.take()!
        defer { if connection.reader == nil { connection.reader = reader } }
        reader.maxMessageSize = limit
        var limitChanged = false
        do {
            let n = try reader.read(bytes) { event in
                switch event {
                case .text(let payload):
                    guard connection.isOpen else { return true }
                    stats.messagesIn += 1
                    stats.payloadBytesIn &+= payload.count
                    guard withinRateLimits(connection, payload.count) else { return connection.isOpen }
                    application.connection(connection, received: .text(payload))
                case .binary(let payload):
                    guard connection.isOpen else { return true }
                    stats.messagesIn += 1
                    stats.payloadBytesIn &+= payload.count
                    guard withinRateLimits(connection, payload.count) else { return connection.isOpen }
                    application.connection(connection, received: .binary(payload))
                case .ping(let payload):
                    // A peer that pings without reading gets no more pongs once over its limit
                    // (RFC 6455 §5.5.3 lets a pong answer only the most recent ping).
                    if connection.isOpen && connection.outbound.charge <= configuration.maxBackpressure {
                        enqueueControl(connection, .pong, payload)
                    }
                case .pong:
                    connection.pingOutstanding = false
                case .close(let code, _):
                    connection.closeReceived = true
                    connection.peerCloseCode = code
                    if connection.isOpen {
                        // Echo the peer's code (RFC 6455 §5.5.1); an empty close is answered empty.
                        if let code {
                            queueClose(connection, code: code, reason: "", byServer: false)
                        } else {
                            queueRaw(connection, WebSocketFrameEncoder.frame(opcode: .close, payload: []))
                            connection.closeSent = true
                            enterClosing(connection)
                        }
                    } else if connection.closeSent && connection.outbound.isEmpty {
                        finalize(connection)
                    }
                    return false
                }
                if case .closed = connection.state { return false }
                if connection.messageLimit != limit {
                    limitChanged = true
                    return false
                }
                switch event {
                case .text, .binary:
                    budget -= 1
                    return budget > 0
                default:
                    return true
                }
            }
            return (n, limitChanged)
        } catch {
            stats.protocolErrors += 1
            // A constant message: repeats share one rate-limit window in the log handler.
            logger.debug("protocol error", metadata: [
                "connection": "\(connection.id)", "reason": "\(error.reason)", "code": "\(error.closeCode.rawValue)"])
            failConnection(connection, code: error.closeCode, reason: error.reason)
            return (bytes.count, false)
        }
    }

    /// Spends one message and `size` bytes of the connection's rate limits (when configured);
    /// over either, the message is dropped (counted) or the connection closed, per policy.
    @inline(__always)
    private func withinRateLimits(_ connection: Connection, _ size: Int) -> Bool {
        let messages = configuration.messageRate, bytes = configuration.byteRate
        if messages.isUnlimited && bytes.isUnlimited { return true }
        let now = loop.now
        if (messages.isUnlimited || connection.messageTokens.take(1, limit: messages, now: now))
            && (bytes.isUnlimited || connection.byteTokens.take(Double(size), limit: bytes, now: now)) {
            return true
        }
        stats.rateLimited += 1
        if configuration.rateLimitPolicy == .close {
            failConnection(connection, code: .policyViolation, reason: "rate limit exceeded")
        } else {
            reportRateLimited(connection, now: now)
        }
        return false
    }

    /// Tells the application about dropped messages: at once for the first, then at most once a
    /// second with the count since (`ServerApplication.connectionRateLimited`).
    private func reportRateLimited(_ connection: Connection, now: UInt64) {
        connection.rateLimitUnreported += 1
        guard connection.rateLimitReportedAt == 0 || now &- connection.rateLimitReportedAt >= 1_000_000_000 else { return }
        connection.rateLimitReportedAt = max(now, 1)
        let dropped = connection.rateLimitUnreported
        connection.rateLimitUnreported = 0
        application.connectionRateLimited(connection, dropped: dropped)
    }

    // MARK: HTTP

    private func handleRequest(_ connection: Connection, _ head: HTTPRequestHead) {
        if WebSocketHandshake.isUpgradeRequest(head) {
            upgrade(connection, head)
            return
        }
        if head.method == "GET" && head.path == "/healthz" {
            respondAndClose(connection, HTTPResponse.text(200, "ok\n"))
            return
        }
        // The body's framing first (a malformed one is 400 whatever the route), then the
        // application's verdict on the head: a refused request's body is never read or held.
        let framing: HTTPBodyFraming
        switch HTTPBodyFraming.of(head, maxBodySize: configuration.maxBodySize) {
        case .failure(let error):
            respondAndClose(connection, error.response)
            return
        case .success(let f):
            framing = f
        }
        // The operator's routes (metrics, dashboard) take no body and are answered on the head.
        if let routes = server.operatorRoutes,
           let response = routes(HTTPRequest(head: head, body: [], remoteAddress: connection.remoteAddress), server) {
            respond(connection, response, keepAlive: framing == .none && head.keepsConnectionAlive)
            return
        }
        if let refusal = application.respondBeforeBody(head, remoteAddress: connection.remoteAddress) {
            // Kept alive only when there is no unread body to skip.
            respond(connection, refusal, keepAlive: framing == .none && head.keepsConnectionAlive)
            return
        }
        guard framing != .none else {
            answerHTTP(connection, HTTPRequest(head: head, body: [], remoteAddress: connection.remoteAddress))
            return
        }
        if head.expectsContinue { queueRaw(connection, Self.continueResponse) }
        connection.bodyReader = HTTPBodyReader(framing: framing, maxBodySize: configuration.maxBodySize)
        connection.state = .httpBody(head)
    }

    static let continueResponse = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)

    private func answerHTTP(_ connection: Connection, _ request: HTTPRequest) {
        let id = connection.id
        let later = application.handleHTTPLater(request, server: server) { [server] response in
            server.respondLater(id, response)
        }
        if later {
            // Awaiting the answer: input is ignored (.httpDone) and the handshake deadline still
            // runs; `closeSent` stays false until the answer is queued (the connection then closes).
            connection.state = .httpDone
            connection.deadline = loop.now + UInt64(max(configuration.handshakeTimeout, 1) * 1e9)
            return
        }
        let response = application.handleHTTP(request, server: server) ?? .webSocketEndpointNotFound
        respond(connection, response, keepAlive: request.head.keepsConnectionAlive)
    }

    /// Answers a plain request; with `keepAlive` the connection then waits for the next request
    /// (RFC 9112 §9.3) under a fresh handshake deadline, otherwise it closes after the response.
    private func respond(_ connection: Connection, _ response: HTTPResponse, keepAlive: Bool) {
        guard keepAlive && !shuttingDown else {
            respondAndClose(connection, response)
            return
        }
        queueRaw(connection, response.serialize(closeConnection: false))
        connection.state = .http
        connection.requestsServed += 1
        connection.deadline = configuration.handshakeTimeout > 0 ? loop.now + UInt64(configuration.handshakeTimeout * 1e9) : 0
    }

    private func upgrade(_ connection: Connection, _ head: HTTPRequestHead) {
        let request: WebSocketUpgradeRequest
        switch WebSocketHandshake.validate(head, subprotocols: configuration.subprotocols) {
        case .failure(let rejection):
            countRefusedRequest(rejection.response.status)
            respondAndClose(connection, rejection.response)
            return
        case .success(let valid):
            request = valid
        }
        if shuttingDown {
            countRefusedRequest(503)
            respondAndClose(connection, HTTPResponse.text(503, "server shutting down\n"))
            return
        }
        if case .reject(let response) = application.shouldUpgrade(head, remoteAddress: connection.remoteAddress) {
            countRefusedRequest(response.status)
            respondAndClose(connection, response)
            return
        }
        let agreement = request.extensionOffers.flatMap {
            PerMessageDeflateNegotiation.negotiate(offers: $0, config: configuration.deflate)
        }
        queueRaw(connection, WebSocketHandshake.switchingProtocolsResponse(request, extensions: agreement?.responseHeaderValue))
        connection.upgraded(subprotocol: request.subprotocol, agreement: agreement)
        connection.deadline = 0
        connection.openIndex = openConnections.count
        openConnections.append(connection)
        if agreement != nil { server.compressionClients.add(1, ordering: .relaxed) }
        connection.opened = true
        application.connectionOpened(connection, request: head)
    }

    /// A deferred HTTP answer (`ServerApplication.handleHTTPLater`), on the connection's loop.
    func respondLater(_ connection: Connection, _ response: HTTPResponse) {
        guard case .httpDone = connection.state, !connection.closeSent else { return }
        respondAndClose(connection, response)
    }

    private func respondAndClose(_ connection: Connection, _ response: HTTPResponse) {
        queueRaw(connection, response.serialize())
        connection.state = .httpDone
        connection.closeSent = true
        connection.deadline = loop.now + UInt64(configuration.closeTimeout * 1e9)
    }

    // MARK: Sending

    /// A message for one connection: encoded (and compressed) for it alone.
    func sendDirect(_ connection: Connection, _ opcode: WebSocketOpcode, _ payload: UnsafeRawBufferPointer) {
        var deflater: PerMessageDeflater?
        if connection.deflateAgreement != nil && payload.count >= configuration.deflate.threshold {
            if let dedicated = connection.dedicatedDeflater {
                if connection.dedicatedDeflaterNeedsReset {
                    dedicated.reset()
                    connection.dedicatedDeflaterNeedsReset = false
                }
                deflater = dedicated
            } else if connection.acceptsSharedCompression {
                deflater = sharedDeflater
            }
        }
        guard let deflater else {
            enqueueBytes(connection, OutgoingFrame.encode(opcode, payload, arena: frameArena))
            return
        }
        // Unlike a broadcast (`OutgoingFrame.make`), no fallback to the plain frame when compression
        // does not pay: a dedicated compressor with context takeover has already put this message
        // into its history, which the client's window must then contain too.
        compressScratch.removeAll(keepingCapacity: true)
        let started = monotonicNanoseconds()
        deflater.compressMessage(payload, into: &compressScratch)
        countCompression(payload.count, started: started)
        let frame = compressScratch.withUnsafeBytes { OutgoingFrame.encode(opcode, $0, rsv1: true, arena: frameArena) }
        enqueueBytes(connection, frame)
    }

    /// The per-recipient step of every emit: pick the variant, check backpressure, queue a reference.
    @inline(__always)
    func enqueue(_ frame: OutgoingFrame, to connection: Connection, withinLimit: Bool = false) {
        guard connection.isOpen else { return }
        // The variants are passed straight from the frame's stored properties (borrowed): the
        // queue retains the bytes only when they start a new entry, not when they extend one.
        guard connection.acceptsSharedCompression, frame.compressed != nil else {
            enqueueBytes(connection, frame.plain, withinLimit: withinLimit)
            return
        }
        // A shared compressed frame enters this client's inflate window behind its dedicated
        // compressor's back: that compressor must start afresh before its next message.
        if connection.dedicatedDeflater != nil && connection.deflateAgreement?.serverNoContextTakeover == false {
            connection.dedicatedDeflaterNeedsReset = true
        }
        enqueueBytes(connection, frame.compressed.unsafelyUnwrapped, withinLimit: withinLimit)
    }

    /// The compressed frame for clients that can take it, the plain one otherwise.
    @inline(__always)
    private func variant(of frame: OutgoingFrame, for connection: Connection) -> SharedBytes {
        if connection.acceptsSharedCompression, let compressed = frame.compressed { return compressed }
        return frame.plain
    }

    /// `withinLimit`: the caller already checked the limit for this frame (a frame group).
    @inline(__always)
    private func enqueueBytes(_ connection: Connection, _ bytes: SharedBytes, withinLimit: Bool = false) {
        if !withinLimit && wouldExceedLimit(connection, adding: connection.outbound.charge(ofAppending: bytes)) {
            applyBackpressure(connection)
            return
        }
        connection.outbound.append(bytes)
        stats.deliveries += 1
        markDirty(connection)
    }

    /// Over `maxBackpressure` with `cost` more queued? The queue's charge is the memory its entries
    /// keep alive (whole buffers, plus a fixed cost per entry: a flood of tiny frames is bounded
    /// too), plus what the kernel's send queue held when last asked. An empty queue always takes
    /// one message, so a single message larger than the limit still goes out.
    @inline(__always)
    private func wouldExceedLimit(_ connection: Connection, adding cost: Int) -> Bool {
        connection.outbound.charge + connection.kernelQueued + cost > configuration.maxBackpressure && !connection.outbound.isEmpty
    }

    private func applyBackpressure(_ connection: Connection) {
        switch configuration.backpressurePolicy {
        case .drop:
            stats.dropped += 1
        case .close:
            guard connection.isOpen, !connection.backpressureClosePending else { return }
            stats.backpressureClosed += 1
            // Closed after the emit in progress: closing tells the application, whose callback may
            // emit, and must not run inside another emit's walk over the rooms.
            connection.backpressureClosePending = true
            pendingBackpressureCloses.append(connection)
        }
    }

    private func enqueueControl(_ connection: Connection, _ opcode: WebSocketOpcode, _ payload: UnsafeRawBufferPointer) {
        connection.outbound.append(OutgoingFrame.encode(opcode, payload, arena: frameArena))
        markDirty(connection)
    }

    private func queueRaw(_ connection: Connection, _ bytes: [UInt8]) {
        connection.outbound.append(SharedBytes.copying(bytes))
        markDirty(connection)
    }

    @inline(__always)
    private func markDirty(_ connection: Connection) {
        if !connection.isDirty {
            connection.isDirty = true
            dirty.append(connection)
        }
    }

    private func flush(_ connection: Connection) {
        if case .closed = connection.state { return }
        let drained: Bool
        do {
            let before = connection.outbound.byteCount
            drained = try connection.outbound.flush(fd: connection.fd, iov: iov, iovCapacity: iovCapacity)
            stats.bytesOut += before - connection.outbound.byteCount
        } catch {
            // EPIPE/ECONNRESET: the peer is gone.
            finalize(connection)
            return
        }
        if drained {
            if connection.awaitingWritable {
                connection.awaitingWritable = false
                // Written on EPOLLOUT: the kernel may still hold most of its buffer.
                connection.kernelQueued = Socket.sendQueueBytes(connection.fd)
                try? loop.epoll.modify(connection.fd, events: [.readable, .readHangup], token: connection.id.token)
            }
            afterDrain(connection)
        } else {
            // The socket is full: the kernel holds its whole send buffer for this client.
            connection.kernelQueued = Socket.sendQueueBytes(connection.fd)
            if !connection.awaitingWritable {
                connection.awaitingWritable = true
                try? loop.epoll.modify(connection.fd, events: [.readable, .readHangup, .writable], token: connection.id.token)
            }
        }
    }

    /// Everything queued is written: finish a close in progress.
    private func afterDrain(_ connection: Connection) {
        switch connection.state {
        case .httpDone:
            // Half-close so the response is read before the socket goes away.
            Socket.shutdownWrite(connection.fd)
            connection.writeShutDown = true
            connection.discardInput = true
        case .closing where connection.closeSent:
            if connection.closeReceived {
                // Handshake complete: the server closes the TCP connection first (RFC 6455 §7.1.1).
                finalize(connection)
            } else if !connection.writeShutDown {
                Socket.shutdownWrite(connection.fd)
                connection.writeShutDown = true
            }
        default:
            break
        }
    }

    // MARK: Closing

    func beginClose(_ connection: Connection, code: WebSocketCloseCode, reason: String) {
        switch connection.state {
        case .open:
            queueClose(connection, code: code, reason: reason)
        case .http, .httpBody:
            finalize(connection)
        default:
            break
        }
    }

    private func queueClose(_ connection: Connection, code: WebSocketCloseCode, reason: String, byServer: Bool = true) {
        if byServer { connection.serverCloseCode = code }
        connection.outbound.append(SharedBytes.copying(WebSocketFrameEncoder.closeFrame(code: code, reason: reason)))
        connection.closeSent = true
        markDirty(connection)
        enterClosing(connection)
    }

    private func enterClosing(_ connection: Connection) {
        // The state changes before the application hears of it, so a send or join from its
        // callback sees a connection that is no longer open.
        connection.state = .closing
        leaveOpen(connection)
        connection.deadline = loop.now + UInt64(configuration.closeTimeout * 1e9)
    }

    /// Protocol violation: send the close code, then ignore whatever else the peer sends.
    private func failConnection(_ connection: Connection, code: WebSocketCloseCode, reason: String) {
        if connection.isOpen {
            connection.serverCloseCode = code
            connection.outbound.append(SharedBytes.copying(WebSocketFrameEncoder.closeFrame(code: code, reason: reason)))
            connection.closeSent = true
            markDirty(connection)
            enterClosing(connection)
        }
        connection.discardInput = true
    }

    /// Takes an open connection out of rooms and the emit list, and tells the application once.
    private func leaveOpen(_ connection: Connection) {
        guard connection.openIndex >= 0 else { return }
        let index = connection.openIndex
        let last = openConnections.count - 1
        if index != last {
            let moved = openConnections[last]
            openConnections[index] = moved
            moved.openIndex = index
        }
        openConnections.removeLast()
        connection.openIndex = -1
        rooms.leaveAll(connection)
        countClose(connection)
        if connection.deflateAgreement != nil { server.compressionClients.subtract(1, ordering: .relaxed) }
        application.connectionClosed(connection, code: connection.peerCloseCode ?? (connection.closeReceived ? .noStatusReceived : nil))
    }

    /// An open connection's end: the code the server sent, else the peer's, else 1006 (vanished).
    private func countClose(_ connection: Connection) {
        let code: UInt16
        if let sent = connection.serverCloseCode {
            code = sent.rawValue
            stats.closesByInitiator[0] &+= 1
        } else if connection.closeReceived {
            code = connection.peerCloseCode?.rawValue ?? 1005
            stats.closesByInitiator[1] &+= 1
        } else {
            code = 1006
            stats.closesByInitiator[2] &+= 1
        }
        stats.closesByCode[ServerStats.CloseCodes.index(code)] &+= 1
    }

    /// Closes the socket and frees the slot. Idempotent.
    func finalize(_ connection: Connection) {
        if case .closed = connection.state { return }
        connection.state = .closed
        leaveOpen(connection)
        connection.outbound.removeAll()
        connection.inbound.release()
        Socket.close(connection.fd)
        let slot = Int(connection.id.slot)
        if slot < slots.count, slots[slot] === connection {
            slots[slot] = nil
            freeSlots.append(connection.id.slot)
        }
        stats.connections -= 1
        server.release(connection.remoteAddress)
    }

    // MARK: Timers

    private func sweepTimers(now: UInt64) {
        let idle = configuration.idleTimeout > 0 ? UInt64(configuration.idleTimeout * 1e9) : UInt64.max
        let pingAfter = configuration.pingInterval > 0 ? UInt64(configuration.pingInterval * 1e9) : UInt64.max
        let messageTimeout = configuration.messageTimeout > 0 ? UInt64(configuration.messageTimeout * 1e9) : UInt64.max
        // Queued bytes are sampled here, on the walk the tick makes anyway, not tracked per frame.
        var queued = 0
        for case let connection? in slots {
            queued &+= connection.outbound.byteCount
            switch connection.state {
            case .open:
                if connection.kernelQueued > 0 && !connection.awaitingWritable {
                    // Recently full: follow the kernel's queue down until the client has read it.
                    connection.kernelQueued = Socket.sendQueueBytes(connection.fd)
                }
                let silent = now &- connection.lastActivity
                if connection.messageStartedAt != 0 && now &- connection.messageStartedAt >= messageTimeout {
                    stats.protocolErrors += 1
                    failConnection(connection, code: .policyViolation, reason: "message timeout")
                } else if silent >= idle {
                    queueClose(connection, code: .goingAway, reason: "idle timeout")
                } else if silent >= pingAfter && !connection.pingOutstanding {
                    connection.pingOutstanding = true
                    enqueueControl(connection, .ping, UnsafeRawBufferPointer(start: nil, count: 0))
                }
            case .closed:
                break
            default:
                if connection.deadline != 0 && now >= connection.deadline {
                    switch connection.state {
                    case .http where connection.requestsServed > 0 && connection.inbound.isEmpty:
                        // An idle keep-alive connection: nothing was asked, nothing to answer.
                        finalize(connection)
                    case .http, .httpBody:
                        // A stalled head or body (RFC 9110 §15.5.9).
                        countRefusedRequest(408)
                        respondAndClose(connection, HTTPResponse.text(408, "request timeout\n"))
                        connection.deadline = now + UInt64(configuration.closeTimeout * 1e9)
                    default:
                        finalize(connection)
                    }
                }
            }
        }
        stats.queuedBytes = queued
        stats.queuedBytesHighWater = max(stats.queuedBytesHighWater, queued)
    }

    // MARK: Emits and shutdown (on this loop's thread)

    /// Broadcasts this loop did not take: `maxLoopQueue` were waiting (any thread). Under the `close`
    /// policy the loop closes its connections once it has caught up: the task runs behind the
    /// backlog, so every connection first gets what was queued before.
    func refuseQueued(_ count: Int) {
        refusedEmits.add(count, ordering: .relaxed)
        guard configuration.backpressurePolicy == .close,
              !shedRequested.exchange(true, ordering: .acquiringAndReleasing) else { return }
        loop.execute { [self] in
            shedRequested.store(false, ordering: .releasing)
            for connection in openConnections where connection.isOpen {
                stats.loopQueueClosed += 1
                beginClose(connection, code: .tryAgainLater, reason: "server overloaded")
            }
        }
    }

    func deliver(_ emit: PendingEmit) {
        switch emit {
        case .frame(let frame, let target): deliver(frame, to: target)
        case .group(let frames, let target): deliver(frames, to: target)
        }
    }

    /// Queues an emit made on this loop for the other loops, sent at the end of the iteration.
    func forwardLater(_ emit: PendingEmit) {
        forwardBatch.append(emit)
    }

    /// Delivers `frame` to this loop's share of `target`.
    func deliver(_ frame: OutgoingFrame, to target: BroadcastTarget) {
        let before = stats.deliveries &+ stats.dropped
        forEachRecipient(of: target) { enqueue(frame, to: $0) }
        countBroadcast(recipients: stats.deliveries &+ stats.dropped &- before)
    }

    /// Delivers a sequence of frames that only makes sense whole (a Socket.IO binary event and its
    /// attachments): each recipient gets all of them back to back, or none under backpressure.
    func deliver(_ frames: [OutgoingFrame], to target: BroadcastTarget) {
        var recipients = 0
        forEachRecipient(of: target) { recipients &+= 1; enqueueGroup(frames, to: $0) }
        countBroadcast(recipients: recipients)
    }

    /// One emit on this loop, and its share of the fan-out (counted from the delivery counters
    /// around the walk: nothing is added per recipient for it).
    private func countBroadcast(recipients: Int) {
        stats.broadcasts &+= 1
        stats.broadcastRecipients &+= recipients
        stats.fanout[ServerStats.Histograms.fanoutIndex(recipients)] &+= 1
    }

    /// All of `frames` back to back, or none when they would pass the connection's limit.
    func enqueueGroup(_ frames: [OutgoingFrame], to connection: Connection) {
        guard connection.isOpen else { return }
        // An upper bound: the group's frames may well extend each other's entries.
        let cost = frames.reduce(0) { $0 + variant(of: $1, for: connection).bufferCapacity + OutboundQueue.entryCost }
        if wouldExceedLimit(connection, adding: cost) {
            applyBackpressure(connection)
            return
        }
        for frame in frames { enqueue(frame, to: connection, withinLimit: true) }
    }

    /// Calls `body` once for every connection of this loop in `target`.
    @inline(__always)
    private func forEachRecipient(of target: BroadcastTarget, _ body: (Connection) -> Void) {
        emitEpoch &+= 1
        let epoch = emitEpoch
        for name in target.exceptRooms {
            guard let room = rooms[name] else { continue }
            for member in room.members { member.emitMark = epoch }
        }
        if let except = target.exceptConnection, Int(except.loop) == index {
            connection(except)?.emitMark = epoch
        }
        if target.rooms.isEmpty {
            Self.forEachUnretained(openConnections) { connection in
                if connection.emitMark != epoch { body(connection) }
            }
            return
        }
        let multiRoom = target.rooms.count > 1
        for name in target.rooms {
            guard let room = rooms[name] else { continue }
            Self.forEachUnretained(room.members) { member in
                guard member.emitMark != epoch else { return }
                if multiRoom { member.emitMark = epoch }
                body(member)
            }
        }
    }

    /// Calls `body` with each element without retaining and releasing it: the array keeps them
    /// alive, and nothing in an emit's walk changes the array (closes wait for the end of the emit,
    /// joins and leaves for the application's next callback).
    @inline(__always)
    private static func forEachUnretained(_ connections: ContiguousArray<Connection>, _ body: (Connection) -> Void) {
        connections.withUnsafeBufferPointer { buffer in
            guard let base = UnsafeRawPointer(buffer.baseAddress) else { return }
            for i in 0..<buffer.count {
                base.load(fromByteOffset: i &* MemoryLayout<Unmanaged<Connection>>.stride, as: Unmanaged<Connection>.self)
                    ._withUnsafeGuaranteedRef(body)
            }
        }
    }

    /// Stops accepting and sends 1001 to every client.
    func beginShutdown() {
        shuttingDown = true
        if listenerFD >= 0 {
            loop.epoll.remove(listenerFD)
            Socket.close(listenerFD)
            listenerFD = -1
        }
        for case let connection? in slots {
            switch connection.state {
            case .open: queueClose(connection, code: .goingAway, reason: "server shutting down")
            case .http, .httpBody: finalize(connection)
            default: break
            }
        }
    }

    /// This loop's largest rooms (name, members), at most `limit` of them (on the loop's thread).
    func roomSizes(limit: Int) -> [(String, Int)] {
        rooms.rooms.values.map { ($0.name, $0.members.count) }
            .sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }.prefix(limit).map { $0 }
    }

    /// Compresses a broadcast once on this thread's compressor.
    func makeFrame(_ opcode: WebSocketOpcode, _ payload: UnsafeRawBufferPointer, compress: Bool) -> OutgoingFrame {
        guard compress, sharedDeflater != nil, !opcode.isControl else {
            return OutgoingFrame.make(opcode, payload, deflater: nil, scratch: &compressScratch, arenas: (frameArena, compressedFrameArena))
        }
        let started = monotonicNanoseconds()
        let frame = OutgoingFrame.make(opcode, payload, deflater: sharedDeflater, scratch: &compressScratch, arenas: (frameArena, compressedFrameArena))
        countCompression(payload.count, started: started)
        return frame
    }

    /// One compression (once per broadcast, not per recipient): what went in, what came out
    /// (left in `compressScratch`), and the time it took.
    private func countCompression(_ bytesIn: Int, started: UInt64) {
        stats.compressionBytesIn &+= bytesIn
        stats.compressionBytesOut &+= compressScratch.count
        stats.compressionNanoseconds &+= Int(truncatingIfNeeded: monotonicNanoseconds() &- started)
    }
}
