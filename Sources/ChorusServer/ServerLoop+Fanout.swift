import ChorusLoop
import ChorusWebSocket

// The fan-out: walking rooms, choosing a frame variant, backpressure.
extension ServerLoop {
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
    func countBroadcast(recipients: Int) {
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
    func forEachRecipient(of target: BroadcastTarget, _ body: (Connection) -> Void) {
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
    static func forEachUnretained(_ connections: ContiguousArray<Connection>, _ body: (Connection) -> Void) {
        connections.withUnsafeBufferPointer { buffer in
            guard let base = UnsafeRawPointer(buffer.baseAddress) else { return }
            for i in 0..<buffer.count {
                base.load(fromByteOffset: i &* MemoryLayout<Unmanaged<Connection>>.stride, as: Unmanaged<Connection>.self)
                    ._withUnsafeGuaranteedRef(body)
            }
        }
    }
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
    func variant(of frame: OutgoingFrame, for connection: Connection) -> SharedBytes {
        if connection.acceptsSharedCompression, let compressed = frame.compressed { return compressed }
        return frame.plain
    }

    /// `withinLimit`: the caller already checked the limit for this frame (a frame group).
    @inline(__always)
    func enqueueBytes(_ connection: Connection, _ bytes: SharedBytes, withinLimit: Bool = false) {
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
    func wouldExceedLimit(_ connection: Connection, adding cost: Int) -> Bool {
        connection.outbound.charge + connection.kernelQueued + cost > configuration.maxBackpressure && !connection.outbound.isEmpty
    }

    func applyBackpressure(_ connection: Connection) {
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
}
