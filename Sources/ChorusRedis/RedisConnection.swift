// One Redis connection at a time, as a hiredis asynchronous context driven by a ChorusLoop:
// hiredis's event hooks (addRead, delRead, addWrite, delWrite, cleanup) become a foreign descriptor
// registration on the loop, so hiredis never blocks and never owns a thread. Around the context:
// the login (AUTH, SELECT, PING), a connect time-out, capped exponential back-off between attempts,
// and the table of replies awaited (each with an optional time-out). Over the ~400-line guide:
// all of it is one lifecycle over one C handle, and the hiredis facts below bind every part of it;
// split, a reader would need the other files to check any one of them.
//
// hiredis 0.14 facts this file relies on (async.c):
// - the context is freed by hiredis itself when the connection fails or drops, and by
//   `redisAsyncFree`; either way `ev.cleanup` is called exactly once, after every pending reply
//   callback got a NULL reply and before the socket is closed. `contextGone` (the cleanup hook) is
//   therefore the single place that learns a context is over.
// - `redisAsyncFree` called inside a reply callback is deferred until the callback returns; called
//   inside the connect/disconnect callbacks it would free the context under hiredis's feet, so
//   this file sets no disconnect callback and frees nothing from the connect callback.
// - nothing reaches the socket until a command is queued, so the login is queued at once and its
//   first write completes the non-blocking connect.
//
// Writes, once logged in: hiredis asks for write readiness (`addWrite`) with every command. Rather
// than an epoll_ctl to add EPOLLOUT, an epoll_wait that reports it and an epoll_ctl to remove it,
// the connection flushes from a timer due at once, which the loop runs in the same iteration
// after its events and tasks: every command of the iteration leaves in one write(2), and a
// publish leaves before the server loop writes the same broadcast to its own sockets (at the end
// of the iteration), so the other nodes do not wait for this node's local fan-out. Only a write
// that does not complete (a full socket) waits for EPOLLOUT.
// Over the ~400-line guide: one hiredis context's whole life (event hooks, login, time-outs,
// back-off, awaited replies) shares its state with hiredis's C callbacks, which reach it through
// one unmanaged pointer; one file keeps that unsafe boundary in one place.
import CHiredis
import ChorusLoop
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Loop thread only (every method, hook and callback runs there).
final class RedisConnection {
    enum Phase: Equatable {
        case idle, connecting, ready, waitingToRetry, stopped
    }

    /// A reply awaited for a command or a login step.
    private struct Pending {
        let done: (Result<RedisValue, RedisError>) -> Void
        var timer: LoopTimer?
        /// Handed to the current context (else still in the owner's queue, which keeps it).
        var sent = false
    }

    let url: RedisURL
    let loop: EventLoop
    let configuration: RedisClientConfiguration
    let logger: Logger
    /// Whether to send SELECT (a subscriber does not: pub/sub ignores databases).
    let selectsDatabase: Bool
    /// The TCP host as hiredis gets it: a numeric address resolved once by `resolveHost`, so that
    /// hiredis's own (blocking) getaddrinfo never waits for DNS on the loop.
    private var host: String?

    private(set) var phase: Phase = .idle
    private var context: UnsafeMutablePointer<redisAsyncContext>?
    private var freeRequested = false
    private var registration: ForeignRegistration?
    private var interest: Epoll.Events = []
    /// The connection keeps itself alive while hiredis holds a pointer to it (ev.data / ac->data).
    private var retainedSelf: Unmanaged<RedisConnection>?
    private var connectTimer: LoopTimer?
    /// The flush timer of the current iteration (see the header), and whether it is running.
    private var flushTimer: LoopTimer?
    private var flushing = false
    /// SIGPIPE ignored by the process when the context was made (`chorus serve` ignores it): the
    /// writes then need no signal mask around them (see `withoutSIGPIPE`).
    private var sigpipeIgnored = false
    private var retryTimer: LoopTimer?
    private var nextDelay: UInt64
    private var closingReason: String?
    private var loggedIn = false
    private var everLoggedIn = false
    private var pending: [UInt64: Pending] = [:]
    private var nextID: UInt64 = 1

    /// Called when a login completed.
    var onReady: () -> Void = {}
    /// Called when a context is over (failed attempt or lost connection) with the reason, and
    /// whether it had logged in. Not called after `stop`.
    var onDown: (_ reason: String, _ wasReady: Bool) -> Void = { _, _ in }
    /// Subscriber only: a reply routed by hiredis to a subscription (messages and confirmations).
    var onPush: (UnsafePointer<redisReply>) -> Void = { _ in }
    /// Publish replies: the argument bytes of that publish and whether Redis accepted it.
    var onPublishReplied: (_ bytes: Int, _ ok: Bool) -> Void = { _, _ in }

    var connects = 0
    var reconnects = 0
    var connectFailures = 0
    var commandsTimedOut = 0
    var malformedReplies = 0

    init(url: RedisURL, loop: EventLoop, configuration: RedisClientConfiguration, logger: Logger, selectsDatabase: Bool)
    {
        self.url = url
        self.loop = loop
        self.configuration = configuration
        self.logger = logger
        self.selectsDatabase = selectsDatabase
        nextDelay = max(1_000_000, configuration.initialReconnectDelay.nanoseconds)
    }

    var isReady: Bool { phase == .ready }

    // MARK: Life cycle

    /// Resolves the URL's host name to a numeric address on the calling thread (call it off the
    /// loop, and hand the answer to `connect(host:)` on the loop). Redis nodes are addressed by IP
    /// in practice; a name is looked up once.
    func resolveHost() -> String? {
        guard case .tcp(let name, _) = url.endpoint else { return nil }
        return Self.numericAddress(for: name) ?? name
    }

    /// The first connect, with the host `resolveHost` found (kept for reconnects). Set here, on the
    /// loop, so that the loop is the only thread that touches the connection's state.
    func connect(host resolved: String?) {
        if let resolved { host = resolved }
        connect()
    }

    func connect() {
        guard phase == .idle || phase == .waitingToRetry else { return }
        phase = .connecting
        closingReason = nil
        let ac: UnsafeMutablePointer<redisAsyncContext>?
        switch url.endpoint {
        case .tcp(let name, let port): ac = redisAsyncConnect(host ?? name, Int32(port))
        case .unix(let path): ac = redisAsyncConnectUnix(path)
        }
        guard let ac else {
            attemptFailed("cannot allocate a hiredis context")
            return
        }
        if ac.pointee.err != 0 {
            // Failed at once (refused on loopback, no such socket): no hooks attached yet.
            let reason = Self.errorString(ac) ?? "connect failed"
            redisAsyncFree(ac)
            attemptFailed(reason)
            return
        }
        do {
            registration = try loop.register(fd: ac.pointee.c.fd, interest: []) { [unowned self] events in
                self.handle(events)
            }
        } catch {
            redisAsyncFree(ac)
            attemptFailed("cannot watch the socket: \(error)")
            return
        }
        if case .tcp = url.endpoint {
            // A Redis host that vanishes without a FIN or RST (a partition, a dead machine) would
            // leave a subscriber waiting forever: TCP keepalive notices within ~30 s (idle 15 s,
            // then 3 probes 5 s apart), and the connection is then redone.
            _ = redisEnableKeepAlive(&ac.pointee.c)
        }
        context = ac
        freeRequested = false
        interest = []
        sigpipeIgnored = chorus_sigpipe_ignored() != 0
        retainedSelf = Unmanaged.passRetained(self)
        let me = Unmanaged.passUnretained(self).toOpaque()
        ac.pointee.data = me
        ac.pointee.ev.data = me
        ac.pointee.ev.addRead = { RedisConnection.from($0)?.want(.readable, true) }
        ac.pointee.ev.delRead = { RedisConnection.from($0)?.want(.readable, false) }
        ac.pointee.ev.addWrite = { RedisConnection.from($0)?.want(.writable, true) }
        ac.pointee.ev.delWrite = { RedisConnection.from($0)?.want(.writable, false) }
        ac.pointee.ev.cleanup = { RedisConnection.from($0)?.contextGone() }
        let timeout = configuration.connectTimeout
        connectTimer = loop.schedule(afterNanoseconds: timeout.nanoseconds) { [self] in
            connectTimer = nil
            close(reason: "no connection and login within \(timeout)")
        }
        login()
    }

    /// Disconnects for good: frees the context (its pending replies fail with `.stopped`).
    func stop() {
        guard phase != .stopped else { return }
        phase = .stopped
        if let t = retryTimer { loop.cancel(t) }
        retryTimer = nil
        close(reason: "stopped")
    }

    /// Ends the current context (the cleanup hook then reports it); a no-op without one.
    /// Never called from hiredis's connect callback (see the header).
    func close(reason: String) {
        guard let ac = context, !freeRequested else { return }
        if closingReason == nil { closingReason = reason }
        freeRequested = true
        redisAsyncFree(ac)
    }

    private func login() {
        var steps: [[[UInt8]]] = []
        if let password = url.password {
            if let username = url.username {
                steps.append([Array("AUTH".utf8), Array(username.utf8), Array(password.utf8)])
            } else {
                steps.append([Array("AUTH".utf8), Array(password.utf8)])
            }
        }
        if selectsDatabase && url.database != 0 {
            steps.append([Array("SELECT".utf8), Array(String(url.database).utf8)])
        }
        // PING last: its answer says the server serves commands (not LOADING, not NOAUTH).
        steps.append([Array("PING".utf8)])
        for (i, argv) in steps.enumerated() {
            let isLast = i == steps.count - 1
            let name = String(decoding: argv[0], as: UTF8.self)
            let id = expectReply(timeoutNanoseconds: nil) { [self] result in
                switch result {
                case .success:
                    if isLast { loginDone() }
                case .failure(.server(let message)):
                    close(reason: "\(name) failed: \(message)")
                case .failure(.malformedReply):
                    close(reason: "\(name) got a malformed reply")
                case .failure:
                    break  // the context is going; contextGone reports why
                }
            }
            if !transmit(argv, id: id) {
                cancelReply(id)
                close(reason: "hiredis refused the login")
                return
            }
        }
    }

    private func loginDone() {
        if let t = connectTimer { loop.cancel(t) }
        connectTimer = nil
        phase = .ready
        loggedIn = true
        connects += 1
        if everLoggedIn { reconnects += 1 }
        everLoggedIn = true
        nextDelay = max(1_000_000, configuration.initialReconnectDelay.nanoseconds)
        onReady()
    }

    private func attemptFailed(_ reason: String) {
        phase = .waitingToRetry
        connectFailures += 1
        scheduleRetry()
        onDown(reason, false)
    }

    private func scheduleRetry() {
        let delay = nextDelay - UInt64.random(in: 0...(nextDelay / 5))
        nextDelay = min(nextDelay * 2, max(nextDelay, configuration.maximumReconnectDelay.nanoseconds))
        retryTimer = loop.schedule(afterNanoseconds: delay) { [self] in
            retryTimer = nil
            connect()
        }
    }

    /// The cleanup hook: the context is being freed (by hiredis or by `close`).
    private func contextGone() {
        guard let ac = context else { return }
        let reason = closingReason ?? Self.errorString(ac) ?? "connection closed"
        if let registration { loop.unregister(registration) }
        registration = nil
        interest = []
        context = nil
        freeRequested = false
        if let t = connectTimer { loop.cancel(t) }
        connectTimer = nil
        if let t = flushTimer { loop.cancel(t) }
        flushTimer = nil
        // hiredis has NULL-replied what it had been given; anything sent still here is failed too,
        // while what is still queued by the owner stays (to be sent on the next connection).
        let error: RedisError = phase == .stopped ? .stopped : .disconnected(reason)
        let lost = pending.filter { $0.value.sent }.sorted { $0.key < $1.key }
        for (id, p) in lost {
            pending[id] = nil
            if let t = p.timer { loop.cancel(t) }
            p.done(.failure(error))
        }
        let wasReady = loggedIn
        loggedIn = false
        if phase != .stopped {
            phase = .waitingToRetry
            if !wasReady { connectFailures += 1 }
            scheduleRetry()
            onDown(reason, wasReady)
        }
        // Last: this may release the connection.
        let retained = retainedSelf
        retainedSelf = nil
        retained?.release()
    }

    // MARK: Readiness

    private func want(_ events: Epoll.Events, _ on: Bool) {
        guard let registration else { return }
        if events == .writable && phase == .ready && !flushing && !interest.contains(.writable) {
            // Logged in and not waiting for EPOLLOUT: flushed this iteration by the timer.
            if on && flushTimer == nil {
                flushTimer = loop.schedule(at: loop.now) { [unowned self] in flushWrites() }
            }
            return
        }
        var next = interest
        if on { next.formUnion(events) } else { next.subtract(events) }
        guard next != interest else { return }
        interest = next
        do {
            try loop.setInterest(registration, next)
        } catch {
            logger.error("redis: cannot change the socket's epoll interest: \(error)")
            close(reason: "epoll: \(error)")
        }
    }

    private func handle(_ events: Epoll.Events) {
        let failed = !events.isDisjoint(with: [.error, .hangup])
        if let ac = context, events.contains(.writable) || (failed && interest.contains(.writable)) {
            write(ac)
        }
        // The write may have ended the context (cleanup sets `context` to nil).
        if let ac = context, events.contains(.readable) || failed {
            redisAsyncHandleRead(ac)
        }
    }

    /// The flush timer: hands hiredis's output buffer to the socket. A write that does not
    /// complete makes hiredis ask for write readiness again, which `flushing` turns into EPOLLOUT.
    private func flushWrites() {
        flushTimer = nil
        guard let ac = context, !freeRequested else { return }
        flushing = true
        write(ac)
        flushing = false
    }

    private func write(_ ac: UnsafeMutablePointer<redisAsyncContext>) {
        if sigpipeIgnored {
            redisAsyncHandleWrite(ac)
        } else {
            Self.withoutSIGPIPE { redisAsyncHandleWrite(ac) }
        }
    }

    /// hiredis writes with plain write(2), so a write to a Redis that just went away raises
    /// SIGPIPE, which kills a process that does not ignore it (a test runner, an embedding app;
    /// `chorus serve` does ignore it, and then this is skipped: three system calls per write).
    /// SIGPIPE from write(2) is directed at the writing thread, so
    /// blocking it around the write makes the write fail with EPIPE instead (hiredis then drops
    /// the connection); the pending signal is consumed before the old mask comes back. hiredis
    /// writes only here, on write readiness: commands are only buffered when they are sent.
    private static func withoutSIGPIPE(_ body: () -> Void) {
        var pipe = sigset_t()
        var old = sigset_t()
        sigemptyset(&pipe)
        sigaddset(&pipe, SIGPIPE)
        pthread_sigmask(SIG_BLOCK, &pipe, &old)
        body()
        if sigismember(&old, SIGPIPE) == 0 {
            var pending = sigset_t()
            sigpending(&pending)
            if sigismember(&pending, SIGPIPE) == 1 {
                var now = timespec()
                _ = sigtimedwait(&pipe, nil, &now)
            }
            pthread_sigmask(SIG_SETMASK, &old, nil)
        }
    }

    // MARK: Commands

    /// Registers a reply to wait for (with an optional time-out); returns its id for `transmit`.
    func expectReply(timeoutNanoseconds: UInt64?, _ done: @escaping (Result<RedisValue, RedisError>) -> Void) -> UInt64
    {
        let id = nextID
        nextID &+= 1
        var entry = Pending(done: done, timer: nil)
        if let timeoutNanoseconds {
            entry.timer = loop.schedule(afterNanoseconds: timeoutNanoseconds) { [self] in
                guard let p = pending.removeValue(forKey: id) else { return }
                commandsTimedOut += 1
                p.done(.failure(.timeout))
            }
        }
        pending[id] = entry
        return id
    }

    func isAwaiting(_ id: UInt64) -> Bool { pending[id] != nil }

    /// Forgets a reply without calling it back.
    func cancelReply(_ id: UInt64) {
        if let p = pending.removeValue(forKey: id), let t = p.timer { loop.cancel(t) }
    }

    /// Fails a registered reply now (queue full, stopped).
    func failReply(_ id: UInt64, _ error: RedisError) {
        guard let p = pending.removeValue(forKey: id) else { return }
        if let t = p.timer { loop.cancel(t) }
        p.done(.failure(error))
    }

    /// Hands a command to hiredis; its reply goes to the entry `id`. False when there is no
    /// context or hiredis refuses (the context is closing): the caller keeps the command.
    func transmit(_ argv: [[UInt8]], id: UInt64) -> Bool {
        guard send(argv, subscription: false, privdata: UnsafeMutableRawPointer(bitPattern: UInt(id))) else {
            return false
        }
        pending[id]?.sent = true
        return true
    }

    /// `PUBLISH channel message`; the reply only updates counters (privdata carries the size).
    func transmitPublish(channel c: UnsafeRawBufferPointer, message m: UnsafeRawBufferPointer) -> Bool {
        guard let ac = context, !freeRequested else { return false }
        let bytes = c.count + m.count
        return withUnsafeTemporaryAllocation(of: UnsafePointer<CChar>?.self, capacity: 3) { argv in
            withUnsafeTemporaryAllocation(of: Int.self, capacity: 3) { lengths in
                argv[0] = Self.publishName
                lengths[0] = 7
                argv[1] = Self.pointer(c)
                lengths[1] = c.count
                argv[2] = Self.pointer(m)
                lengths[2] = m.count
                return redisAsyncCommandArgv(
                    ac, publishReplied, UnsafeMutableRawPointer(bitPattern: UInt(bytes + 8)),
                    3, argv.baseAddress, lengths.baseAddress) == REDIS_OK
            }
        }
    }

    /// Subscriber: SUBSCRIBE/UNSUBSCRIBE/PSUBSCRIBE/PUNSUBSCRIBE, whose replies hiredis routes to
    /// the subscription callback.
    func transmitSubscription(_ argv: [[UInt8]]) -> Bool {
        send(argv, subscription: true, privdata: nil)
    }

    private func send(_ argv: [[UInt8]], subscription: Bool, privdata: UnsafeMutableRawPointer?) -> Bool {
        guard let ac = context, !freeRequested, !argv.isEmpty else { return false }
        return withUnsafeTemporaryAllocation(of: UnsafePointer<CChar>?.self, capacity: argv.count) { pointers in
            withUnsafeTemporaryAllocation(of: Int.self, capacity: argv.count) { lengths in
                Self.pinning(argv, 0, pointers, lengths) {
                    // A C function pointer must be formed from a function's name, hence the two calls.
                    subscription
                        ? redisAsyncCommandArgv(
                            ac, subscriptionReplied, privdata, Int32(argv.count), pointers.baseAddress,
                            lengths.baseAddress) == REDIS_OK
                        : redisAsyncCommandArgv(
                            ac, commandReplied, privdata, Int32(argv.count), pointers.baseAddress, lengths.baseAddress)
                            == REDIS_OK
                }
            }
        }
    }

    /// Keeps every argument's storage pinned while `body` runs (nested withUnsafeBytes).
    private static func pinning(
        _ argv: [[UInt8]], _ i: Int, _ pointers: UnsafeMutableBufferPointer<UnsafePointer<CChar>?>,
        _ lengths: UnsafeMutableBufferPointer<Int>, _ body: () -> Bool
    ) -> Bool {
        if i == argv.count { return body() }
        return argv[i].withUnsafeBytes { bytes in
            pointers[i] = pointer(bytes)
            lengths[i] = bytes.count
            return pinning(argv, i + 1, pointers, lengths, body)
        }
    }

    nonisolated(unsafe) private static let emptyArgument: UnsafeMutablePointer<CChar> = {
        let p = UnsafeMutablePointer<CChar>.allocate(capacity: 1)
        p.pointee = 0
        return p
    }()
    nonisolated(unsafe) private static let publishName: UnsafePointer<CChar> = {
        let p = UnsafeMutablePointer<CChar>.allocate(capacity: 8)
        for (i, c) in "PUBLISH".utf8.enumerated() { p[i] = CChar(bitPattern: c) }
        p[7] = 0
        return UnsafePointer(p)
    }()

    private static func pointer(_ bytes: UnsafeRawBufferPointer) -> UnsafePointer<CChar> {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return UnsafePointer(emptyArgument) }
        return base.assumingMemoryBound(to: CChar.self)
    }

    fileprivate func replied(id: UInt64, reply: UnsafePointer<redisReply>?) {
        guard let p = pending.removeValue(forKey: id) else { return }  // timed out or cancelled
        if let t = p.timer { loop.cancel(t) }
        guard let reply else {
            let reason = closingReason ?? context.flatMap(Self.errorString) ?? "connection lost"
            p.done(.failure(phase == .stopped ? .stopped : .disconnected(reason)))
            return
        }
        guard let value = RedisValue(reply: reply) else {
            malformedReplies += 1
            p.done(.failure(.malformedReply))
            return
        }
        if case .error(let message) = value {
            p.done(.failure(.server(message)))
        } else {
            p.done(.success(value))
        }
    }

    // MARK: C glue

    fileprivate static func from(_ data: UnsafeMutableRawPointer?) -> RedisConnection? {
        guard let data else { return nil }
        return Unmanaged<RedisConnection>.fromOpaque(data).takeUnretainedValue()
    }

    /// The context's error text (hiredis's `errstr`), or nil when it has no error.
    static func errorString(_ ac: UnsafeMutablePointer<redisAsyncContext>) -> String? {
        guard ac.pointee.c.err != 0 else { return nil }
        return withUnsafeBytes(of: ac.pointee.c.errstr) { raw in
            let bytes = raw.prefix { $0 != 0 }
            return bytes.isEmpty ? "error \(ac.pointee.c.err)" : String(decoding: bytes, as: UTF8.self)
        }
    }

    private static func numericAddress(for name: String) -> String? {
        var v4 = in_addr()
        var v6 = in6_addr()
        if inet_pton(AF_INET, name, &v4) == 1 || inet_pton(AF_INET6, name, &v6) == 1 { return name }
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(name, nil, &hints, &result) == 0, let first = result else { return nil }
        defer { freeaddrinfo(result) }
        // Prefer IPv4, as hiredis does.
        var chosen = first
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let a = cursor {
            if a.pointee.ai_family == AF_INET { chosen = a; break }
            cursor = a.pointee.ai_next
        }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        let ok: Bool
        if chosen.pointee.ai_family == AF_INET {
            ok = chosen.pointee.ai_addr.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                var a = sin.pointee.sin_addr
                return inet_ntop(AF_INET, &a, &text, socklen_t(text.count)) != nil
            }
        } else {
            ok = chosen.pointee.ai_addr.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin in
                var a = sin.pointee.sin6_addr
                return inet_ntop(AF_INET6, &a, &text, socklen_t(text.count)) != nil
            }
        }
        return ok ? String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : nil
    }
}

// hiredis reply callbacks. `ac->data` is the connection (alive until its cleanup hook has run).
private func commandReplied(
    _ ac: UnsafeMutablePointer<redisAsyncContext>?, _ reply: UnsafeMutableRawPointer?,
    _ privdata: UnsafeMutableRawPointer?
) {
    guard let connection = RedisConnection.from(ac?.pointee.data) else { return }
    connection.replied(
        id: UInt64(UInt(bitPattern: privdata)),
        reply: reply.map { UnsafePointer($0.assumingMemoryBound(to: redisReply.self)) })
}

private func publishReplied(
    _ ac: UnsafeMutablePointer<redisAsyncContext>?, _ reply: UnsafeMutableRawPointer?,
    _ privdata: UnsafeMutableRawPointer?
) {
    guard let connection = RedisConnection.from(ac?.pointee.data) else { return }
    let bytes = Int(bitPattern: UInt(bitPattern: privdata)) - 8
    let ok = reply.map { $0.assumingMemoryBound(to: redisReply.self).pointee.type != REDIS_REPLY_ERROR } ?? false
    connection.onPublishReplied(bytes, ok)
}

private func subscriptionReplied(
    _ ac: UnsafeMutablePointer<redisAsyncContext>?, _ reply: UnsafeMutableRawPointer?,
    _ privdata: UnsafeMutableRawPointer?
) {
    guard let reply, let connection = RedisConnection.from(ac?.pointee.data) else { return }
    connection.onPush(UnsafePointer(reply.assumingMemoryBound(to: redisReply.self)))
}

/// Carries a loop-confined object into `EventLoop.execute`, whose task runs on that same loop.
/// Unchecked Sendable: the value is used only on that loop, before and after the hop.
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
