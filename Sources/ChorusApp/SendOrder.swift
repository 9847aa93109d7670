/// One sender's proxied `message:send` calls, released in the order they were sent.
///
/// The backend may answer a sender's messages out of order (several pooled connections, a slow
/// insert); members must still see them in the order the sender wrote them. Each call takes a
/// ticket; an answer that arrives ahead of an earlier one waits here until the earlier answers are
/// in. At most `limit` calls per sender are outstanding, so the buffer is bounded.
///
/// Generic over the waiting item so the rule is tested without sockets. Not thread-safe: it lives
/// on its socket's loop thread.
struct SendOrder<Item> {
    let limit: Int
    private var nextTicket: UInt64 = 0
    /// The oldest ticket not yet released.
    private var head: UInt64 = 0
    /// Outstanding tickets, by ticket: the item, and its answer once it arrived.
    private var slots: [UInt64: (item: Item, answered: Bool)] = [:]

    init(limit: Int) { self.limit = max(1, limit) }

    /// Calls sent and not yet released.
    var outstanding: Int { slots.count }

    /// A ticket for a new call, or nil when `limit` calls are outstanding.
    mutating func take(_ item: Item) -> UInt64? {
        guard slots.count < limit else { return nil }
        let ticket = nextTicket
        nextTicket &+= 1
        slots[ticket] = (item, false)
        return ticket
    }

    /// Records the answer to `ticket` (through `update`) and returns the items now releasable, oldest
    /// first: none while an earlier call is unanswered.
    mutating func answer(_ ticket: UInt64, _ update: (inout Item) -> Void) -> [Item] {
        guard var slot = slots[ticket], !slot.answered else { return [] }
        update(&slot.item)
        slot.answered = true
        slots[ticket] = slot
        var released: [Item] = []
        while let next = slots[head], next.answered {
            released.append(next.item)
            slots[head] = nil
            head &+= 1
        }
        return released
    }
}
