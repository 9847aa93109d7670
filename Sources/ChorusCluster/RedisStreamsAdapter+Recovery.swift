// RedisStreamsAdapter's half of connection state recovery: sessions kept under
// `sio:session:<pid>` and restored by any node, with the missed events read back from the stream.
import ChorusJSON
import ChorusLoop
import ChorusMsgPack
import ChorusRedis
import ChorusServer
import ChorusSocketIO
import Logging

extension RedisStreamsAdapter {
    // MARK: Connection state recovery

    public func persistSession(_ session: PersistedSession, namespace: String) {
        let key = Array((configuration.sessionKeyPrefix + session.pid).utf8)
        let value = session.storedValue
        onLoop { [self] in
            guard let client else { return }
            streamCounters.sessionsPersisted += 1
            client.commandOnLoop([
                Array("SET".utf8), key, value, Array("PX".utf8), Array(String(windowMilliseconds).utf8),
            ]) { [self] result in
                if case .failure(let error) = result {
                    streamCounters.sessionPersistFailures += 1
                    logger.debug("session not persisted", metadata: ["error": "\(error)"])
                }
            }
        }
    }

    public func restoreSession(
        pid: String, offset: String, namespace: String,
        completion: @escaping @Sendable (Result<RestoredSession, RecoveryRefusal>) -> Void
    ) {
        onLoop { [self] in restoreOnLoop(pid: pid, offset: offset, namespace: namespace, completion) }
    }

    /// GETDEL of the session and XRANGE of the offset itself (pipelined, as the reference), then
    /// the entries after it.
    func restoreOnLoop(
        pid: String, offset: String, namespace: String,
        _ completion: @escaping @Sendable (Result<RestoredSession, RecoveryRefusal>) -> Void
    ) {
        guard let start = StreamID(offset) else { return completion(.failure(.offsetGone)) }
        // Before the reader knows where it stands, what it has delivered is unknown.
        guard let client, client.isConnectedOnLoop, readAfter != nil, ownAheadForgottenThrough == nil else {
            return completion(.failure(.unavailable))
        }
        var stored: Result<RedisValue, RedisError>?
        client.commandOnLoop([Array("GETDEL".utf8), Array((configuration.sessionKeyPrefix + pid).utf8)]) { result in
            stored = result
        }
        client.commandOnLoop([Array("XRANGE".utf8), streamName, Array(offset.utf8), Array(offset.utf8)]) {
            [self] result in
            // GETDEL's reply came first (one connection, replies in order).
            guard case .success(let value)? = stored else { return completion(.failure(.unavailable)) }
            guard let bytes = value.bytes else { return completion(.failure(.unknownSession)) }
            guard let session = PersistedSession(storedValue: bytes, decoder: decoder) else {
                counters.malformed += 1
                return completion(.failure(.unknownSession))
            }
            guard case .success(let range) = result else {
                // Taken, and the stream could not be read: put it back for another attempt.
                persistSession(session, namespace: namespace)
                return completion(.failure(.unavailable))
            }
            guard range.array?.isEmpty == false else { return completion(.failure(.offsetGone)) }
            collectMissed(after: start, session: session, namespace: namespace, candidates: [], rounds: 0, completion)
        }
    }

    func collectMissed(
        after: StreamID, session: PersistedSession, namespace: String,
        candidates: [(id: StreamID, data: [JSONValue])], rounds: Int,
        _ completion: @escaping @Sendable (Result<RestoredSession, RecoveryRefusal>) -> Void
    ) {
        guard let client else { return completion(.failure(.unavailable)) }
        streamCounters.restoreRanges += 1
        client.commandOnLoop([Array("XRANGE".utf8), streamName, Array(after.next.description.utf8), Array("+".utf8)]) {
            [self] result in
            guard case .success(let value) = result, let entries = value.array else {
                // The session was taken: put it back so that another attempt can have it.
                persistSession(session, namespace: namespace)
                return completion(.failure(.unavailable))
            }
            var candidates = candidates
            var end = after
            for entry in entries {
                guard let parts = entry.array, parts.count == 2, let idBytes = parts[0].bytes,
                    let id = StreamID(String(decoding: idBytes, as: UTF8.self))
                else { continue }
                end = id
                guard let message = StreamMessage(streamFields: Self.fields(parts[1]), decoder: decoder),
                    message.nsp == namespace, message.kind == .broadcast,
                    let b = StreamBroadcast(json: message.data), b.isReplayable, b.options.reaches(session.rooms)
                else { continue }
                candidates.append((id, [.string(b.event)] + b.args + [.string(id.description)]))
            }
            // The reader has dispatched entries past this range: they must be replayed too.
            if lastRead > end && rounds + 1 < Self.maxRestoreRanges {
                return collectMissed(
                    after: end, session: session, namespace: namespace, candidates: candidates, rounds: rounds + 1,
                    completion)
            }
            let missed = Self.replayed(candidates, lastRead: lastRead, ownAhead: Set(ownAhead[ownAheadHead...]))
            completion(.success(RestoredSession(session: session, missed: missed)))
        }
    }
}

extension RedisStreamsAdapter {
    /// Of the entries a restore read (oldest first), those to replay: the ones this node has
    /// dispatched already (read by its reader up to `lastRead`, or its own answered XADDs in
    /// `ownAhead`). The others are dispatched later, after the restore's finish on the socket's
    /// loop, and so reach the socket live: replaying them too would deliver them twice.
    static func replayed(_ candidates: [(id: StreamID, data: [JSONValue])], lastRead: StreamID, ownAhead: Set<StreamID>)
        -> [[JSONValue]]
    {
        candidates.filter { $0.id <= lastRead || ownAhead.contains($0.id) }.map { $0.data }
    }
}
