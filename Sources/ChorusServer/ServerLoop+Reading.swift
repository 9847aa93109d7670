import ChorusLoop
import ChorusWebSocket
import Logging

// Reading a socket: which buffer to read into, the HTTP head and body, WebSocket frames and
// the events they raise, fairness between connections, rate limits.
extension ServerLoop {
    // MARK: Reading

    func readFrom(_ connection: Connection) {
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
                result = try Socket.read(
                    connection.fd, into: base + pending, count: connection.inbound.capacity - pending)
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
    func noteMessageProgress(_ connection: Connection) {
        guard connection.isOpen else { return }
        if (!connection.inbound.isEmpty && !connection.hasBacklog) || connection.reader?.isAssemblingMessage == true {
            if connection.messageStartedAt == 0 { connection.messageStartedAt = loop.now }
        } else {
            connection.messageStartedAt = 0
        }
    }

    /// Handles the next `maxMessagesPerRead` messages of a connection's buffered input.
    func resumeBacklog(_ connection: Connection) {
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
    func process(_ connection: Connection, _ bytes: UnsafeMutableRawBufferPointer) -> Int {
        var offset = 0
        while offset < bytes.count {
            let slice = UnsafeMutableRawBufferPointer(rebasing: bytes[offset...])
            switch connection.state {
            case .http:
                guard let http = connection.http else { return bytes.count }
                switch http.parser.parse(UnsafeRawBufferPointer(slice)) {
                case .needMoreData:
                    return offset
                case .failed(let error):
                    refuse(connection, .malformedRequest(error))
                    return bytes.count
                case .complete(let head, let headerLength):
                    offset += headerLength
                    handleRequest(connection, head)
                }
            case .httpBody:
                // The body goes straight into its reader (bounded by maxBodySize), not into the
                // connection's leftovers.
                guard let http = connection.http, http.pendingBody != nil else { return bytes.count }
                switch http.pendingBody!.reader.read(UnsafeRawBufferPointer(slice)) {
                case .needMoreData:
                    return bytes.count
                case .failed(let error):
                    respondAndClose(connection, error.response)
                    return bytes.count
                case .complete(let consumed):
                    offset += consumed
                    let (head, reader) = http.pendingBody!
                    http.pendingBody = nil
                    answerHTTP(
                        connection, HTTPRequest(head: head, body: reader.body, remoteAddress: connection.remoteAddress))
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

    func readFrames(_ connection: Connection, _ bytes: UnsafeMutableRawBufferPointer) -> Int {
        var consumed = 0
        // Fairness: one read can hold tens of thousands of tiny frames; the rest waits its turn.
        var budget = configuration.maxMessagesPerRead > 0 ? configuration.maxMessagesPerRead : Int.max
        while true {
            // The application may change the connection's limit from a message's callback (a
            // client that just authenticated): the frames after that message are read with it.
            let limit = connection.messageLimit
            let (n, limitChanged) = readFrames(
                connection, UnsafeMutableRawBufferPointer(rebasing: bytes[consumed...]), limit: limit, budget: &budget)
            consumed += n
            if budget == 0 && consumed < bytes.count && connection.isOpen && !connection.discardInput {
                connection.hasBacklog = true
                backlogged.append(connection)
                return consumed
            }
            guard limitChanged, n > 0, consumed < bytes.count, connection.isOpen, !connection.discardInput else {
                return consumed
            }
        }
    }

    func readFrames(_ connection: Connection, _ bytes: UnsafeMutableRawBufferPointer, limit: Int, budget: inout Int)
        -> (Int, limitChanged: Bool)
    {
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
                    perform(
                        connection.lifecycle.receivedClose(code: code, nothingQueued: connection.outbound.isEmpty),
                        connection)
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
            logger.debug(
                "protocol error",
                metadata: [
                    "connection": "\(connection.id)", "reason": "\(error.reason)",
                    "code": "\(error.closeCode.rawValue)",
                ])
            close(connection, .protocolViolation(error))
            return (bytes.count, false)
        }
    }
}
