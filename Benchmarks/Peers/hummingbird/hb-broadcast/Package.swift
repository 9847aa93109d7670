// swift-tools-version:6.2
// Peer server for chorus-bench: hummingbird-websocket doing "every message to everyone".
// Built separately from Chorus: scripts/bench-fanout.sh builds it with --scratch-path .build-peer.
import PackageDescription

let package = Package(
    name: "hb-broadcast",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", exact: "2.28.1", traits: []),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", exact: "2.8.1"),
    ],
    targets: [
        .executableTarget(
            name: "hb-broadcast",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "HummingbirdWSCompression", package: "hummingbird-websocket"),
            ])
    ],
    swiftLanguageModes: [.v6]
)
