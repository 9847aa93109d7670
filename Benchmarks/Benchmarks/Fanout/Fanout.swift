// Room emit fan-out: the per-recipient step of `ServerLoop.deliver` is queueing a reference to the
// one shared frame buffer on each recipient's `OutboundQueue`.
//
// `ServerLoop`, `Connection` and `LocalRoom` are internal to ChorusServer and only come to life
// behind real sockets (`WebSocketServer.start()` binds and accepts), so the real `deliver` cannot be
// driven in-process. These benchmarks therefore measure the same per-recipient work on 10,000
// in-memory recipients: `OutboundQueue.append(SharedBytes)` (one retain + one array append), bare and
// wrapped the way `ServerLoop.enqueueBytes` wraps it (backpressure check, delivery count, dirty list).
//
// One op = one emit to all 10,000 recipients (scalingFactor .one): divide time and mallocs by
// 10,000 for the per-recipient figures.
import Benchmark
import ChorusLoop
import ChorusServer

#if canImport(Glibc)
import Glibc
#endif

let recipientCount = 10_000

/// Stands in for `Connection`: a class per recipient holding its outbound queue, iterated from a
/// `ContiguousArray` as `LocalRoom.members` is.
final class Recipient {
    var outbound = OutboundQueue()
    var isDirty = false
}

final class Room {
    let members: ContiguousArray<Recipient> = ContiguousArray((0..<recipientCount).map { _ in Recipient() })
    /// The loop's flush list (`ServerLoop.dirty`), kept with its capacity.
    var dirty: ContiguousArray<Recipient> = []
    var deliveries = 0
    var dropped = 0
    let maxBackpressure = 1 << 20
    /// Queues are drained the way the server's flush drains them: `OutboundQueue.flush` writes to a
    /// socket (a Unix socketpair here, emptied after each recipient), and `consume` releases the
    /// references and keeps the entries' capacity. (`flush` uses send/sendmsg, which need a socket.)
    let writer: Int32
    let reader: Int32
    let iov = UnsafeMutablePointer<iovec>.allocate(capacity: 64)
    let scratch = UnsafeMutableRawPointer.allocate(byteCount: 256 * 1024, alignment: 16)

    init() {
        dirty.reserveCapacity(recipientCount)
        var fds: [Int32] = [0, 0]
        precondition(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        (writer, reader) = (fds[0], fds[1])
        var size: Int32 = 1 << 20
        setsockopt(writer, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        setsockopt(reader, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
    }

    func drainKeepingCapacity() {
        for r in members {
            let pending = r.outbound.byteCount
            let drained = try! r.outbound.flush(fd: writer, iov: iov, iovCapacity: 64)
            precondition(drained && r.outbound.isEmpty)
            var left = pending
            while left > 0 { left -= read(reader, scratch, min(left, 256 * 1024)) }
            r.isDirty = false
        }
        dirty.removeAll(keepingCapacity: true)
    }

    func drainDroppingCapacity() {
        for r in members {
            r.outbound.removeAll()
            r.isDirty = false
        }
        dirty.removeAll(keepingCapacity: true)
    }

    /// Mirrors `ServerLoop.enqueueBytes` + `markDirty` (policy .drop), with its backpressure check
    /// on the queue's charge. (A copy, because the server's is internal; the `Server` benchmark
    /// target measures the real path end to end.)
    @inline(__always)
    func enqueue(_ bytes: SharedBytes, to r: Recipient) {
        if r.outbound.charge + r.outbound.charge(ofAppending: bytes) > maxBackpressure && !r.outbound.isEmpty {
            dropped &+= 1
            return
        }
        r.outbound.append(bytes)
        deliveries &+= 1
        if !r.isDirty {
            r.isDirty = true
            dirty.append(r)
        }
    }
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.throughput, .wallClock, .mallocCountTotal],
        warmupIterations: 3,
        scalingFactor: .one,
        maxDuration: .seconds(2),
        maxIterations: 10_000)

    // A ~1 KiB text frame, encoded once (the SharedBytes every queue points at).
    let payload = [UInt8](repeating: UInt8(ascii: "x"), count: 1024)
    let frame = payload.withUnsafeBytes { OutgoingFrame.encode(.text, $0) }

    /// Appends `frame` to every queue, after draining them with `drain` (not measured).
    func appendToAll(_ name: String, drain: @escaping (Room) -> Void) {
        let room = Room()
        Benchmark("Fan-out 10k: OutboundQueue.append \(name)") { benchmark in
            drain(room)
            benchmark.startMeasurement()
            for r in room.members {
                r.outbound.append(frame)
            }
            benchmark.stopMeasurement()
        }
    }

    appendToAll("(queues keep capacity)") { $0.drainKeepingCapacity() }

    let serverLike = Room()
    Benchmark("Fan-out 10k: enqueue as ServerLoop.enqueueBytes (queues keep capacity)") { benchmark in
        serverLike.drainKeepingCapacity()
        benchmark.startMeasurement()
        for r in serverLike.members {
            serverLike.enqueue(frame, to: r)
        }
        benchmark.stopMeasurement()
        precondition(serverLike.dirty.count == recipientCount)
    }

    // For contrast: draining with `removeAll()` (what a close does) frees each queue's storage, so
    // the next append allocates: one malloc per recipient.
    appendToAll("after removeAll() (capacity dropped)") { $0.drainDroppingCapacity() }

    // A burst: 16 chat-sized frames (64 B payloads) emitted to the same 10,000 recipients, then
    // flushed. From a `FrameArena` they lie back to back, so each recipient's queue extends one
    // entry (one iovec); as separate buffers each frame is its own entry, reference and iovec.
    // One op = 16 emits to all recipients + the flush through the socketpair.
    let small = [UInt8](repeating: UInt8(ascii: "y"), count: 64)
    func burst(_ name: String, arena: FrameArena?) {
        let room = Room()
        Benchmark("Fan-out 10k x 16 frames: \(name)") { benchmark in
            benchmark.startMeasurement()
            for _ in 0..<16 {
                let f = small.withUnsafeBytes { OutgoingFrame.encode(.text, $0, arena: arena) }
                for r in room.members { room.enqueue(f, to: r) }
            }
            room.drainKeepingCapacity()
            benchmark.stopMeasurement()
        }
    }
    burst("carved from one arena (contiguous)", arena: FrameArena())
    burst("separate buffers", arena: nil)
}
