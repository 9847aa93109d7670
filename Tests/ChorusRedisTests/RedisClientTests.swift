import ChorusLoop
import ChorusRedis
import ChorusTestSupport
import Foundation
import Synchronization
import Testing

/// Each test starts its own redis-server (a free loopback port, no persistence) and kills it by
/// PID at the end. Serialized: they restart and pause servers and watch the process's sockets.
@Suite("Redis client and subscriber against a real redis-server", .serialized)
struct RedisClientTests {
    private static func url(_ server: RedisServerProcess, _ suffix: String = "") throws -> RedisURL {
        try RedisURL(parsing: "redis://\(suffix)127.0.0.1:\(server.port)")
    }

    private static let fast = RedisClientConfiguration(
        initialReconnectDelay: .milliseconds(50), maximumReconnectDelay: .milliseconds(200),
        connectTimeout: .seconds(2), commandTimeout: .seconds(5))

    @Test func publishAndSubscribeCarryBinaryPayloadsIntact() async throws {
        let server = try await RedisServerProcess.start()
        let harness = try TestLoop()
        defer { harness.shutdown() }
        let inbox = Inbox()
        let subscriber = RedisSubscriber(
            url: try Self.url(server), loop: harness.loop, configuration: Self.fast,
            logger: TestLoop.logger, onMessage: inbox.receive, onStateChange: inbox.record)
        let client = RedisClient(
            url: try Self.url(server), loop: harness.loop, configuration: Self.fast, logger: TestLoop.logger)
        defer { subscriber.stop(); client.stop() }
        subscriber.start()
        client.start()
        await subscriber.subscribeConfirmed(["chorus#/#"])
        let channel = Array("chorus#/#".utf8)
        let payloads: [[UInt8]] = [
            [0x93, 0x00, 0xA7, 0x00, 0x00, 0xFF, 0x0D, 0x0A, 0x24, 0x2A],  // zero bytes, CRLF, RESP markers
            [],
            Array(0...255).map { UInt8($0) },
            [UInt8](repeating: 0, count: 100_000),
        ]
        for p in payloads.dropLast() { client.publish(channel: channel, message: p) }
        // The last one from borrowed bytes, on the loop (what an encoder with a scratch buffer does).
        let last = payloads[payloads.count - 1]
        harness.loop.execute {
            last.withUnsafeBytes { m in channel.withUnsafeBytes { c in client.publishOnLoop(channel: c, message: m) } }
        }
        #expect(await eventually { inbox.received.count == payloads.count })
        #expect(inbox.payloads == payloads)
        #expect(inbox.received.allSatisfy { $0.channel == channel && $0.pattern == nil })
        let counters = await client.snapshot()
        #expect(counters.publishes == payloads.count && counters.publishDrops == 0)
        #expect(await eventually { await client.snapshot().publishFailures == 0 })
        #expect(await subscriber.snapshot().messagesReceived == payloads.count)
        #expect(inbox.stateLog == [.connected])
    }

    @Test func aPatternSubscriptionDeliversTheChannelAndThePattern() async throws {
        let server = try await RedisServerProcess.start()
        let harness = try TestLoop()
        defer { harness.shutdown() }
        let inbox = Inbox()
        let subscriber = RedisSubscriber(
            url: try Self.url(server), loop: harness.loop, logger: TestLoop.logger, onMessage: inbox.receive)
        let client = RedisClient(url: try Self.url(server), loop: harness.loop, logger: TestLoop.logger)
        defer { subscriber.stop(); client.stop() }
        subscriber.start()
        client.start()
        await subscriber.psubscribeConfirmed(["socket.io#/#room-*#"])
        client.publish(channel: Array("socket.io#/#room-42#".utf8), message: [1, 0, 2])
        client.publish(channel: Array("socket.io#/other#".utf8), message: [9])  // matches nothing
        client.publish(channel: Array("socket.io#/#room-7#".utf8), message: [3])
        #expect(await eventually { inbox.received.count == 2 })
        try await Task.sleep(for: .milliseconds(50))
        #expect(
            inbox.received == [
                .init(
                    channel: Array("socket.io#/#room-42#".utf8), pattern: Array("socket.io#/#room-*#".utf8),
                    payload: [1, 0, 2]),
                .init(
                    channel: Array("socket.io#/#room-7#".utf8), pattern: Array("socket.io#/#room-*#".utf8), payload: [3]
                ),
            ])
    }

    @Test func unsubscribeStopsDeliveryOfThatChannelOnly() async throws {
        let server = try await RedisServerProcess.start()
        let harness = try TestLoop()
        defer { harness.shutdown() }
        let inbox = Inbox()
        let subscriber = RedisSubscriber(
            url: try Self.url(server), loop: harness.loop, logger: TestLoop.logger, onMessage: inbox.receive)
        let client = RedisClient(url: try Self.url(server), loop: harness.loop, logger: TestLoop.logger)
        defer { subscriber.stop(); client.stop() }
        subscriber.start()
        client.start()
        await subscriber.subscribeConfirmed(["a", "b"])
        subscriber.unsubscribe([Array("a".utf8)])
        // NUMSUB answers after the UNSUBSCRIBE was processed: both went to the same server in order
        // only per connection, so poll.
        #expect(
            await eventually {
                await client.run(["PUBSUB", "NUMSUB", "a"]) == .success(.array([.bulk(Array("a".utf8)), .integer(0)]))
            })
        client.publish(channel: Array("a".utf8), message: [1])
        client.publish(channel: Array("b".utf8), message: [2])
        #expect(await eventually { inbox.received.count >= 1 })
        try await Task.sleep(for: .milliseconds(50))
        #expect(inbox.payloads == [[2]])
        #expect(await subscriber.snapshot().channels == 1)
    }

    @Test func pubsubNumsubThroughTheGenericCommand() async throws {
        let server = try await RedisServerProcess.start()
        let harness = try TestLoop()
        defer { harness.shutdown() }
        let subscriber = RedisSubscriber(
            url: try Self.url(server), loop: harness.loop, logger: TestLoop.logger, onMessage: { _ in })
        let client = RedisClient(url: try Self.url(server), loop: harness.loop, logger: TestLoop.logger)
        defer { subscriber.stop(); client.stop() }
        subscriber.start()
        client.start()
        await subscriber.subscribeConfirmed(["socket.io-request#/#"])
        let reply = await client.run(["PUBSUB", "NUMSUB", "socket.io-request#/#", "nobody"])
        #expect(
            reply
                == .success(
                    .array([
                        .bulk(Array("socket.io-request#/#".utf8)), .integer(1), .bulk(Array("nobody".utf8)),
                        .integer(0),
                    ])))
        // An error reply is a failure with Redis's message; the connection carries on.
        let wrong = await client.run(["NOSUCHCOMMAND"])
        guard case .failure(.server(let message)) = wrong else {
            Issue.record("expected a server error, got \(wrong)")
            return
        }
        #expect(message.contains("unknown command"))
        #expect(await client.run(["PING"]) == .success(.status("PONG")))
        #expect(await client.run(["GET", "missing"]) == .success(.null))
    }

    @Test func authWithThePasswordFromTheURL() async throws {
        let server = try await RedisServerProcess.start(["--requirepass", "s3cret"])
        let harness = try TestLoop()
        defer { harness.shutdown() }
        let inbox = Inbox()
        let client = RedisClient(
            url: try Self.url(server, ":s3cret@"), loop: harness.loop, logger: TestLoop.logger,
            onStateChange: inbox.record)
        let withUser = RedisClient(
            url: try Self.url(server, "default:s3cret@"), loop: harness.loop, logger: TestLoop.logger)
        let subscriber = RedisSubscriber(
            url: try Self.url(server, ":s3cret@"), loop: harness.loop, logger: TestLoop.logger, onMessage: inbox.receive
        )
        defer { client.stop(); withUser.stop(); subscriber.stop() }
        client.start()
        withUser.start()
        subscriber.start()
        await subscriber.subscribeConfirmed(["auth"])
        #expect(await client.run(["SET", "k", "v"]) == .success(.status("OK")))
        #expect(await withUser.run(["GET", "k"]) == .success(.bulk(Array("v".utf8))))
        client.publish(channel: Array("auth".utf8), message: [42])
        #expect(await eventually { inbox.payloads == [[42]] })
        #expect(inbox.stateLog == [.connected])
    }

    @Test func aWrongOrMissingPasswordIsAClearErrorAndTheClientKeepsRetrying() async throws {
        let server = try await RedisServerProcess.start(["--requirepass", "s3cret"])
        let harness = try TestLoop()
        defer { harness.shutdown() }
        let wrongStates = Inbox()
        let missingStates = Inbox()
        let wrong = RedisClient(
            url: try Self.url(server, ":nope@"), loop: harness.loop, configuration: Self.fast,
            logger: TestLoop.logger, onStateChange: wrongStates.record)
        let missing = RedisSubscriber(
            url: try Self.url(server), loop: harness.loop, configuration: Self.fast,
            logger: TestLoop.logger, onMessage: { _ in }, onStateChange: missingStates.record)
        defer { wrong.stop(); missing.stop() }
        wrong.start()
        missing.start()
        #expect(
            await eventually { !wrongStates.disconnectedReasons.isEmpty && !missingStates.disconnectedReasons.isEmpty })
        let wrongReason = try #require(wrongStates.disconnectedReasons.first)
        #expect(
            wrongReason.contains("AUTH failed")
                && (wrongReason.contains("WRONGPASS") || wrongReason.contains("invalid")))
        let missingReason = try #require(missingStates.disconnectedReasons.first)
        #expect(missingReason.contains("NOAUTH"))
        // It keeps trying (with back-off), tells the state once, and never connects.
        #expect(await eventually { await wrong.snapshot().connectFailures >= 3 })
        #expect(wrongStates.stateLog.count == 1)
        #expect(await wrong.snapshot().connects == 0)
        // A command waits in the queue and times out rather than hanging or crashing.
        #expect(await wrong.run(["PING"], timeout: .milliseconds(200)) == .failure(.timeout))
        #expect(server.isRunning)
    }

    @Test func theDatabaseFromTheURLIsSelected() async throws {
        let server = try await RedisServerProcess.start()
        let harness = try TestLoop()
        defer { harness.shutdown() }
        let db3 = RedisClient(
            url: try RedisURL(parsing: "redis://127.0.0.1:\(server.port)/3"), loop: harness.loop,
            logger: TestLoop.logger)
        let db0 = RedisClient(url: try Self.url(server), loop: harness.loop, logger: TestLoop.logger)
        defer { db3.stop(); db0.stop() }
        db3.start()
        db0.start()
        #expect(await db3.run(["SET", "where", "three"]) == .success(.status("OK")))
        #expect(await db0.run(["GET", "where"]) == .success(.null))
        #expect(await db3.run(["GET", "where"]) == .success(.bulk(Array("three".utf8))))
        #expect(await db0.run(["SELECT", "3"]) == .success(.status("OK")))
        #expect(await db0.run(["GET", "where"]) == .success(.bulk(Array("three".utf8))))
    }

    @Test func aUnixSocketURLWithADatabase() async throws {
        let server = try await RedisServerProcess.start(unixSocket: true)
        let harness = try TestLoop()
        defer { harness.shutdown() }
        let path = try #require(server.unixSocket)
        let client = RedisClient(
            url: try RedisURL(parsing: "unix://\(path)?db=5"), loop: harness.loop, logger: TestLoop.logger)
        let tcp = RedisClient(
            url: try RedisURL(parsing: "redis://127.0.0.1:\(server.port)/5"), loop: harness.loop,
            logger: TestLoop.logger)
        defer { client.stop(); tcp.stop() }
        client.start()
        tcp.start()
        #expect(await client.run(["SET", "via", "unix"]) == .success(.status("OK")))
        #expect(await tcp.run(["GET", "via"]) == .success(.bulk(Array("unix".utf8))))
    }

    @Test func startingWhileRedisIsDownConnectsResubscribesAndDeliversOnceItIsUp() async throws {
        let port = try RedisServerProcess.freeLoopbackPort()
        let url = try RedisURL(parsing: "redis://127.0.0.1:\(port)")
        let harness = try TestLoop()
        defer { harness.shutdown() }
        let inbox = Inbox()
        let clientStates = Inbox()
        let subscriber = RedisSubscriber(
            url: url, loop: harness.loop, configuration: Self.fast, logger: TestLoop.logger,
            onMessage: inbox.receive, onStateChange: inbox.record)
        let client = RedisClient(
            url: url, loop: harness.loop, configuration: Self.fast, logger: TestLoop.logger,
            onStateChange: clientStates.record)
        defer { subscriber.stop(); client.stop() }
        subscriber.start()
        client.start()
        subscriber.subscribe([Array("early".utf8)])
        subscriber.psubscribe([Array("early-*".utf8)])
        #expect(await eventually { await subscriber.snapshot().connectFailures >= 2 && inbox.lastState != nil })
        guard case .disconnected(let reason) = inbox.lastState else {
            Issue.record("expected a disconnected state first, got \(inbox.stateLog)")
            return
        }
        #expect(reason.lowercased().contains("refused"))
        let server = try await RedisServerProcess.start(port: port)
        #expect(await eventually { inbox.lastState == .connected && clientStates.lastState == .connected })
        client.publish(channel: Array("early".utf8), message: [1])
        client.publish(channel: Array("early-bird".utf8), message: [2])
        #expect(await eventually { inbox.received.count == 2 })
        #expect(inbox.received.map(\.payload) == [[1], [2]])
        #expect(inbox.received.last?.pattern == Array("early-*".utf8))
        #expect(await subscriber.snapshot().connects == 1)
        _ = server
    }

    @Test func reconnectAttemptsBackOffExponentiallyUpToTheCap() async throws {
        // Nothing listens on this port: every attempt is refused at once, so only the back-off
        // (50 ms doubling to 200 ms, minus up to 20 % jitter) paces them.
        let url = try RedisURL(parsing: "redis://127.0.0.1:\(try RedisServerProcess.freeLoopbackPort())")
        let harness = try TestLoop()
        defer { harness.shutdown() }
        let states = Inbox()
        let client = RedisClient(
            url: url, loop: harness.loop, configuration: Self.fast, logger: TestLoop.logger,
            onStateChange: states.record)
        defer { client.stop() }
        client.start()
        try await Task.sleep(for: .milliseconds(1200))
        let failures = await client.snapshot().connectFailures
        // 50 + 100 + 200 + 200 ... ms: about 7 attempts in 1.2 s (at most ~10 with full jitter);
        // without back-off it would be thousands. Fewer only if the machine is very slow.
        #expect((3...12).contains(failures), "\(failures) attempts in 1.2 s")
        #expect(states.stateLog.count == 1)  // the failure is told once, not per attempt
        // And publishes meanwhile wait in the queue.
        client.publish(channel: Array("c".utf8), message: [1, 2, 3])
        let counters = await client.snapshot()
        #expect(counters.queueLength == 1 && counters.queuedBytes == 4 && counters.publishes == 0)
    }

    @Test func aLoginThatNeverAnswersTimesOutAndIsRetried() async throws {
        let server = try await RedisServerProcess.start()
        server.pause()  // the kernel still accepts the TCP connection; PING gets no answer
        defer { server.resume() }
        let harness = try TestLoop()
        defer { harness.shutdown() }
        let states = Inbox()
        let configuration = RedisClientConfiguration(
            initialReconnectDelay: .milliseconds(50), maximumReconnectDelay: .milliseconds(100),
            connectTimeout: .milliseconds(300))
        let client = RedisClient(
            url: try Self.url(server), loop: harness.loop, configuration: configuration,
            logger: TestLoop.logger, onStateChange: states.record)
        defer { client.stop() }
        client.start()
        #expect(await eventually { !states.disconnectedReasons.isEmpty })
        #expect(states.disconnectedReasons.first?.contains("no connection and login within") == true)
        #expect(await eventually { await client.snapshot().connectFailures >= 2 })
        server.resume()
        #expect(await eventually { states.lastState == .connected })
        #expect(await client.run(["PING"]) == .success(.status("PONG")))
    }

    @Test func commandsThatWouldLeaveRequestReplyModeAreRefused() async throws {
        let server = try await RedisServerProcess.start()
        let harness = try TestLoop()
        defer { harness.shutdown() }
        let client = RedisClient(url: try Self.url(server), loop: harness.loop, logger: TestLoop.logger)
        defer { client.stop() }
        client.start()
        #expect(await client.run(["subscribe", "x"]) == .failure(.unsupportedCommand("subscribe")))
        #expect(await client.run(["MONITOR"]) == .failure(.unsupportedCommand("MONITOR")))
        #expect(await client.run(["HELLO", "3"]) == .failure(.unsupportedCommand("HELLO")))
        #expect(await client.run(["PING"]) == .success(.status("PONG")))
    }

    @Test func aRedisRestartMidStreamReconnectsResubscribesAndFlushesTheBoundedQueueInOrder() async throws {
        let server = try await RedisServerProcess.start()
        let url = try Self.url(server)
        let harness = try TestLoop()
        defer { harness.shutdown() }
        let inbox = Inbox()
        let clientStates = Inbox()
        let subscriber = RedisSubscriber(
            url: url, loop: harness.loop, configuration: Self.fast, logger: TestLoop.logger,
            onMessage: inbox.receive, onStateChange: inbox.record)
        // The publisher retries slowly and the subscriber fast, so that after the restart the
        // subscriber is back (resubscribed) before the queued publishes are flushed.
        let slow = RedisClientConfiguration(
            initialReconnectDelay: .milliseconds(1500), maximumReconnectDelay: .milliseconds(1500),
            maxQueuedCommands: 5)
        let client = RedisClient(
            url: url, loop: harness.loop, configuration: slow, logger: TestLoop.logger,
            onStateChange: clientStates.record)
        defer { subscriber.stop(); client.stop() }
        subscriber.start()
        client.start()
        await subscriber.subscribeConfirmed(["stream"])
        let channel = Array("stream".utf8)
        for i in 0..<10 { client.publish(channel: channel, message: [UInt8(i), 0]) }
        #expect(await eventually { inbox.received.count == 10 })

        server.kill()
        #expect(await eventually { clientStates.lastState.map { $0 != .connected } ?? false })
        #expect(await eventually { inbox.lastState.map { $0 != .connected } ?? false })
        // Five fit the queue, five are dropped and counted.
        for i in 10..<20 { client.publish(channel: channel, message: [UInt8(i), 0]) }
        #expect(await eventually { await client.snapshot().queueLength == 5 })
        #expect(await client.snapshot().publishDrops == 5)

        try await server.restart()
        #expect(await eventually { inbox.stateLog.last == .connected && inbox.connectedCount == 2 })
        #expect(
            await client.snapshot().reconnects == 0,
            "the publisher reconnected before the subscriber; the test's timing assumption failed")
        #expect(await eventually { clientStates.lastState == .connected })
        #expect(await eventually { inbox.received.count == 15 })
        try await Task.sleep(for: .milliseconds(50))
        #expect(inbox.payloads == (0..<15).map { [UInt8($0), 0] })
        let counters = await client.snapshot()
        #expect(counters.reconnects == 1 && counters.connects == 2)
        #expect(counters.queueLength == 0 && counters.queuedBytes == 0)
        #expect(counters.publishes == 15 && counters.publishDrops == 5)
        let subscriberCounters = await subscriber.snapshot()
        #expect(subscriberCounters.reconnects == 1 && subscriberCounters.channels == 1)
    }

    @Test func repeatedRestartsUnderAStreamOfPublishesLoseNothingUnaccounted() async throws {
        let server = try await RedisServerProcess.start()
        let harness = try TestLoop()
        defer { harness.shutdown() }
        let inbox = Inbox()
        let clientStates = Inbox()
        let subscriber = RedisSubscriber(
            url: try Self.url(server), loop: harness.loop, configuration: Self.fast,
            logger: TestLoop.logger, onMessage: inbox.receive, onStateChange: inbox.record)
        let client = RedisClient(
            url: try Self.url(server), loop: harness.loop,
            configuration: RedisClientConfiguration(
                initialReconnectDelay: .milliseconds(20),
                maximumReconnectDelay: .milliseconds(100), maxQueuedCommands: 200),
            logger: TestLoop.logger, onStateChange: clientStates.record)
        defer { subscriber.stop(); client.stop() }
        subscriber.start()
        client.start()
        await subscriber.subscribeConfirmed(["flood"])
        let channel = Array("flood".utf8)
        var published = 0
        for round in 0..<3 {
            for i in 0..<300 {
                client.publish(channel: channel, message: [UInt8(round), UInt8(truncatingIfNeeded: i), 0])
                published += 1
                if i % 10 == 0 { try await Task.sleep(for: .milliseconds(1)) }
                if i == 150 { server.kill() }
                if i == 250 { try await server.restart() }
            }
        }
        // Back together once a marker goes round (published again until one arrives: one sent
        // before the subscriber resubscribed is lost, as Redis keeps nothing for absent subscribers).
        var markers = 0
        let through = await eventually {
            client.publish(channel: channel, message: [9, 9, 9])
            markers += 1
            try? await Task.sleep(for: .milliseconds(40))
            return inbox.received.last?.payload == [9, 9, 9]
        }
        #expect(through)
        #expect(await eventually { await client.snapshot().queueLength == 0 })
        let counters = await client.snapshot()
        // Every publish is sent or dropped (queue full): none vanishes uncounted.
        #expect(counters.publishes + counters.publishDrops == published + markers, "\(counters)")
        // Outages close together may merge into one (the client still backing off at the next kill).
        #expect((1...3).contains(counters.reconnects))
        #expect(clientStates.lastState == .connected && inbox.lastState == .connected)
    }

    @Test func aCommandTimesOutAgainstAPausedRedisAndTheLateReplyIsDropped() async throws {
        let server = try await RedisServerProcess.start()
        let harness = try TestLoop()
        defer { harness.shutdown() }
        let client = RedisClient(url: try Self.url(server), loop: harness.loop, logger: TestLoop.logger)
        defer { client.stop() }
        client.start()
        #expect(await client.run(["PING"]) == .success(.status("PONG")))
        server.pause()
        defer { server.resume() }
        let started = ContinuousClock.now
        #expect(await client.run(["ECHO", "late"], timeout: .milliseconds(300)) == .failure(.timeout))
        #expect(ContinuousClock.now - started >= .milliseconds(300))
        #expect(await client.snapshot().commandsTimedOut == 1)
        server.resume()
        // The late reply to ECHO arrives first and is dropped; this command gets its own reply.
        #expect(await client.run(["ECHO", "fresh"]) == .success(.bulk(Array("fresh".utf8))))
        #expect(await client.snapshot().connects == 1)
    }

    @Test func stopReleasesTheSocketsTimersAndRegistrations() async throws {
        let server = try await RedisServerProcess.start()
        let harness = try TestLoop()
        defer { harness.shutdown() }
        let inbox = Inbox()
        let client = RedisClient(url: try Self.url(server), loop: harness.loop, logger: TestLoop.logger)
        let subscriber = RedisSubscriber(
            url: try Self.url(server), loop: harness.loop, logger: TestLoop.logger, onMessage: inbox.receive)
        client.start()
        subscriber.start()
        await subscriber.subscribeConfirmed(["bye"])
        client.publish(channel: Array("bye".utf8), message: [1])
        #expect(await eventually { inbox.received.count == 1 })
        #expect(Self.socketsConnected(toPort: server.port) == 2)
        #expect(Self.keepAliveFlags(toPort: server.port) == [1, 1])
        #expect(await harness.onLoop { harness.loop.foreignRegistrationCount } == 2)

        // A command waiting in flight fails with .stopped rather than vanishing.
        server.pause()
        let pending = Mutex<Result<RedisValue, RedisError>?>(nil)
        client.command([Array("PING".utf8)]) { result in pending.withLock { $0 = result } }
        try await Task.sleep(for: .milliseconds(50))
        client.stop()
        subscriber.stop()
        await harness.onLoop {}  // both stops ran (tasks run in order) before Redis can answer
        server.resume()
        #expect(await eventually { pending.withLock { $0 } != nil })
        #expect(pending.withLock { $0 } == .failure(.stopped))
        #expect(await harness.onLoop { harness.loop.foreignRegistrationCount } == 0)
        #expect(await harness.onLoop { harness.loop.pendingTimerCount } == 0)
        // This process's sockets to this Redis, not the process-wide descriptor count: other
        // suites run in parallel and open descriptors of their own meanwhile.
        #expect(Self.socketsConnected(toPort: server.port) == 0)
        // Publishing after stop is dropped and counted, never sent.
        client.publish(channel: Array("bye".utf8), message: [2])
        #expect(await client.snapshot().publishDrops == 1)
        try await Task.sleep(for: .milliseconds(100))
        #expect(Self.socketsConnected(toPort: server.port) == 0)
    }

    @Test func aClientOrSubscriberReleasedWithoutStopClosesItsConnection() async throws {
        let server = try await RedisServerProcess.start()
        let harness = try TestLoop()
        defer { harness.shutdown() }
        do {
            let client = RedisClient(url: try Self.url(server), loop: harness.loop, logger: TestLoop.logger)
            let subscriber = RedisSubscriber(
                url: try Self.url(server), loop: harness.loop, logger: TestLoop.logger, onMessage: { _ in })
            client.start()
            subscriber.start()
            await subscriber.subscribeConfirmed(["x"])
            #expect(await client.run(["PING"]) == .success(.status("PONG")))
            #expect(Self.socketsConnected(toPort: server.port) == 2)
        }
        #expect(await eventually { Self.socketsConnected(toPort: server.port) == 0 })
        #expect(await harness.onLoop { harness.loop.foreignRegistrationCount } == 0)
        #expect(await harness.onLoop { harness.loop.pendingTimerCount } == 0)
    }

    // MARK: Descriptor accounting

    /// SO_KEEPALIVE of each of this process's sockets connected to 127.0.0.1:`port`.
    private static func keepAliveFlags(toPort port: UInt16) -> [Int32] {
        let inodes = Set(tcpInodes(toPort: port))
        var flags: [Int32] = []
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? [] {
            guard let fd = Int32(entry),
                let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(entry)"),
                target.hasPrefix("socket:["), inodes.contains(String(target.dropFirst(8).dropLast()))
            else { continue }
            var value: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &value, &length)
            flags.append(value)
        }
        return flags
    }

    /// Inodes of the TCP sockets (of any process) whose peer is 127.0.0.1:`port`.
    private static func tcpInodes(toPort port: UInt16) -> [String] {
        let remote = String(format: "0100007F:%04X", port)
        guard let handle = FileHandle(forReadingAtPath: "/proc/net/tcp"), let data = try? handle.readToEnd() else {
            return []
        }
        return String(decoding: data, as: UTF8.self).split(separator: "\n").dropFirst().compactMap { line in
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            return fields.count > 9 && fields[2] == remote ? String(fields[9]) : nil
        }
    }

    /// This process's TCP sockets whose peer is 127.0.0.1:`port` (from /proc/net/tcp, matched by
    /// inode against /proc/self/fd), so other tests' descriptors do not disturb the count.
    private static func socketsConnected(toPort port: UInt16) -> Int {
        var ours = Set<String>()
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? [] {
            if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(entry)"),
                target.hasPrefix("socket:[")
            {
                ours.insert(String(target.dropFirst(8).dropLast()))
            }
        }
        let remote = String(format: "0100007F:%04X", port)
        // /proc files report size 0: read to EOF rather than by size.
        guard let handle = FileHandle(forReadingAtPath: "/proc/net/tcp"), let data = try? handle.readToEnd() else {
            return -1
        }
        let table = String(decoding: data, as: UTF8.self)
        var count = 0
        for line in table.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count > 9, fields[2] == remote else { continue }
            // State 01 is ESTABLISHED; a closed socket may linger in TIME_WAIT without an inode.
            if ours.contains(String(fields[9])) { count += 1 }
        }
        return count
    }
}
