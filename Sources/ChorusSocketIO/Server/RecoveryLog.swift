// Connection state recovery (Socket.IO 4.6+), the server's half: what a namespace keeps so that a
// client whose transport dropped comes back as the same socket, in the same rooms, and receives
// what it missed. Each replayable event carries an offset as its last argument; the client sends
// the last one it saw with its session id (`pid`) when it reconnects.
//
// One log per namespace, behind one lock taken once per emit call and once per recovery, never per
// recipient. Entries keep the frames the broadcast was sent with, so a replay shares those bytes.

import ChorusLoop
import ChorusServer
import Synchronization

/// How long and how much a namespace keeps for clients that come back (`SocketIOConfiguration.recovery`).
public struct RecoveryConfiguration: Sendable {
    /// Seconds a disconnected session may be restored (Socket.IO's `maxDisconnectionDuration`);
    /// events older than that are dropped from the log too.
    public var window: Double = 120
    /// A restored socket skips the connection middleware (Socket.IO's `skipMiddlewares`): its
    /// `data` comes back as the middleware left it.
    public var skipMiddlewares = true
    /// Bytes of frames kept for replay per namespace; the oldest go first. A client whose offset
    /// fell out is not recovered (it gets a fresh session, as without recovery).
    public var maxBufferedBytes = 64 << 20
    /// Disconnected sessions kept per namespace; the oldest go first.
    public var maxSessions = 100_000

    public init(
        window: Double = 120, skipMiddlewares: Bool = true, maxBufferedBytes: Int = 64 << 20, maxSessions: Int = 100_000
    ) {
        self.window = window
        self.skipMiddlewares = skipMiddlewares
        self.maxBufferedBytes = maxBufferedBytes
        self.maxSessions = maxSessions
    }
}

/// What recovery did, per namespace, since the start.
public struct RecoveryCounters: Sendable, Equatable {
    /// Sessions restored (same id, rooms and data; missed events replayed).
    public var recovered = 0
    /// Events replayed to restored sockets.
    public var replayed = 0
    /// Reconnects that asked for a session and got a fresh one: unknown (never seen, already
    /// used, or dropped for room), expired (older than the window), offset gone (the events since
    /// the client's offset no longer all in the log).
    public var unknownSession = 0
    public var expired = 0
    public var offsetGone = 0
    /// The cluster's store (Redis Streams adapter) could not be asked.
    public var unavailable = 0
    /// Sessions kept when a transport dropped; dropped because `maxSessions` was reached.
    public var persisted = 0
    public var sessionsEvicted = 0
    /// Entries dropped from the log because of `maxBufferedBytes` (by age: not counted).
    public var entriesEvicted = 0
    /// Now: entries and their bytes in the log, sessions kept.
    public var entries = 0
    public var bytes = 0
    public var sessions = 0

    public init() {}
}

/// A disconnected socket's state, kept for its client's return. Unchecked Sendable: `data` is the
/// application's object, handed from the loop that saved it to the loop that restores it under
/// the log's lock, and used by one socket at a time (as `Socket.data` itself is).
struct SavedSession: @unchecked Sendable {
    let sid: String
    let pid: String
    /// Joined rooms (not its own id).
    let rooms: [String]
    /// `socket.data` as the socket left it (the same object: this process only).
    let data: AnyObject?
    let disconnectedAt: UInt64
}

/// Why a reconnect was not recovered.
public enum RecoveryRefusal: Error, Sendable {
    /// Never seen, already taken, expired from a cluster store (Redis forgets it at the window's
    /// end), or dropped for room.
    case unknownSession
    /// Older than the window (local log only: it keeps the time).
    case expired
    /// The events since the client's offset are no longer all kept (or the offset is not one
    /// this log or stream gave).
    case offsetGone
    /// The cluster store could not be asked (Redis unreachable or too slow).
    case unavailable
}

/// Unchecked Sendable: `configuration` and the window are immutable; everything else is in `state`,
/// a Mutex.
final class RecoveryLog: @unchecked Sendable {
    struct Entry {
        let offset: UInt64
        let emittedAt: UInt64
        /// Empty: the whole namespace.
        let rooms: [String]
        let except: [String]
        let frames: [OutgoingFrame]
        let bytes: Int

        func reaches(sid: String, rooms joined: [String]) -> Bool {
            let isIn = { (room: String) in room == sid || joined.contains(room) }
            if !rooms.isEmpty && !rooms.contains(where: isIn) { return false }
            return !except.contains(where: isIn)
        }
    }

    private struct State {
        /// Oldest first; `entries[head...]` are live (the front is compacted now and then).
        var entries: [Entry] = []
        var head = 0
        /// The next offset to give; offsets are consecutive, so an entry's index is computed.
        var nextOffset: UInt64 = 1
        var sessions: [String: SavedSession] = [:]
        /// pids in the order they were kept (may name sessions already taken or replaced).
        var sessionOrder: [String] = []
        var sessionHead = 0
        var counters = RecoveryCounters()

        var firstOffset: UInt64 { entries.count > head ? entries[head].offset : nextOffset }
    }

    let configuration: RecoveryConfiguration
    private let windowNanoseconds: UInt64
    private let state = Mutex(State())

    init(configuration: RecoveryConfiguration) {
        self.configuration = configuration
        windowNanoseconds = UInt64(max(configuration.window, 0) * 1e9)
    }

    /// Numbers an event and logs it. Under the lock: `build` makes the frames with the offset in
    /// them, and `deliver` hands them on (so that numbering order is delivery order).
    func append(
        rooms: [String], except: [String], now: UInt64,
        build: (_ offset: String) -> [OutgoingFrame], deliver: ([OutgoingFrame]) -> Void
    ) {
        state.withLock { s in
            let offset = s.nextOffset
            s.nextOffset += 1
            let frames = build(String(offset))
            let bytes = frames.reduce(0) { $0 + $1.plain.count + ($1.compressed?.count ?? 0) }
            s.entries.append(
                Entry(offset: offset, emittedAt: now, rooms: rooms, except: except, frames: frames, bytes: bytes))
            s.counters.entries += 1
            s.counters.bytes += bytes
            prune(&s, now: now)
            deliver(frames)
        }
    }

    /// Keeps a session whose transport dropped.
    func persist(_ session: SavedSession) {
        state.withLock { s in
            if s.sessions.updateValue(session, forKey: session.pid) == nil {
                s.sessionOrder.append(session.pid)
            }
            s.counters.persisted += 1
            pruneSessions(&s, now: session.disconnectedAt)
        }
    }

    /// The session `pid` names, if it can be restored from `offset` now (not taken).
    func check(pid: String, offset: String, now: UInt64) -> Result<SavedSession, RecoveryRefusal> {
        state.withLock { s in
            let result = Self.lookup(&s, pid: pid, offset: offset, now: now, window: windowNanoseconds)
            if case .failure(let refusal) = result { Self.count(refusal, in: &s.counters) }
            return result
        }
    }

    /// Takes the session `pid` and the frames of every logged event after `offset` it would have
    /// received, and runs `schedule` with them under the lock: whatever `schedule` enqueues on a
    /// loop runs there before any event logged later is delivered.
    func restore(
        pid: String, offset: String, now: UInt64,
        schedule: (SavedSession, [[OutgoingFrame]]) -> Void
    ) -> RecoveryRefusal? {
        state.withLock { s in
            let session: SavedSession
            switch Self.lookup(&s, pid: pid, offset: offset, now: now, window: windowNanoseconds) {
            case .failure(let refusal):
                Self.count(refusal, in: &s.counters)
                return refusal
            case .success(let found):
                session = found
            }
            s.sessions[pid] = nil
            s.counters.sessions = s.sessions.count
            let after = UInt64(offset)!
            var missed: [[OutgoingFrame]] = []
            let start = s.head + Int(after + 1 - s.firstOffset)
            if start < s.entries.count {
                for entry in s.entries[start...] where entry.reaches(sid: session.sid, rooms: session.rooms) {
                    missed.append(entry.frames)
                }
            }
            s.counters.recovered += 1
            s.counters.replayed += missed.count
            schedule(session, missed)
            return nil
        }
    }

    var counters: RecoveryCounters { state.withLock { $0.counters } }

    // With a cluster store (`ClusterRecoveryAdapter`) the log keeps nothing: it only counts.

    func countPersisted() { state.withLock { $0.counters.persisted += 1 } }

    func countRestore(_ result: Result<Int, RecoveryRefusal>) {
        state.withLock { s in
            switch result {
            case .success(let replayed):
                s.counters.recovered += 1
                s.counters.replayed += replayed
            case .failure(let refusal):
                Self.count(refusal, in: &s.counters)
            }
        }
    }

    // MARK: Under the lock

    private static func lookup(_ s: inout State, pid: String, offset: String, now: UInt64, window: UInt64) -> Result<
        SavedSession, RecoveryRefusal
    > {
        guard let session = s.sessions[pid] else { return .failure(.unknownSession) }
        if now &- session.disconnectedAt > window {
            s.sessions[pid] = nil
            s.counters.sessions = s.sessions.count
            return .failure(.expired)
        }
        // The client's offset must be one this log gave, and every event after it still here.
        guard let last = UInt64(offset), last < s.nextOffset, last + 1 >= s.firstOffset else {
            return .failure(.offsetGone)
        }
        return .success(session)
    }

    private static func count(_ refusal: RecoveryRefusal, in counters: inout RecoveryCounters) {
        switch refusal {
        case .unknownSession: counters.unknownSession += 1
        case .expired: counters.expired += 1
        case .offsetGone: counters.offsetGone += 1
        case .unavailable: counters.unavailable += 1
        }
    }

    /// Drops entries older than the window, then the oldest beyond the byte bound.
    private func prune(_ s: inout State, now: UInt64) {
        while s.head < s.entries.count {
            let entry = s.entries[s.head]
            let tooOld = now &- entry.emittedAt > windowNanoseconds
            let tooMuch = s.counters.bytes > configuration.maxBufferedBytes
            guard tooOld || tooMuch else { break }
            if !tooOld { s.counters.entriesEvicted += 1 }
            s.counters.bytes -= entry.bytes
            s.counters.entries -= 1
            s.head += 1
        }
        // Compact once the dead front is as long as the live part (amortised O(1) per entry).
        if s.head > 64 && s.head * 2 >= s.entries.count {
            s.entries.removeFirst(s.head)
            s.head = 0
        }
    }

    private func pruneSessions(_ s: inout State, now: UInt64) {
        while s.sessionHead < s.sessionOrder.count {
            let pid = s.sessionOrder[s.sessionHead]
            guard let session = s.sessions[pid] else { s.sessionHead += 1; continue }
            let tooOld = now &- session.disconnectedAt > windowNanoseconds
            let tooMany = s.sessions.count > configuration.maxSessions
            guard tooOld || tooMany else { break }
            if !tooOld { s.counters.sessionsEvicted += 1 }
            s.sessions[pid] = nil
            s.sessionHead += 1
        }
        if s.sessionHead > 64 && s.sessionHead * 2 >= s.sessionOrder.count {
            s.sessionOrder.removeFirst(s.sessionHead)
            s.sessionHead = 0
        }
        s.counters.sessions = s.sessions.count
    }
}
