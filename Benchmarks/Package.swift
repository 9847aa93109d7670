// swift-tools-version:6.1
// Chorus microbenchmarks (ordo-one/benchmark). From this folder:
//   swift package benchmark
// See README.md.
import PackageDescription

/// One benchmark executable in `Benchmarks/NAME`, using these products of the root package.
func benchmark(_ name: String, using products: [String]) -> Target {
    .executableTarget(
        name: name,
        dependencies: [.product(name: "Benchmark", package: "benchmark")]
            + products.map { .product(name: $0, package: "Chorus") },
        path: "Benchmarks/\(name)",
        plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
    )
}

let package = Package(
    name: "ChorusBenchmarks",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "Chorus", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.0", traits: ["MallocInterposer"]),
    ],
    targets: [
        benchmark("WebSocketProtocol", using: ["ChorusWebSocket", "ChorusUTF8", "ChorusDeflate", "ChorusServer"]),
        benchmark("Fanout", using: ["ChorusLoop", "ChorusServer"]),  // OutboundQueue, FrameArena; OutgoingFrame
        benchmark("Server", using: ["ChorusServer", "ChorusWebSocket"]),
        benchmark("SocketIO", using: ["ChorusSocketIO", "ChorusJSON"]),
    ],
    swiftLanguageModes: [.v6]
)
