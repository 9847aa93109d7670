import ChorusLoop
import ChorusWebSocket
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

// The close handshake, leaving the open list, and freeing a connection's slot.
extension ServerLoop {
    // MARK: Closing

    /// A close the server starts (the application, timeouts, backpressure, shutdown).
    func beginClose(_ connection: Connection, code: WebSocketCloseCode, reason: String) {
        perform(connection.lifecycle.close(code: code, reason: reason), connection)
    }

    /// A close for one of the server's own reasons (ServerError.swift decides the code): failed
    /// (input ignored from now on) or closed with a handshake, as the reason requires.
    func close(_ connection: Connection, _ reason: CloseReason) {
        if reason.failsConnection {
            perform(connection.lifecycle.fail(code: reason.code, reason: reason.reason), connection)
        } else {
            perform(connection.lifecycle.close(code: reason.code, reason: reason.reason), connection)
        }
    }

    /// Carries out what the close handshake (ConnectionLifecycle) decided.
    func perform(_ action: ConnectionLifecycle.CloseAction, _ connection: Connection) {
        switch action {
        case .none:
            break
        case .sendClose(let code, let reason):
            let frame =
                code.map { WebSocketFrameEncoder.closeFrame(code: $0, reason: reason) }
                ?? WebSocketFrameEncoder.frame(opcode: .close, payload: [])
            connection.outbound.append(SharedBytes.copying(frame))
            fanout.markDirty(connection)
            // The state changed before the application hears of it, so a send or join from its
            // callback sees a connection that is no longer open.
            leaveOpen(connection)
            connection.deadline = loop.now + UInt64(configuration.closeTimeout * 1e9)
        case .finalize:
            finalize(connection)
        }
    }

    /// Everything queued is written: finish a close in progress.
    func afterDrain(_ connection: Connection) {
        switch connection.lifecycle.drained() {
        case .none:
            break
        case .shutdownWrite:
            Socket.shutdownWrite(connection.fd)
        case .finalize:
            finalize(connection)
        }
    }

    /// Takes an open connection out of the emit list, tells the application once, then takes it
    /// out of its rooms.
    func leaveOpen(_ connection: Connection) {
        guard connection.openIndex >= 0 else { return }
        let index = Int(connection.openIndex)
        let last = openConnections.count - 1
        if index != last {
            let moved = openConnections[last]
            openConnections[index] = moved
            moved.openIndex = Int32(index)
        }
        openConnections.removeLast()
        connection.openIndex = -1
        countClose(connection)
        if connection.compressionAgreed { server.compressionClients.subtract(1, ordering: .relaxed) }
        // The application first: it may still read the connection's rooms (a Socket.IO socket's
        // rooms are its connection's, persisted for recovery); the fan-out skips a connection that
        // is no longer open meanwhile. Then whatever rooms are left are left.
        application.connectionClosed(connection, code: connection.lifecycle.closeCodeForApplication)
        rooms.leaveAll(connection)
    }

    /// An open connection's end: the code the server sent, else the peer's, else 1006 (vanished).
    func countClose(_ connection: Connection) {
        let code: UInt16
        let lifecycle = connection.lifecycle
        if let sent = lifecycle.serverCloseCode {
            code = sent.rawValue
            stats.closesByInitiator[0] &+= 1
        } else if lifecycle.closeReceived {
            code = lifecycle.peerCloseCode?.rawValue ?? 1005
            stats.closesByInitiator[1] &+= 1
        } else {
            code = 1006
            stats.closesByInitiator[2] &+= 1
        }
        stats.closesByCode[ServerStats.CloseCodes.index(code)] &+= 1
    }

    /// Closes the socket and frees the slot. Idempotent.
    func finalize(_ connection: Connection) {
        guard connection.lifecycle.finalize() else { return }
        leaveOpen(connection)
        connection.outbound.removeAll()
        connection.inbound.release()
        Socket.close(connection.fd)
        let slot = Int(connection.id.slot)
        if slot < slots.count, slots[slot] === connection {
            slots[slot] = nil
            freeSlots.append(connection.id.slot)
        }
        stats.connections -= 1
        server.release(connection.remoteAddress)
    }
}
