import ChorusLoop
import ChorusWebSocket
import Testing

@testable import ChorusServer

/// Connections with no socket behind them (descriptor -1, never flushed), owned by a loop that is
/// never run: what the fan-out and the close handshake are tested on.
final class SocketlessConnections {
    let server: WebSocketServer
    let loop: ServerLoop
    private var nextSlot: Int32 = 0

    init() throws {
        let configuration = ServerConfiguration()
        server = WebSocketServer(configuration: configuration, application: EchoApplication())
        loop = try ServerLoop(
            server: server, index: 0, configuration: configuration,
            application: server.application, logger: server.logger)
    }

    /// A connection past its upgrade; `sharedCompression`: it agreed to permessage-deflate with a
    /// window that takes the shared compressed frames.
    func open(sharedCompression: Bool = false) throws -> Connection {
        let connection = try handshaking()
        connection.upgraded(subprotocol: nil, agreement: nil)
        connection.acceptsSharedCompression = sharedCompression
        return connection
    }

    /// A connection still reading its HTTP request.
    func handshaking() throws -> Connection {
        defer { nextSlot += 1 }
        return Connection(
            loop: loop, id: ConnectionID(loop: 0, slot: nextSlot, generation: 1), fd: -1,
            remoteAddress: try SocketAddress(host: "127.0.0.1", port: 1), now: 0)
    }
}

/// A broadcast of `size` payload bytes; with `compressedSize`, a compressed variant of that size.
func frame(_ size: Int, compressedSize: Int? = nil, arena: FrameArena? = nil) -> OutgoingFrame {
    let payload = [UInt8](repeating: 0x61, count: size)
    let plain = payload.withUnsafeBytes { OutgoingFrame.encode(.text, $0, arena: arena) }
    let compressed = compressedSize.map { n in
        [UInt8](repeating: 0x62, count: n).withUnsafeBytes { OutgoingFrame.encode(.text, $0, rsv1: true) }
    }
    return OutgoingFrame(plain: plain, compressed: compressed, payloadCount: size)
}

@Suite("Fan-out (no sockets)")
struct FanoutTests {
    static let unlimited = Int.max / 2

    @Test func anEmitToSeveralRoomsQueuesTheFrameOncePerMember() throws {
        let pool = try SocketlessConnections()
        let (a, b, c) = (try pool.open(), try pool.open(), try pool.open())
        var rooms = RoomRegistry()
        rooms.join(a, "r1"); rooms.join(a, "r2"); rooms.join(b, "r2"); rooms.join(c, "other")
        var fanout = Fanout(maxBackpressure: Self.unlimited, policy: .drop)
        let f = frame(10)
        fanout.deliver(f, to: .rooms(["r1", "r2"]), rooms: rooms, open: [a, b, c], except: nil)
        #expect(a.outbound.byteCount == f.plain.count)
        #expect(b.outbound.byteCount == f.plain.count)
        #expect(c.outbound.isEmpty)
        #expect(fanout.dirty.map(\.id) == [a.id, b.id])
        #expect(fanout.deliveries == 2)
    }

    @Test func exceptRoomsAndTheExceptedConnectionAreSkipped() throws {
        let pool = try SocketlessConnections()
        let (a, b, c, d) = (try pool.open(), try pool.open(), try pool.open(), try pool.open())
        var rooms = RoomRegistry()
        for member in [a, b, c, d] { rooms.join(member, "r") }
        rooms.join(b, "muted")
        var fanout = Fanout(maxBackpressure: Self.unlimited, policy: .drop)
        fanout.deliver(
            frame(5), to: BroadcastTarget.rooms(["r"]).except(["muted"]), rooms: rooms, open: [a, b, c, d], except: c)
        #expect(!a.outbound.isEmpty && !d.outbound.isEmpty)
        #expect(b.outbound.isEmpty && c.outbound.isEmpty)
        // The marks of one emit do not leak into the next.
        fanout.deliver(frame(5), to: .rooms(["r"]), rooms: rooms, open: [a, b, c, d], except: nil)
        #expect(!b.outbound.isEmpty && !c.outbound.isEmpty)
    }

    @Test func anEmitToEveryoneReachesOpenConnectionsInNoRoomAndSkipsOthers() throws {
        let pool = try SocketlessConnections()
        let open = try pool.open()
        let handshaking = try pool.handshaking()
        var fanout = Fanout(maxBackpressure: Self.unlimited, policy: .drop)
        fanout.deliver(frame(3), to: .all, rooms: RoomRegistry(), open: [open, handshaking], except: nil)
        #expect(!open.outbound.isEmpty)
        #expect(handshaking.outbound.isEmpty)
        #expect(fanout.dirty.count == 1)
    }

    @Test func eachRecipientGetsTheVariantItsWindowTakes() throws {
        let pool = try SocketlessConnections()
        let plainClient = try pool.open()
        let deflateClient = try pool.open(sharedCompression: true)
        var fanout = Fanout(maxBackpressure: Self.unlimited, policy: .drop)
        let f = frame(200, compressedSize: 20)
        fanout.deliver(f, to: .all, rooms: RoomRegistry(), open: [plainClient, deflateClient], except: nil)
        #expect(plainClient.outbound.byteCount == f.plain.count)
        #expect(deflateClient.outbound.byteCount == f.compressed!.count)
        // Without a compressed variant everyone gets the plain frame.
        let small = frame(4)
        fanout.deliver(small, to: .all, rooms: RoomRegistry(), open: [deflateClient], except: nil)
        #expect(deflateClient.outbound.byteCount == f.compressed!.count + small.plain.count)
    }

    @Test func consecutiveArenaFramesExtendOneQueueEntryAndAreChargedOnce() throws {
        let pool = try SocketlessConnections()
        let client = try pool.open()
        let arena = FrameArena()
        var fanout = Fanout(maxBackpressure: Self.unlimited, policy: .drop)
        let frames = (0..<10).map { _ in frame(16, arena: arena) }
        for f in frames { fanout.deliver(f, to: .all, rooms: RoomRegistry(), open: [client], except: nil) }
        #expect(client.outbound.entryCount == 1)
        #expect(client.outbound.byteCount == 10 * frames[0].plain.count)
        #expect(client.outbound.charge == frames[0].plain.bufferCapacity + OutboundQueue.entryCost)
        #expect(fanout.dirty.count == 1)
    }

    @Test func dropPolicyTakesOneMessageIntoAnEmptyQueueThenDrops() throws {
        let pool = try SocketlessConnections()
        let slow = try pool.open()
        var fanout = Fanout(maxBackpressure: 100, policy: .drop)
        let big = frame(1000)
        fanout.deliver(big, to: .all, rooms: RoomRegistry(), open: [slow], except: nil)
        #expect(slow.outbound.byteCount == big.plain.count)
        fanout.deliver(frame(1), to: .all, rooms: RoomRegistry(), open: [slow], except: nil)
        #expect(slow.outbound.byteCount == big.plain.count)
        #expect(fanout.deliveries == 1 && fanout.dropped == 1)
        #expect(fanout.backpressureCloses.isEmpty)
    }

    @Test func theKernelsSendQueueCountsTowardTheLimit() throws {
        let pool = try SocketlessConnections()
        let client = try pool.open()
        var fanout = Fanout(maxBackpressure: 10_000, policy: .drop)
        fanout.deliver(frame(10), to: .all, rooms: RoomRegistry(), open: [client], except: nil)
        client.kernelQueued = 10_000
        fanout.deliver(frame(10), to: .all, rooms: RoomRegistry(), open: [client], except: nil)
        #expect(fanout.dropped == 1)
        client.kernelQueued = 0
        fanout.deliver(frame(10), to: .all, rooms: RoomRegistry(), open: [client], except: nil)
        #expect(fanout.deliveries == 2)
    }

    @Test func closePolicyListsASlowConsumerOnceHoweverManyEmitsFindIt() throws {
        let pool = try SocketlessConnections()
        let slow = try pool.open()
        let fast = try pool.open()
        var fanout = Fanout(maxBackpressure: 1000, policy: .close)
        fanout.deliver(frame(2000), to: .all, rooms: RoomRegistry(), open: [slow], except: nil)
        for _ in 0..<3 { fanout.deliver(frame(10), to: .all, rooms: RoomRegistry(), open: [slow, fast], except: nil) }
        #expect(fanout.backpressureCloses.map(\.id) == [slow.id])
        #expect(slow.backpressureClosePending)
        #expect(fanout.backpressureClosed == 1 && fanout.dropped == 0)
        #expect(fast.outbound.byteCount > 0)
    }

    @Test func aGroupIsQueuedWholeOrNotAtAll() throws {
        let pool = try SocketlessConnections()
        let client = try pool.open()
        var fanout = Fanout(maxBackpressure: 3000, policy: .drop)
        let group = [frame(1000), frame(1000)]
        fanout.deliver(group, to: .all, rooms: RoomRegistry(), open: [client], except: nil)
        let whole = group.reduce(0) { $0 + $1.plain.count }
        #expect(client.outbound.byteCount == whole)
        // The next group would pass the limit: none of it is queued.
        fanout.deliver(group, to: .all, rooms: RoomRegistry(), open: [client], except: nil)
        #expect(client.outbound.byteCount == whole)
        #expect(fanout.dropped == 1 && fanout.deliveries == 2)
    }

    @Test func theCountersReachTheLoopsStatistics() throws {
        let pool = try SocketlessConnections()
        let clients = try (0..<3).map { _ in try pool.open() }
        var fanout = Fanout(maxBackpressure: Self.unlimited, policy: .drop)
        fanout.deliver(frame(1), to: .all, rooms: RoomRegistry(), open: ContiguousArray(clients), except: nil)
        fanout.deliver(frame(1), to: .all, rooms: RoomRegistry(), open: ContiguousArray(clients), except: clients[0])
        var stats = ServerStats()
        fanout.record(into: &stats)
        #expect(stats.broadcasts == 2)
        #expect(stats.broadcastRecipients == 5)
        #expect(stats.deliveries == 5)
        #expect(stats.fanout[ServerStats.Histograms.fanoutIndex(3)] >= 1)
        #expect(stats.fanout.wrappedSum() == 2)
    }
}
