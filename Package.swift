// swift-tools-version:6.2
import PackageDescription

// Layers, top to bottom (a target imports only targets above it):
//   DMSWire       frame header, preface, bounded frame decoder/encoder (NIOCore)
//   DMSMessages   generated *.pb.swift and the FileDescriptorSet (SwiftProtobuf)
//   DMSRPC        status codes, RPCError, metadata, method descriptors, router
//   DMSStubs      generated service protocols, registrations and typed clients
//   DMSDomain     settings value types and validation rules by spec ID (pure Swift)
//   DMSStorage    store protocols, SQLite (GRDB) and PostgreSQL (PostgresNIO) backends, migrations,
//                 secrets at rest
//   DMSHTTP       one HTTP request through libcurl (CCurl), an OAuth2 token endpoint; blocking
//   DMSMailTransport  SMTP through libcurl (CCurl), MIME rendering, the sending threads
//   DMSIntegrations   the outside services' protocols (KSeF, e-Delivery), over DMSHTTP
//   DMSServices   one folder per service area (Health, Reflection, Companies, ...)
//   DMSProtocol   the protocol's rules as state machines, apart from I/O (NIOCore)
//   DMSServer     NIO bootstrap, connections, dispatch, limits, deadlines, TLS
//   DMSClient     the client library: connection, multiplexing, deadlines, retries
//   dms-settingsd, dmsctl   the executables
let package = Package(
  name: "dms-settings",
  platforms: [.macOS(.v15)],
  products: [
    .library(name: "DMSClient", targets: ["DMSClient", "DMSStubs", "DMSRPC", "DMSMessages"]),
    .executable(name: "dms-settingsd", targets: ["dms-settingsd"]),
    .executable(name: "dmsctl", targets: ["dmsctl"]),
    .executable(name: "dms-bench", targets: ["dms-bench"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
    .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
    .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
    .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
    .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
    .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
    .package(
      url: "https://github.com/apple/swift-configuration",
      from: "1.4.0",
      traits: [.defaults, "CommandLineArguments"]
    ),
    .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
  ],
  targets: [
    .target(
      name: "DMSWire",
      dependencies: [.product(name: "NIOCore", package: "swift-nio")]
    ),
    .target(
      name: "DMSMessages",
      dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")]
    ),
    .target(
      name: "DMSRPC",
      dependencies: [
        "DMSMessages",
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
      ]
    ),
    .target(
      name: "DMSStubs",
      dependencies: [
        "DMSRPC", "DMSMessages",
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
      ]
    ),
    .target(name: "DMSDomain"),
    // libcurl (Debian's libcurl4-openssl-dev) for SMTP: a system library with a small
    // shim for the variadic calls.
    .systemLibrary(
      name: "CCurl", path: "Sources/CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
    // HTTP through libcurl, on the caller's threads (the integrations, OAuth2).
    .target(name: "DMSHTTP", dependencies: ["CCurl"]),
    .target(
      name: "DMSMailTransport",
      dependencies: [
        "CCurl", "DMSHTTP", "DMSDomain",
        .product(name: "NIOPosix", package: "swift-nio"),
      ]
    ),
    // The outside services' protocols (KSeF's token sign-in, e-Delivery's system login):
    // blocking, over DMSHTTP.
    .target(
      name: "DMSIntegrations",
      dependencies: [
        "DMSHTTP",
        .product(name: "Crypto", package: "swift-crypto"),
        .product(name: "CryptoExtras", package: "swift-crypto"),
        .product(name: "NIOSSL", package: "swift-nio-ssl"),
        .product(name: "X509", package: "swift-certificates"),
      ]
    ),
    .target(
      name: "DMSStorage",
      dependencies: [
        "DMSDomain",
        .product(name: "GRDB", package: "GRDB.swift"),
        .product(name: "PostgresNIO", package: "postgres-nio"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOSSL", package: "swift-nio-ssl"),
        .product(name: "Crypto", package: "swift-crypto"),
        .product(name: "Logging", package: "swift-log"),
      ]
    ),
    .target(
      name: "DMSServices",
      dependencies: [
        "DMSRPC", "DMSStubs", "DMSMessages", "DMSDomain", "DMSStorage", "DMSHTTP", "DMSMailTransport",
        "DMSIntegrations",
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        .product(name: "Crypto", package: "swift-crypto"),
        .product(name: "CryptoExtras", package: "swift-crypto"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
      ]
    ),
    .target(
      name: "DMSProtocol",
      dependencies: [
        "DMSWire", "DMSRPC", "DMSMessages",
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
      ]
    ),
    .target(
      name: "DMSServer",
      dependencies: [
        "DMSWire", "DMSRPC", "DMSMessages", "DMSProtocol",
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOSSL", package: "swift-nio-ssl"),
        .product(name: "NIOExtras", package: "swift-nio-extras"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
      ]
    ),
    .target(
      name: "DMSClient",
      dependencies: [
        "DMSWire", "DMSRPC", "DMSMessages", "DMSStubs",
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOSSL", package: "swift-nio-ssl"),
        .product(name: "NIOTLS", package: "swift-nio"),
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
      ]
    ),
    .executableTarget(
      name: "dms-settingsd",
      dependencies: [
        "DMSServer", "DMSServices", "DMSStorage", "DMSDomain",
        .product(name: "Configuration", package: "swift-configuration"),
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        .product(name: "NIOPosix", package: "swift-nio"),
      ]
    ),
    .executableTarget(
      name: "dmsctl",
      dependencies: [
        "DMSClient", "DMSStubs", "DMSRPC", "DMSMessages",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
      ]
    ),
    .executableTarget(
      name: "dms-bench",
      dependencies: [
        "DMSClient", "DMSStubs", "DMSRPC", "DMSMessages",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
        .product(name: "Histogram", package: "hdrhistogram-swift"),
        .product(name: "NIOSSL", package: "swift-nio-ssl"),
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
      ]
    ),
    .testTarget(
      name: "DMSWireTests",
      dependencies: [
        "DMSWire",
        .product(name: "NIOCore", package: "swift-nio"),
      ]
    ),
    // libFuzzer targets: the frame decoder, the meta decoders, the server's state
    // machine. Built by scripts/fuzz with -sanitize=fuzzer (and -DFUZZING); a plain
    // build makes a binary that says so.
    .target(name: "CFuzzerDriver"),
    .executableTarget(
      name: "dms-fuzz",
      dependencies: [
        "CFuzzerDriver", "DMSWire", "DMSProtocol", "DMSRPC", "DMSMessages",
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
      ]
    ),
    .testTarget(
      name: "DMSProtocolTests",
      dependencies: [
        "DMSProtocol", "DMSClient", "DMSWire", "DMSRPC", "DMSMessages",
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
      ]
    ),
    .testTarget(
      name: "DMSServerTests",
      dependencies: [
        "DMSServer", "DMSProtocol", "DMSWire", "DMSRPC", "DMSMessages",
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOEmbedded", package: "swift-nio"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
      ]
    ),
    .testTarget(
      name: "DMSDomainTests",
      dependencies: ["DMSDomain", "DMSMailTransport"]
    ),
    .testTarget(
      name: "DMSStorageTests",
      dependencies: [
        "DMSStorage", "DMSDomain",
        .product(name: "GRDB", package: "GRDB.swift"),
        .product(name: "PostgresNIO", package: "postgres-nio"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "Crypto", package: "swift-crypto"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "InMemoryLogging", package: "swift-log"),
      ],
      exclude: ["Fixtures"]
    ),
    // What the test targets share: starting child processes (ChildProcess).
    .target(name: "DMSTestSupport", path: "Tests/DMSTestSupport"),
    // The built executables (dms-settingsd, dmsctl) run as an operator runs them:
    // configuration, exit codes, output for scripts, the README's first session.
    .testTarget(
      name: "DMSToolsTests",
      dependencies: ["DMSRPC", "DMSTestSupport"]
    ),
    .testTarget(
      name: "DMSEndToEndTests",
      dependencies: [
        "DMSServer", "DMSServices", "DMSStorage", "DMSDomain", "DMSClient", "DMSStubs", "DMSRPC", "DMSMessages",
        "DMSWire", "DMSMailTransport", "DMSTestSupport",
        .product(name: "GRDB", package: "GRDB.swift"),
        .product(name: "Crypto", package: "swift-crypto"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOEmbedded", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOSSL", package: "swift-nio-ssl"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        .product(name: "X509", package: "swift-certificates"),
      ]
    ),
  ]
)
