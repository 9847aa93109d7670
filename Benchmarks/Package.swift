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
                // OutboundQueue/SharedBytes live in ChorusLoop, which is not a product: it is reached
                // through ChorusServer (which depends on it) until a ChorusLoop product exists.
                .product(name: "ChorusServer", package: "Chorus"),
            ],
            path: "Benchmarks/Fanout",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "SocketIO",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                "ChorusSocketIOProtocol",
            ],
            path: "Benchmarks/SocketIO",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // Stand-in until the root package has a ChorusSocketIO product: the same sources
        // (Sources/ChorusSocketIOProtocol is a symlink to ../../Sources/ChorusSocketIO/Protocol,
        // which imports nothing) built under another module name.
        .target(name: "ChorusSocketIOProtocol", path: "Sources/ChorusSocketIOProtocol"),
    ],
    swiftLanguageModes: [.v6]
)
