// swift-tools-version:6.1
// A package that depends on Chorus through a git URL and a version, as another team's would.
// scripts/sample-package.sh (a step of scripts/test.sh) builds it against a throwaway clone of this
// repository tagged 0.0.0-ci, with the URL below rewritten to that clone. SwiftPM refuses a
// versioned dependency whose targets use unsafeFlags, so this build is what keeps Chorus usable
// as a dependency.
import PackageDescription

let package = Package(
    name: "SamplePackage",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(url: "https://github.com/chorus-server/chorus.git", exact: "0.0.0-ci")
    ],
    targets: [
        .executableTarget(
            name: "Sample",
            dependencies: [
                .product(name: "ChorusServer", package: "chorus"),
                .product(name: "ChorusWebSocket", package: "chorus"),
            ])
    ],
    swiftLanguageModes: [.v6]
)
