import ChorusLoop
import ChorusWebSocket

/// One loop's share of every emit: the walk over its rooms (each recipient once, exceptions
/// skipped), the frame variant each recipient takes, the backpressure decision and the queue's
/// charge. It owns no socket and calls no application code: it appends references to the
/// recipients' outbound queues and leaves what follows to the loop, in `dirty` (the connections to
/// flush at the end of the iteration) and `backpressureCloses` (those to close once the emit is
/// done). So it runs, and is tested, on connections that have no socket.
///
/// Hot path: nothing here allocates, locks or touches an atomic per recipient; the loop owns the
/// struct and passes its rooms in (borrowed), so the walk is one mutating call per emit.
struct Fanout {
    let maxBackpressure: Int
    let policy: BackpressurePolicy
    /// Emit epoch stamp (`Connection.emitMark`): dedupes recipients across an emit's rooms.
    private var epoch: UInt64 = 0
    /// Connections whose queue grew since the last flush, each once (`Connection.isDirty`).
    var dirty: [Connection] = []
    /// Slow consumers to close (policy `close`) once the emit that found them is done: closing
    /// tells the application, whose callback may emit, which must not happen inside a room walk.
    var backpressureCloses: [Connection] = []

    /// Counters, copied into the loop's `ServerStats` at the end of each iteration.
    private(set) var deliveries = 0
    private(set) var dropped = 0
    private(set) var backpressureClosed = 0
    private(set) var broadcasts = 0
    private(set) var broadcastRecipients = 0
    private(set) var fanoutHistogram = SIMD16<Int>()

    init(maxBackpressure: Int, policy: BackpressurePolicy) {
        self.maxBackpressure = maxBackpressure
        self.policy = policy
    }

    // MARK: Emits

    /// Delivers `frame` to the connections of `target` among `rooms` (every connection of `open`
    /// when the target names no room), except those in its `exceptRooms` and `except`.
    mutating func deliver(
        _ frame: OutgoingFrame, to target: BroadcastTarget, rooms: RoomRegistry,
        open: ContiguousArray<Connection>, except: Connection?
    ) {
        let before = deliveries &+ dropped
        epoch &+= 1
        Self.forEachRecipient(of: target, epoch: epoch, rooms: rooms, open: open, except: except) {
            enqueue(frame, to: $0)
        }
        countBroadcast(recipients: deliveries &+ dropped &- before)
    }

    /// Delivers a sequence of frames that only makes sense whole (a Socket.IO binary event and its
    /// attachments): each recipient gets all of them back to back, or none under backpressure.
    mutating func deliver(
        _ frames: [OutgoingFrame], to target: BroadcastTarget, rooms: RoomRegistry,
        open: ContiguousArray<Connection>, except: Connection?
    ) {
        var recipients = 0
        epoch &+= 1
        Self.forEachRecipient(of: target, epoch: epoch, rooms: rooms, open: open, except: except) {
            // A closing connection is still in its rooms while the application hears of its close.
            if $0.isOpen { recipients &+= 1 }
            enqueueGroup(frames, to: $0)
        }
        countBroadcast(recipients: recipients)
    }

    /// One emit on this loop, and its share of the fan-out (counted from the delivery counters
    /// around the walk: nothing is added per recipient for it).
    private mutating func countBroadcast(recipients: Int) {
        broadcasts &+= 1
        broadcastRecipients &+= recipients
        fanoutHistogram[ServerStats.Histograms.fanoutIndex(recipients)] &+= 1
    }

    /// Calls `body` once for every connection of `target` (a static function, so that `body` may
    /// mutate the fan-out while the walk reads only its arguments).
    @inline(__always)
    private static func forEachRecipient(
        of target: BroadcastTarget, epoch: UInt64, rooms: RoomRegistry,
        open: ContiguousArray<Connection>, except: Connection?,
        _ body: (Connection) -> Void
    ) {
        for name in target.exceptRooms {
            switch rooms[name] {
            case nil: continue
            case .solo(let member): member.emitMark = epoch
            case .shared(let room): for member in room.members { member.emitMark = epoch }
            }
        }
        except?.emitMark = epoch
        if target.rooms.isEmpty {
            forEachUnretained(open) { connection in
                if connection.emitMark != epoch { body(connection) }
            }
            return
        }
        let multiRoom = target.rooms.count > 1
        for name in target.rooms {
            switch rooms[name] {
            case nil:
                continue
            case .solo(let member):
                guard member.emitMark != epoch else { continue }
                if multiRoom { member.emitMark = epoch }
                body(member)
            case .shared(let room):
                forEachUnretained(room.members) { member in
                    guard member.emitMark != epoch else { return }
                    if multiRoom { member.emitMark = epoch }
                    body(member)
                }
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
                base.load(
                    fromByteOffset: i &* MemoryLayout<Unmanaged<Connection>>.stride, as: Unmanaged<Connection>.self
                )
                ._withUnsafeGuaranteedRef(body)
            }
        }
    }

    // MARK: One recipient

    /// The per-recipient step of every emit: pick the variant, check backpressure, queue a reference.
    /// `withinLimit`: the caller already checked the limit for this frame (a frame group).
    @inline(__always)
    mutating func enqueue(_ frame: OutgoingFrame, to connection: Connection, withinLimit: Bool = false) {
        guard connection.isOpen else { return }
        // The variants are passed straight from the frame's stored properties (borrowed): the
        // queue retains the bytes only when they start a new entry, not when they extend one.
        guard connection.acceptsSharedCompression, frame.compressed != nil else {
            enqueueBytes(connection, frame.plain, withinLimit: withinLimit)
            return
        }
        // A shared compressed frame enters this client's inflate window behind its dedicated
        // compressor's back: that compressor must start afresh before its next message.
        if connection.dedicatedDeflater != nil && !connection.serverNoContextTakeover {
            connection.dedicatedDeflaterNeedsReset = true
        }
        enqueueBytes(connection, frame.compressed.unsafelyUnwrapped, withinLimit: withinLimit)
    }

    /// All of `frames` back to back, or none when they would pass the connection's limit.
    mutating func enqueueGroup(_ frames: [OutgoingFrame], to connection: Connection) {
        guard connection.isOpen else { return }
        // An upper bound: the group's frames may well extend each other's entries.
        let cost = frames.reduce(0) {
            $0 + Self.variant(of: $1, for: connection).bufferCapacity + OutboundQueue.entryCost
        }
        if wouldExceedLimit(connection, adding: cost) {
            applyBackpressure(connection)
            return
        }
        for frame in frames { enqueue(frame, to: connection, withinLimit: true) }
    }

    /// The compressed frame for clients that can take it, the plain one otherwise.
    @inline(__always)
    static func variant(of frame: OutgoingFrame, for connection: Connection) -> SharedBytes {
        if connection.acceptsSharedCompression, let compressed = frame.compressed { return compressed }
        return frame.plain
    }

    /// Queues `bytes` (a broadcast's variant or a direct send's frame) within the connection's limit.
    /// `withinLimit`: the caller already checked the limit for these bytes (a frame group).
    @inline(__always)
    mutating func enqueueBytes(_ connection: Connection, _ bytes: SharedBytes, withinLimit: Bool = false) {
        if !withinLimit && wouldExceedLimit(connection, adding: connection.outbound.charge(ofAppending: bytes)) {
            applyBackpressure(connection)
            return
        }
        connection.outbound.append(bytes)
        deliveries &+= 1
        markDirty(connection)
    }

    /// Over `maxBackpressure` with `cost` more queued? The queue's charge is the memory its entries
    /// keep alive (whole buffers, plus a fixed cost per entry: a flood of tiny frames is bounded
    /// too), plus what the kernel's send queue held when last asked. An empty queue always takes
    /// one message, so a single message larger than the limit still goes out.
    @inline(__always)
    func wouldExceedLimit(_ connection: Connection, adding cost: Int) -> Bool {
        connection.outbound.charge + connection.kernelQueued + cost > maxBackpressure && !connection.outbound.isEmpty
    }

    private mutating func applyBackpressure(_ connection: Connection) {
        switch policy {
        case .drop:
            dropped &+= 1
        case .close:
            guard connection.isOpen, !connection.backpressureClosePending else { return }
            backpressureClosed &+= 1
            connection.backpressureClosePending = true
            backpressureCloses.append(connection)
        }
    }

    /// Puts `connection` on the flush list once (any queued bytes: frames, control, HTTP).
    @inline(__always)
    mutating func markDirty(_ connection: Connection) {
        if !connection.isDirty {
            connection.isDirty = true
            dirty.append(connection)
        }
    }

    /// This fan-out's counters into the loop's statistics.
    func record(into stats: inout ServerStats) {
        stats.deliveries = deliveries
        stats.dropped = dropped
        stats.backpressureClosed = backpressureClosed
        stats.broadcasts = broadcasts
        stats.broadcastRecipients = broadcastRecipients
        stats.fanout = fanoutHistogram
    }
}
