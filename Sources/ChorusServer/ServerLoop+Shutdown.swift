import ChorusLoop
import ChorusWebSocket
import Synchronization

// Shedding load (the cross-loop queue bound, `maxLoopQueue`) and graceful shutdown, on this loop's thread.
extension ServerLoop {
    /// Broadcasts this loop did not take: `maxLoopQueue` were waiting (any thread). Under the `close`
    /// policy the loop closes its connections once it has caught up: the task runs behind the
    /// backlog, so every connection first gets what was queued before.
    func refuseQueued(_ count: Int) {
        refusedEmits.add(count, ordering: .relaxed)
        guard configuration.backpressurePolicy == .close,
            !shedRequested.exchange(true, ordering: .acquiringAndReleasing)
        else { return }
        loop.execute { [self] in
            shedRequested.store(false, ordering: .releasing)
            for connection in openConnections where connection.isOpen {
                stats.loopQueueClosed += 1
                close(connection, .overloaded)
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
            // Open: 1001 and the handshake; still in a request: dropped.
            close(connection, .shuttingDown)
        }
    }
}
