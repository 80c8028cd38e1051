// swift-tools-version:6.2
// The code generators used by scripts/generate-protos. Built only by that script
// (release, about a minute), never by the main package's build.
import PackageDescription

let package = Package(
  name: "protoc-gen-dms",
  dependencies: [
    .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0")
  ],
  targets: [
    .executableTarget(
      name: "protoc-gen-dms",
      dependencies: [
        .product(name: "SwiftProtobufPluginLibrary", package: "swift-protobuf")
      ]
    )
  ]
)
