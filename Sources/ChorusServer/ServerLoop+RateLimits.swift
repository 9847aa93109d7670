import ChorusLoop
import ChorusWebSocket

// Per-connection rate limits (`messageRate`, `byteRate`) and the reports of dropped messages.
extension ServerLoop {
    /// Spends one message and `size` bytes of the connection's rate limits (when configured);
    /// over either, the message is dropped (counted) or the connection closed, per policy.
    @inline(__always)
    func withinRateLimits(_ connection: Connection, _ size: Int) -> Bool {
        let messages = configuration.messageRate
        let bytes = configuration.byteRate
        guard let limits = connection.rateLimits else { return true }
        let now = loop.now
        if (messages.isUnlimited || limits.messages.take(1, limit: messages, now: now))
            && (bytes.isUnlimited || limits.bytes.take(Double(size), limit: bytes, now: now))
        {
            return true
        }
        stats.rateLimited += 1
        if configuration.rateLimitPolicy == .close {
            close(connection, .rateLimited)
        } else {
            reportRateLimited(connection, now: now)
        }
        return false
    }

    /// Tells the application about dropped messages: at once for the first, then at most once a
    /// second with the count since (`ServerApplication.connectionRateLimited`).
    func reportRateLimited(_ connection: Connection, now: UInt64) {
        guard let limits = connection.rateLimits else { return }
        limits.unreported += 1
        guard limits.reportedAt == 0 || now &- limits.reportedAt >= 1_000_000_000 else { return }
        limits.reportedAt = max(now, 1)
        let dropped = limits.unreported
        limits.unreported = 0
        application.connectionRateLimited(connection, dropped: dropped)
    }
}
