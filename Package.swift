// swift-tools-version:6.2
import PackageDescription

/// One set of settings for every target: Swift 6 mode, warnings are errors, and the upcoming features
/// that keep imports and existentials explicit.
let strictSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .treatAllWarnings(as: .error),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "appliance-tools",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "applianced", targets: ["applianced"]),
        .executable(name: "appliancectl", targets: ["appliancectl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    ],
    targets: [
        // OpenSSL 3 from the system (libssl-dev). Raw pointers stay inside ApplianceCrypto.
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]
        ),
        // libvirt from the system (libvirt-dev). Raw pointers stay inside Libvirt.
        .systemLibrary(
            name: "CLibvirt",
            pkgConfig: "libvirt",
            providers: [.apt(["libvirt-dev"])]
        ),
        .target(
            name: "Libvirt",
            dependencies: ["CLibvirt"],
            swiftSettings: strictSettings
        ),
        .target(
            name: "ApplianceTemplates",
            dependencies: [.product(name: "Mustache", package: "swift-mustache")],
            swiftSettings: strictSettings
        ),
        .target(
            name: "ApplianceImage",
            swiftSettings: strictSettings
        ),
        .target(
            name: "ApplianceInventory",
            dependencies: [.product(name: "Yams", package: "Yams")],
            swiftSettings: strictSettings
        ),
        .target(
            name: "ApplianceProvisioning",
            dependencies: [
                "Libvirt", "ApplianceTemplates", "ApplianceClient", "ApplianceAPI", "ApplianceInventory",
                "ProcessSpawn",
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "ProcessSpawn",
            swiftSettings: strictSettings
        ),
        // One engine for every procedure (migrate, decommission, upgrades): journal, resume, confirmations,
        // events, crash points, reports and locks. Knows no appliance API.
        .target(
            name: "ProcedureEngine",
            dependencies: [
                "ApplianceInventory",
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: strictSettings
        ),
        // The procedures on appliances (migrate, decommission) and the sessions that open their runs.
        .target(
            name: "ApplianceMigration",
            dependencies: [
                "ProcedureEngine",
                "ApplianceProvisioning",
                "ProcessSpawn",
                "ApplianceAPI",
                "ApplianceInventory",
                "ApplianceClient",
                "ApplianceCrypto",
                "BackupFormat",
                "SoftwarePackages",
                "ApplianceTemplates",
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "ApplianceCrypto",
            dependencies: ["COpenSSL"],
            swiftSettings: strictSettings
        ),
        // The rules of My Account (TOTP, display names, photo checks, the console's MSI command line): pure values,
        // no I/O, so the server and the CLI share them.
        .target(
            name: "AccountRules",
            dependencies: ["ApplianceCrypto"],
            swiftSettings: strictSettings
        ),
        .target(
            name: "BackupFormat",
            dependencies: ["ApplianceCrypto"],
            swiftSettings: strictSettings
        ),
        .target(
            name: "SoftwarePackages",
            dependencies: ["ApplianceCrypto", "BackupFormat", "ApplianceAPI"],
            swiftSettings: strictSettings
        ),
        .target(
            name: "ApplianceAPI",
            swiftSettings: strictSettings
        ),
        .target(
            name: "ApplianceStore",
            dependencies: [
                "ApplianceAPI",
                "ApplianceCrypto",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // The one TLS policy (versions, suites) of the listeners and the clients.
        .target(
            name: "ApplianceTLS",
            dependencies: [.product(name: "NIOSSL", package: "swift-nio-ssl")],
            swiftSettings: strictSettings
        ),
        .target(
            name: "ApplianceServer",
            dependencies: [
                "ApplianceAPI",
                "ApplianceTLS",
                "ApplianceClient",
                "ApplianceCrypto",
                "ApplianceStore",
                "BackupFormat",
                "ProcessSpawn",
                "SoftwarePackages",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "ApplianceClient",
            dependencies: [
                "ApplianceAPI",
                "ApplianceTLS",
                "ApplianceCrypto",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "applianced",
            dependencies: [
                "ApplianceAPI",
                "ApplianceCrypto",
                "ApplianceServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "appliancectl",
            dependencies: [
                "ApplianceAPI",
                "ApplianceClient",
                "ApplianceImage",
                "ApplianceInventory",
                "ApplianceMigration",
                "ProcedureEngine",
                "ApplianceProvisioning",
                "ApplianceTemplates",
                "Libvirt",
                "ApplianceCrypto",
                "BackupFormat",
                "SoftwarePackages",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "ApplianceTemplatesTests",
            dependencies: ["ApplianceTemplates"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "ProcessSpawnTests",
            dependencies: ["ProcessSpawn"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "ApplianceImageTests",
            dependencies: ["ApplianceImage"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "ApplianceInventoryTests",
            dependencies: ["ApplianceInventory"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "ApplianceProvisioningTests",
            dependencies: [
                "ApplianceProvisioning", "ApplianceTemplates", "Libvirt", "ApplianceInventory", "ApplianceClient",
                "ApplianceAPI", "ApplianceImage",
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "ApplianceMigrationTests",
            dependencies: [
                "ApplianceMigration", "ProcedureEngine", "ApplianceInventory", "ApplianceClient", "ApplianceAPI",
                "BackupFormat", .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "ProcedureEngineTests",
            dependencies: [
                "ProcedureEngine",
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "LibvirtTests",
            dependencies: ["Libvirt"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "ApplianceCryptoTests",
            dependencies: ["ApplianceCrypto"],
            swiftSettings: strictSettings
        ),
        // The seeded random generator the tests share, so fuzz and random-data tests reproduce from a seed.
        .target(
            name: "SeededRandom",
            path: "Tests/SeededRandom",
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "AccountRulesTests",
            dependencies: ["AccountRules", "ProcessSpawn", "SeededRandom"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "BackupFormatTests",
            dependencies: ["BackupFormat", "ApplianceCrypto", "SeededRandom"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SoftwarePackagesTests",
            dependencies: ["SoftwarePackages", "ApplianceCrypto", "BackupFormat"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "ApplianceAPITests",
            dependencies: [
                "ApplianceAPI",
                .product(name: "Yams", package: "Yams"),
            ],
            resources: [],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "ApplianceClientTests",
            dependencies: [
                "ApplianceClient",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "ApplianceTests",
            dependencies: [
                "SoftwarePackages",
                "ApplianceAPI",
                "ApplianceStore",
                "ApplianceServer",
                "ApplianceClient",
                "ApplianceCrypto",
                "BackupFormat",
            ],
            swiftSettings: strictSettings
        ),
    ]
)
