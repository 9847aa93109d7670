import ChorusDeflate
import ChorusLoop
import ChorusWebSocket

#if canImport(Glibc)
import Glibc
#endif

// Direct sends, control frames, the flush list, and writing a queue out (EPOLLOUT for full sockets).
extension ServerLoop {
    // MARK: Sending

    /// A message for one connection: encoded (and compressed) for it alone.
    func sendDirect(_ connection: Connection, _ opcode: WebSocketOpcode, _ payload: UnsafeRawBufferPointer) {
        var deflater: PerMessageDeflater?
        if connection.compressionAgreed && payload.count >= configuration.deflate.threshold {
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
            fanout.enqueueBytes(connection, OutgoingFrame.encode(opcode, payload, arena: frameArena))
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
        fanout.enqueueBytes(connection, frame)
    }

    func enqueueControl(_ connection: Connection, _ opcode: WebSocketOpcode, _ payload: UnsafeRawBufferPointer) {
        connection.outbound.append(OutgoingFrame.encode(opcode, payload, arena: frameArena))
        fanout.markDirty(connection)
    }

    func queueRaw(_ connection: Connection, _ bytes: [UInt8]) {
        connection.outbound.append(SharedBytes.copying(bytes))
        fanout.markDirty(connection)
    }

    func flush(_ connection: Connection) {
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
            if connection.releaseQueueWhenDrained {
                connection.releaseQueueWhenDrained = false
                connection.outbound.releaseStorageIfEmpty()
            }
            afterDrain(connection)
        } else {
            // The socket is full: the kernel holds its whole send buffer for this client.
            connection.kernelQueued = Socket.sendQueueBytes(connection.fd)
            if !connection.awaitingWritable {
                connection.awaitingWritable = true
                try? loop.epoll.modify(
                    connection.fd, events: [.readable, .readHangup, .writable], token: connection.id.token)
            }
        }
    }
}
