import ChorusLoop
import ChorusWebSocket
import Logging

#if canImport(Glibc)
import Glibc
#endif

// Accepting connections and giving each a slot (its token carries slot and generation).
extension ServerLoop {
    // MARK: Accept

    func acceptConnections() {
        for _ in 0..<128 {
            let accepted: (fd: Int32, address: SocketAddress)
            do {
                switch try Socket.accept(listenerFD) {
                case .wouldBlock: return
                case .processed(let result): accepted = result
                }
            } catch {
                switch error.errno {
                case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                    // Out of descriptors or memory: a level-triggered listener would spin, so take
                    // it out of epoll until the next tick.
                    logger.warning("accept failed, pausing accepts until the next tick: \(error)")
                    loop.epoll.remove(listenerFD)
                    acceptPaused = true
                    return
                default:
                    // A connection that failed before we took it (ECONNABORTED, EPERM...): next.
                    continue
                }
            }
            if let refusal = server.admit(accepted.address) {
                stats.refused += 1
                refuse(accepted.fd, refusal)
                continue
            }
            register(fd: accepted.fd, address: accepted.address)
        }
    }

    func refuse(_ fd: Int32, _ refusal: RequestRefusal) {
        let response = refusal.response.serialize()
        response.withUnsafeBytes { _ = try? Socket.write(fd, $0.baseAddress!, count: $0.count) }
        Socket.close(fd)
    }

    func register(fd: Int32, address: SocketAddress) {
        let slot: Int32
        if let free = freeSlots.popLast() {
            slot = free
        } else {
            slot = Int32(slots.count)
            slots.append(nil)
            generations.append(0)
        }
        generations[Int(slot)] &+= 1
        let id = ConnectionID(loop: Int32(index), slot: slot, generation: generations[Int(slot)])
        let connection = Connection(loop: self, id: id, fd: fd, remoteAddress: address, now: loop.now)
        if configuration.handshakeTimeout > 0 {
            connection.deadline = loop.now + UInt64(configuration.handshakeTimeout * 1e9)
        }
        _ = try? Socket.setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1)
        if configuration.socketSendBuffer > 0 {
            // Bounds what a client that stops reading pins in kernel memory (autotuning would let
            // it grow to 4 MiB, outside the process's RSS and outside maxBackpressure).
            _ = try? Socket.setOption(fd, SOL_SOCKET, SO_SNDBUF, Int32(clamping: configuration.socketSendBuffer))
        }
        do {
            try loop.epoll.add(fd, events: [.readable, .readHangup], token: id.token)
        } catch {
            logger.warning("epoll add failed: \(error)")
            Socket.close(fd)
            server.release(address)
            return
        }
        slots[Int(slot)] = connection
        stats.accepted += 1
        stats.connections += 1
    }

    func connection(_ id: ConnectionID) -> Connection? {
        let slot = Int(id.slot)
        guard slot < slots.count, let connection = slots[slot], connection.id == id else { return nil }
        return connection
    }
}
