// swift-tools-version:6.1
// Chorus microbenchmarks (ordo-one/benchmark). From this folder:
//   swift package benchmark
// See README.md.
import PackageDescription

let package = Package(
    name: "ChorusBenchmarks",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "Chorus", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.0", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "WebSocketProtocol",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "ChorusWebSocket", package: "Chorus"),
                .product(name: "ChorusServer", package: "Chorus"),
            ],
            path: "Benchmarks/WebSocketProtocol",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "Fanout",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "ChorusLoop", package: "Chorus"),    // OutboundQueue, SharedBytes
                .product(name: "ChorusServer", package: "Chorus"),  // OutgoingFrame
            ],
            path: "Benchmarks/Fanout",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "Server",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "ChorusServer", package: "Chorus"),
                .product(name: "ChorusWebSocket", package: "Chorus"),
            ],
            path: "Benchmarks/Server",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "SocketIO",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "ChorusSocketIO", package: "Chorus"),
            ],
            path: "Benchmarks/SocketIO",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
