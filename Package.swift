// swift-tools-version:6.1
// Chorus: a WebSocket server for Linux whose hot core drives epoll directly.
// Targets are listed bottom-up; each depends only on targets above it.
import PackageDescription

// The hot modules keep per-connection state in class properties touched for every recipient; Swift's
// dynamic exclusivity checks on those accesses cost about a quarter of the broadcast path's
// instructions (callgrind, see BENCHMARKS.md). The loops' single-thread confinement already rules out
// overlapping access, so those stored properties are marked `@exclusivity(unchecked)` in the source
// (Connection, ServerLoop, the event loop and arena, the Socket.IO sessions, the zlib streams). No
// unsafeFlags: SwiftPM refuses them in a package used as a versioned dependency
// (scripts/sample-package.sh checks).

let package = Package(
    name: "Chorus",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "chorus", targets: ["chorus"]),
        .executable(name: "chorus-bench", targets: ["chorus-bench"]),
        .library(name: "ChorusServer", targets: ["ChorusServer"]),
        .library(name: "ChorusWebSocket", targets: ["ChorusWebSocket"]),
        .library(name: "ChorusDeflate", targets: ["ChorusDeflate"]),
        .library(name: "ChorusLoop", targets: ["ChorusLoop"]),
        .library(name: "ChorusSocketIO", targets: ["ChorusSocketIO"]),
        .library(name: "ChorusJSON", targets: ["ChorusJSON"]),
        .library(name: "ChorusUTF8", targets: ["ChorusUTF8"]),
        .library(name: "ChorusRedis", targets: ["ChorusRedis"]),
        .library(name: "ChorusMsgPack", targets: ["ChorusMsgPack"]),
        .library(name: "ChorusCluster", targets: ["ChorusCluster"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.0.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.1.0"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.0.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        // ChorusProxy names the NIO types AsyncHTTPClient's API is made of.
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.81.0"),
    ],
    targets: [
        // C headers Glibc does not export (epoll, eventfd, timerfd) and tiny inline helpers.
        .target(name: "CChorusLinux"),
        // System zlib (Debian: libz-dev / zlib1g-dev).
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // System hiredis (Debian: libhiredis-dev, 0.14): the asynchronous Redis client under ChorusRedis.
        .systemLibrary(name: "CHiredis", pkgConfig: "hiredis", providers: [.apt(["libhiredis-dev"])]),

        // Pure MessagePack codec (notepack.io's encoding choices, hardened decoder). No I/O.
        .target(name: "ChorusMsgPack"),
        // The incremental UTF-8 validator, shared by WebSocket text frames and JSON strings. No I/O.
        .target(name: "ChorusUTF8"),
        // JSON values, the strict RFC 8259 parser and the JSON.stringify-compatible writer that
        // Socket.IO packets, the emit API and the cluster's wire format share. No I/O.
        .target(name: "ChorusJSON", dependencies: ["ChorusUTF8"]),

        // Event loop, sockets, buffers, timers. Knows nothing about HTTP or WebSocket.
        .target(name: "ChorusLoop", dependencies: ["CChorusLinux"]),
        // Pure protocol: HTTP upgrade, RFC 6455 frames, UTF-8, RFC 7692 negotiation and the
        // inflater seam (WebSocketInflater). No I/O, no zlib.
        .target(
            name: "ChorusWebSocket",
            dependencies: [
                "ChorusUTF8",
                .product(name: "Crypto", package: "swift-crypto"),
            ]),
        // The zlib streams behind permessage-deflate (the server's only target that imports CZlib) and
        // the one factory that turns a PerMessageDeflateConfig into compressors.
        .target(name: "ChorusDeflate", dependencies: ["CZlib", "ChorusWebSocket"]),
        // Connections, rooms, encode-once broadcast, backpressure, threads.
        .target(
            name: "ChorusServer",
            dependencies: [
                "CChorusLinux", "ChorusLoop", "ChorusWebSocket", "ChorusDeflate",
                .product(name: "Logging", package: "swift-log"),
            ]),
        // Engine.IO v4 / Socket.IO v5 over the server.
        .target(
            name: "ChorusSocketIO",
            dependencies: [
                "ChorusServer", "ChorusLoop", "ChorusWebSocket", "ChorusJSON", "ChorusUTF8",
                .product(name: "Logging", package: "swift-log"),
            ]),
        // Redis connections (publish/commands and a subscriber) for scale-out: hiredis's
        // asynchronous API driven by a ChorusLoop through hiredis's event hooks.
        .target(
            name: "ChorusRedis",
            dependencies: [
                "ChorusLoop", "CHiredis",
                .product(name: "Logging", package: "swift-log"),
            ]),
        // Several nodes on Redis, speaking socket.io-redis-adapter 8.x / socket.io-redis-emitter 5.x.
        .target(
            name: "ChorusCluster",
            dependencies: [
                "ChorusSocketIO", "ChorusServer", "ChorusLoop", "ChorusMsgPack", "ChorusRedis", "ChorusJSON",
                "ChorusWebSocket",
                .product(name: "Logging", package: "swift-log"),
            ]),
        // HTTP calls to the product's backend (connect, join and message proxies) with AsyncHTTPClient:
        // keep-alive, a bounded pool, a deadline and a bound on calls in flight. The only target that
        // imports SwiftNIO; the hot targets above never do.
        .target(
            name: "ChorusProxy",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]),
        // The chat + project-updates application, auth, emit API.
        // JWTs are verified with vapor/jwt-kit in a Swift concurrency task, off the loop threads;
        // the CONNECT waits in the namespace's asynchronous middleware (see README, "The realtime gateway").
        .target(
            name: "ChorusApp",
            dependencies: [
                "ChorusSocketIO", "ChorusServer", "ChorusWebSocket", "ChorusProxy", "ChorusJSON",
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        // What an operator sees: the loops' plain counters handed to swift-metrics (Prometheus
        // text on /metrics) on each scrape, process metrics from /proc, the dashboard page, log
        // handlers. Never a dependency of the hot targets: they only keep integers.
        .target(
            name: "ChorusMetrics",
            dependencies: [
                "ChorusServer", "ChorusSocketIO", "ChorusLoop", "ChorusWebSocket", "ChorusCluster", "ChorusJSON",
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
            ]),

        .executableTarget(
            name: "chorus",
            dependencies: [
                "ChorusServer", "ChorusApp", "ChorusCluster", "ChorusSocketIO", "ChorusRedis", "ChorusMetrics",
                "ChorusLoop", "ChorusWebSocket", "ChorusProxy",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]),
        // The load generator's engine (client handshake, frames, accounting); testable.
        .target(
            name: "ChorusBenchCore",
            dependencies: [
                "ChorusLoop", "CChorusLinux", "CZlib",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]),
        .executableTarget(
            name: "chorus-bench",
            dependencies: [
                "ChorusBenchCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),

        // Test helpers shared by the test targets: spawned chorus and Python clients, raw TCP,
        // a blocking WebSocket client (using ChorusWebSocket's frame encoder).
        .target(name: "ChorusTestSupport", dependencies: ["ChorusWebSocket"], path: "Tests/ChorusTestSupport"),
        .testTarget(name: "ChorusLoopTests", dependencies: ["ChorusLoop"]),
        .testTarget(
            name: "ChorusRedisTests",
            dependencies: [
                "ChorusRedis", "ChorusLoop", "ChorusTestSupport",
                .product(name: "Logging", package: "swift-log"),
            ]),
        .testTarget(name: "ChorusMsgPackTests", dependencies: ["ChorusMsgPack"]),
        .testTarget(
            name: "ChorusClusterTests",
            dependencies: [
                "ChorusCluster", "ChorusMsgPack", "ChorusSocketIO", "ChorusServer", "ChorusRedis", "ChorusJSON",
                "ChorusTestSupport",
            ]),
        .testTarget(
            name: "ChorusWebSocketTests",
            dependencies: ["ChorusWebSocket", "ChorusUTF8", "ChorusDeflate", "CZlib", "ChorusTestSupport"]),
        .testTarget(
            name: "ChorusServerTests",
            dependencies: [
                "ChorusServer", "ChorusWebSocket", "ChorusLoop", "ChorusTestSupport",
            ]),
        .testTarget(
            name: "ChorusSocketIOTests",
            dependencies: ["ChorusSocketIO", "ChorusJSON", "ChorusWebSocket", "ChorusTestSupport"]),
        .testTarget(
            name: "ChorusMetricsTests",
            dependencies: [
                "ChorusMetrics", "ChorusServer", "ChorusCluster", "ChorusLoop", "ChorusTestSupport",
                .product(name: "Logging", package: "swift-log"),
            ]),
        .testTarget(
            name: "ChorusAppTests",
            dependencies: [
                "ChorusApp", "ChorusSocketIO", "ChorusServer", "ChorusTestSupport", "ChorusProxy", "ChorusJSON",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ]),
        // ChorusApp/ChorusServer: the Socket.IO loopback test runs the realtime app in-process.
        .testTarget(
            name: "ChorusBenchTests",
            dependencies: [
                "ChorusBenchCore", "ChorusLoop", "CZlib", "ChorusApp", "ChorusServer", "ChorusSocketIO",
                "ChorusWebSocket",
            ]),
    ],
    swiftLanguageModes: [.v6]
)

// Explicit imports (SE-0444): a file sees the members of a module only if it imports that module
// itself, so every dependency is visible in the file that uses it (and declared above).
for target in package.targets where target.type != .system {
    target.swiftSettings = (target.swiftSettings ?? []) + [.enableUpcomingFeature("MemberImportVisibility")]
}
