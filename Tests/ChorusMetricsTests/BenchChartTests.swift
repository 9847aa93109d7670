import ChorusTestSupport
import Testing

/// scripts/bench-chart.py (chorus-bench JSON results -> SVG) on a fixture, checked by
/// Tests/clients/bench_chart_check.py with Python's own XML parser.
@Suite("Benchmark chart") struct BenchChartTests {
    @Test("renders a well-formed SVG: a bar per server and scenario in both panels, medians, heights in proportion")
    func rendersTheFixture() async throws {
        let result = try await PythonClient.run("bench_chart_check.py", args: [], requiring: "xml.etree.ElementTree")
        #expect(result.exitCode == 0 && result.stdout.contains("OK bench-chart"), "\(result)")
    }
}
