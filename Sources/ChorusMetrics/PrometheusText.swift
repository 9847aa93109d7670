/// Writes Prometheus text format (0.0.4) that the registry cannot: histograms whose buckets were
/// counted elsewhere (the event loops' plain integers).
enum PrometheusText {
    /// `buckets` holds per-bucket (non-cumulative) counts: one per bound, then the +Inf bucket.
    static func histogram(
        into out: inout [UInt8], _ entry: MetricCatalog.Entry, bounds: [Double], buckets: SIMD16<Int>, sum: Double
    ) {
        let name = entry.name
        out += Array("# HELP \(name) \(entry.help)\n# TYPE \(name) histogram\n".utf8)
        var cumulative = 0
        for (i, bound) in bounds.enumerated() {
            cumulative += buckets[i]
            out += Array("\(name)_bucket{le=\"\(format(bound))\"} \(cumulative)\n".utf8)
        }
        cumulative += buckets[bounds.count]
        out += Array(
            "\(name)_bucket{le=\"+Inf\"} \(cumulative)\n\(name)_sum \(format(sum))\n\(name)_count \(cumulative)\n".utf8)
    }

    /// Integers without a fraction ("16", not "16.0"); others as Swift prints them ("1e-05" is valid).
    static func format(_ value: Double) -> String {
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }
}
