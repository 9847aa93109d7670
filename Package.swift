// swift-tools-version:6.1
// Chorus: a WebSocket server for Linux whose hot core drives epoll directly.
// Targets are listed bottom-up; each depends only on targets above it.
import PackageDescription

let package = Package(
    name: "Chorus",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "chorus", targets: ["chorus"]),
        .executable(name: "chorus-bench", targets: ["chorus-bench"]),
        .library(name: "ChorusServer", targets: ["ChorusServer"]),
        .library(name: "ChorusWebSocket", targets: ["ChorusWebSocket"]),
        .library(name: "ChorusLoop", targets: ["ChorusLoop"]),
        .library(name: "ChorusSocketIO", targets: ["ChorusSocketIO"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.0.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.1.0"),
    ],
    targets: [
        // C headers Glibc does not export (epoll, eventfd, timerfd) and tiny inline helpers.
        .target(name: "CChorusLinux"),
        // System zlib (Debian: libz-dev / zlib1g-dev).
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),

        // Event loop, sockets, buffers, timers. Knows nothing about HTTP or WebSocket.
        .target(name: "ChorusLoop", dependencies: ["CChorusLinux"]),
        // Pure protocol: HTTP upgrade, RFC 6455 frames, UTF-8, RFC 7692 deflate. No I/O.
        .target(name: "ChorusWebSocket", dependencies: [
            "CZlib",
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        // Connections, rooms, encode-once broadcast, backpressure, threads.
        .target(name: "ChorusServer", dependencies: [
            "ChorusLoop", "ChorusWebSocket",
            .product(name: "Logging", package: "swift-log"),
        ]),
        // Engine.IO v4 / Socket.IO v5 over the server.
        .target(name: "ChorusSocketIO", dependencies: [
            "ChorusServer", "ChorusLoop", "ChorusWebSocket",
            .product(name: "Logging", package: "swift-log"),
        ]),
        // The chat + project-updates application, auth, emit API.
        // JWTs are verified synchronously on the loop thread with swift-crypto (see docs/socketio.md).
        .target(name: "ChorusApp", dependencies: [
            "ChorusSocketIO",
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "_CryptoExtras", package: "swift-crypto"),
            .product(name: "Logging", package: "swift-log"),
        ]),

        .executableTarget(name: "chorus", dependencies: [
            "ChorusServer", "ChorusApp",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // The load generator's engine (client handshake, frames, accounting); testable.
        .target(name: "ChorusBenchCore", dependencies: [
            "ChorusLoop", "CZlib",
            .product(name: "Histogram", package: "hdrhistogram-swift"),
        ]),
        .executableTarget(name: "chorus-bench", dependencies: [
            "ChorusBenchCore",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        .testTarget(name: "ChorusLoopTests", dependencies: ["ChorusLoop"]),
        .testTarget(name: "ChorusWebSocketTests", dependencies: ["ChorusWebSocket"]),
        .testTarget(name: "ChorusServerTests", dependencies: ["ChorusServer", "ChorusWebSocket", "ChorusLoop"]),
        .testTarget(name: "ChorusSocketIOTests", dependencies: ["ChorusSocketIO", "ChorusWebSocket"]),
        .testTarget(name: "ChorusAppTests", dependencies: [
            "ChorusApp", "ChorusSocketIO", "ChorusServer",
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        // ChorusApp/ChorusServer: the Socket.IO loopback test runs the realtime app in-process.
        .testTarget(name: "ChorusBenchTests", dependencies: ["ChorusBenchCore", "ChorusLoop", "CZlib", "ChorusApp", "ChorusServer"]),
    ],
    swiftLanguageModes: [.v6]
)
