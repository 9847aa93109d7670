import ChorusLoop
import ChorusWebSocket

// The tick's walk over connections: pings, idle and message timeouts, stalled requests.
extension ServerLoop {
    // MARK: Timers

    func sweepTimers(now: UInt64) {
        let idle = configuration.idleTimeout > 0 ? UInt64(configuration.idleTimeout * 1e9) : UInt64.max
        let pingAfter = configuration.pingInterval > 0 ? UInt64(configuration.pingInterval * 1e9) : UInt64.max
        let messageTimeout = configuration.messageTimeout > 0 ? UInt64(configuration.messageTimeout * 1e9) : UInt64.max
        // Queued bytes are sampled here, on the walk the tick makes anyway, not tracked per frame.
        var queued = 0
        // Idle queues give their storage back once a second (however short the tick).
        let releaseIdleQueues = now &- lastQueueTrim >= 1_000_000_000
        if releaseIdleQueues { lastQueueTrim = now }
        for case let connection? in slots {
            queued &+= connection.outbound.byteCount
            switch connection.state {
            case .open:
                if releaseIdleQueues { connection.outbound.releaseIdleStorage() }
                if connection.kernelQueued > 0 && !connection.awaitingWritable {
                    // Recently full: follow the kernel's queue down until the client has read it.
                    connection.kernelQueued = Socket.sendQueueBytes(connection.fd)
                }
                let silent = now &- connection.lastActivity
                if connection.messageStartedAt != 0 && now &- connection.messageStartedAt >= messageTimeout {
                    stats.protocolErrors += 1
                    close(connection, .messageTimeout)
                } else if silent >= idle {
                    close(connection, .idleTimeout)
                } else if silent >= pingAfter && !connection.pingOutstanding {
                    connection.pingOutstanding = true
                    enqueueControl(connection, .ping, UnsafeRawBufferPointer(start: nil, count: 0))
                }
            case .closed:
                break
            default:
                if connection.deadline != 0 && now >= connection.deadline {
                    switch connection.state {
                    case .http where (connection.http?.requestsServed ?? 0) > 0 && connection.inbound.isEmpty:
                        // An idle keep-alive connection: nothing was asked, nothing to answer.
                        finalize(connection)
                    case .http, .httpBody:
                        // A stalled head or body (RFC 9110 §15.5.9).
                        refuse(connection, .requestTimeout)
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
}
