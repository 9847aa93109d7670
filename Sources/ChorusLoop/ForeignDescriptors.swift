// File descriptors owned by someone other than the loop's delegate (a Redis client's socket, say),
// each with its own handler closure, multiplexed on the loop's epoll under tokens of their own.

/// A file descriptor registered on an `EventLoop` with `register(fd:interest:_:)`.
/// Its token lives in a range no delegate token uses, and carries a generation, so an event
/// already fetched by `epoll_wait` for a registration that was removed (and whose slot was reused)
/// in the same batch is recognised as stale and dropped.
public struct ForeignRegistration: Hashable, Sendable {
    public let token: UInt64
    public let fd: Int32
}

/// The registrations of one loop: slots of handlers, reused through a free list. Loop thread only.
///
/// Token layout: the low 32 bits are `0x8000_0000 | slot` (slot < 2^30), the high 32 bits the
/// slot's generation. The delegate tokens in use never have that low-word shape: a server
/// connection's low word is its slot, a non-negative `Int32` (bit 31 clear) whatever its
/// generation (high word) has grown to; the listener, doorbell and ticker tokens
/// (`UInt64.max - 2 ... UInt64.max`) have bit 30 set as well; the benchmark engine's tokens are
/// small indexes. So `isForeign` is one mask and compare per event.
final class ForeignDescriptorTable {
    typealias Handler = (Epoll.Events) -> Void

    static let tag: UInt64 = 0x8000_0000
    static let tagMask: UInt64 = 0xC000_0000
    static let slotLimit = 1 << 30

    @exclusivity(unchecked) private var handlers: [Handler?] = []
    @exclusivity(unchecked) private var generations: [UInt32] = []
    @exclusivity(unchecked) private var freeSlots: [Int] = []
    @exclusivity(unchecked) private(set) var count = 0

    @inline(__always)
    static func isForeign(_ token: UInt64) -> Bool { token & tagMask == tag }

    func add(_ handler: @escaping Handler) -> UInt64 {
        let slot: Int
        if let free = freeSlots.popLast() {
            slot = free
        } else {
            slot = handlers.count
            precondition(slot < Self.slotLimit, "too many foreign descriptors on one loop")
            handlers.append(nil)
            generations.append(0)
        }
        generations[slot] &+= 1
        handlers[slot] = handler
        count += 1
        return Self.tag | UInt64(slot) | (UInt64(generations[slot]) << 32)
    }

    /// The live handler for `token`, or nil when it was removed (a stale event).
    func handler(for token: UInt64) -> Handler? {
        let slot = Int(token & 0x3FFF_FFFF)
        guard slot < handlers.count, UInt32(truncatingIfNeeded: token >> 32) == generations[slot] else { return nil }
        return handlers[slot]
    }

    func remove(_ token: UInt64) {
        let slot = Int(token & 0x3FFF_FFFF)
        guard slot < handlers.count, UInt32(truncatingIfNeeded: token >> 32) == generations[slot],
            handlers[slot] != nil
        else { return }
        handlers[slot] = nil
        // Bump now, so an event for the old registration still in this batch is stale at once.
        generations[slot] &+= 1
        freeSlots.append(slot)
        count -= 1
    }
}

extension EventLoop {
    /// Adds `fd` to this loop's epoll with `interest`; `handler` runs on the loop's thread with the
    /// ready events (error and hang-up are always reported, as epoll does). Level-triggered.
    /// Loop thread only. The caller keeps ownership of `fd`: unregister it before closing it.
    public func register(fd: Int32, interest: Epoll.Events, _ handler: @escaping (Epoll.Events) -> Void) throws(IOError)
        -> ForeignRegistration
    {
        assertInLoop()
        let token = foreign.add(handler)
        do {
            try epoll.add(fd, events: interest, token: token)
        } catch {
            foreign.remove(token)
            throw error
        }
        return ForeignRegistration(token: token, fd: fd)
    }

    /// Changes which readiness `registration` is told about. Loop thread only.
    public func setInterest(_ registration: ForeignRegistration, _ interest: Epoll.Events) throws(IOError) {
        assertInLoop()
        try epoll.modify(registration.fd, events: interest, token: registration.token)
    }

    /// Removes `registration` from epoll; its handler is never called again, even for an event of
    /// the batch being dispatched. Loop thread only; safe to call from inside its own handler.
    public func unregister(_ registration: ForeignRegistration) {
        assertInLoop()
        epoll.remove(registration.fd)
        foreign.remove(registration.token)
    }

    /// How many foreign descriptors are registered (for tests and leak checks). Loop thread only.
    public var foreignRegistrationCount: Int { foreign.count }
}
