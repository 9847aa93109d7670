import Synchronization

/// The join proxy's decisions (allowed / forbidden) per user and room, for `--proxy-join-cache`
/// seconds; "unavailable" is never cached. Shared by the loops behind one lock: a join is a rare,
/// per-user event, not a per-message one. Bounded by `capacity`: when full, expired entries are
/// swept, and if none had expired the whole cache is dropped (the backend is asked again).
final class JoinDecisionCache: Sendable {
    let ttlNanoseconds: UInt64
    let capacity: Int
    private let entries = Mutex<[Key: Entry]>([:])
    private let hitCount = Atomic<Int>(0)
    private let missCount = Atomic<Int>(0)

    struct Key: Hashable {
        let userId: String
        let room: String
    }

    private struct Entry {
        let allowed: Bool
        let expires: UInt64
    }

    init(ttl seconds: Double, capacity: Int) {
        ttlNanoseconds = UInt64(max(seconds, 0) * 1e9)
        self.capacity = max(1, capacity)
    }

    var isEnabled: Bool { ttlNanoseconds > 0 }

    /// The cached decision, if fresh at `now`.
    func lookup(_ key: Key, now: UInt64) -> BackendContract.JoinDecision? {
        guard isEnabled else { return nil }
        let found = entries.withLock { table -> Bool? in
            guard let entry = table[key] else { return nil }
            if entry.expires <= now { table[key] = nil; return nil }
            return entry.allowed
        }
        guard let allowed = found else { missCount.add(1, ordering: .relaxed); return nil }
        hitCount.add(1, ordering: .relaxed)
        return allowed ? .allowed : .forbidden
    }

    func store(_ key: Key, _ decision: BackendContract.JoinDecision, now: UInt64) {
        guard isEnabled, decision != .unavailable else { return }
        let entry = Entry(allowed: decision == .allowed, expires: now &+ ttlNanoseconds)
        entries.withLock { table in
            if table.count >= capacity, table[key] == nil {
                table = table.filter { $0.value.expires > now }
                if table.count >= capacity { table.removeAll(keepingCapacity: true) }
            }
            table[key] = entry
        }
    }

    var count: Int { entries.withLock { $0.count } }
    var hits: Int { hitCount.load(ordering: .relaxed) }
    var misses: Int { missCount.load(ordering: .relaxed) }
}
