import ChorusLoop
import ChorusWebSocket

// Emits reaching this loop: handed to the fan-out (Fanout.swift) with the loop's rooms.
extension ServerLoop {
    func deliver(_ emit: PendingEmit) {
        switch emit {
        case .frame(let frame, let target):
            fanout.deliver(frame, to: target, rooms: rooms, open: openConnections, except: exceptedConnection(target))
        case .group(let frames, let target):
            fanout.deliver(frames, to: target, rooms: rooms, open: openConnections, except: exceptedConnection(target))
        }
    }

    /// Queues an emit made on this loop for the other loops, sent at the end of the iteration.
    func forwardLater(_ emit: PendingEmit) {
        forwardBatch.append(emit)
    }

    /// The connection a target excepts, if it is on this loop.
    @inline(__always)
    private func exceptedConnection(_ target: BroadcastTarget) -> Connection? {
        guard let except = target.exceptConnection, Int(except.loop) == index else { return nil }
        return connection(except)
    }
}
