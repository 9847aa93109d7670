import ChorusLoop
import ChorusWebSocket
#if canImport(Glibc)
import Glibc
#endif

// The close handshake, leaving the open list, and freeing a connection's slot.
extension ServerLoop {
    // MARK: Closing

    func beginClose(_ connection: Connection, code: WebSocketCloseCode, reason: String) {
        switch connection.state {
        case .open:
            queueClose(connection, code: code, reason: reason)
        case .http, .httpBody:
            finalize(connection)
        default:
            break
        }
    }

    func queueClose(_ connection: Connection, code: WebSocketCloseCode, reason: String, byServer: Bool = true) {
        if byServer { connection.serverCloseCode = code }
        connection.outbound.append(SharedBytes.copying(WebSocketFrameEncoder.closeFrame(code: code, reason: reason)))
        connection.closeSent = true
        fanout.markDirty(connection)
        enterClosing(connection)
    }

    func enterClosing(_ connection: Connection) {
        // The state changes before the application hears of it, so a send or join from its
        // callback sees a connection that is no longer open.
        connection.state = .closing
        leaveOpen(connection)
        connection.deadline = loop.now + UInt64(configuration.closeTimeout * 1e9)
    }

    /// Protocol violation: send the close code, then ignore whatever else the peer sends.
    func failConnection(_ connection: Connection, code: WebSocketCloseCode, reason: String) {
        if connection.isOpen {
            connection.serverCloseCode = code
            connection.outbound.append(SharedBytes.copying(WebSocketFrameEncoder.closeFrame(code: code, reason: reason)))
            connection.closeSent = true
            fanout.markDirty(connection)
            enterClosing(connection)
        }
        connection.discardInput = true
    }

    /// Takes an open connection out of rooms and the emit list, and tells the application once.
    func leaveOpen(_ connection: Connection) {
        guard connection.openIndex >= 0 else { return }
        let index = connection.openIndex
        let last = openConnections.count - 1
        if index != last {
            let moved = openConnections[last]
            openConnections[index] = moved
            moved.openIndex = index
        }
        openConnections.removeLast()
        connection.openIndex = -1
        rooms.leaveAll(connection)
        countClose(connection)
        if connection.deflateAgreement != nil { server.compressionClients.subtract(1, ordering: .relaxed) }
        application.connectionClosed(connection, code: connection.peerCloseCode ?? (connection.closeReceived ? .noStatusReceived : nil))
    }

    /// An open connection's end: the code the server sent, else the peer's, else 1006 (vanished).
    func countClose(_ connection: Connection) {
        let code: UInt16
        if let sent = connection.serverCloseCode {
            code = sent.rawValue
            stats.closesByInitiator[0] &+= 1
        } else if connection.closeReceived {
            code = connection.peerCloseCode?.rawValue ?? 1005
            stats.closesByInitiator[1] &+= 1
        } else {
            code = 1006
            stats.closesByInitiator[2] &+= 1
        }
        stats.closesByCode[ServerStats.CloseCodes.index(code)] &+= 1
    }

    /// Closes the socket and frees the slot. Idempotent.
    func finalize(_ connection: Connection) {
        if case .closed = connection.state { return }
        connection.state = .closed
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
