/// The one line a run shows on a terminal once a second (`chorus-bench` when standard output is a
/// terminal and not `--json`): connections opened, deliveries per second over the last interval,
/// and the p99 latency of the measured deliveries so far. Each update starts with a carriage
/// return and is padded to cover the previous one, so the line is rewritten in place.
public struct ProgressLine: Sendable {
    private var lastAt: UInt64 = 0
    private var lastReceived: UInt64 = 0
    private var width = 0

    public init() {}

    /// The text to write now. `received`: every delivery so far; `p99Micros`: 0 before the
    /// measured window has any.
    public mutating func update(now: UInt64, opened: Int, total: Int, received: UInt64, p99Micros: Double) -> String {
        var rate = 0.0
        if lastAt != 0, now > lastAt, received >= lastReceived {
            rate = Double(received - lastReceived) * 1e9 / Double(now - lastAt)
        }
        lastAt = now
        lastReceived = received
        let p99 = p99Micros > 0 ? format(p99Micros / 1000, decimals: 1) + " ms" : "-"
        let text = "\(opened)/\(total) connections open, \(format(rate, decimals: 0)) deliveries/s, p99 \(p99) so far"
        let padding = max(0, width - text.count)
        width = text.count
        return "\r" + text + String(repeating: " ", count: padding)
    }

    /// Blanks the line (before the final table).
    public func clear() -> String { width == 0 ? "" : "\r" + String(repeating: " ", count: width) + "\r" }
}
