import BackupFormat
public import Foundation

/// What a package installs: the base system, the site configuration, or an optional add-on.
public enum PackageKind: String, Codable, Sendable, CaseIterable {
    case base
    case site
    case addon
}

/// The signed description of a software package: the `manifest.json` member of a package file.
///
/// `createdAt` is encoded as ISO 8601 UTC to the whole second (for example `"2026-05-01T12:00:00Z"`), whatever the
/// encoder's date strategy, so a decoded manifest re-encodes to the same text.
public struct PackageManifest: Codable, Sendable, Equatable {
    /// The newest manifest format this code reads and writes; verifiers refuse newer versions.
    ///
    /// Version 2 added `selfTest`. A builder writes version 1 for a package without a self-test, so appliances
    /// that read only version 1 still install it.
    public static let currentFormatVersion = 2

    /// The first format version that may carry a `selfTest`.
    public static let selfTestFormatVersion = 2

    /// A check the appliance runs after installing the package; a failure (non-zero exit or the time limit)
    /// marks the box unhealthy until the package is rolled back or a fixed one installed.
    public struct SelfTest: Codable, Sendable, Equatable, Hashable {
        /// Run as `/bin/sh -c COMMAND` with `PACKAGE_NAME`, `PACKAGE_VERSION` and `PACKAGE_PAYLOAD` (the
        /// installed payload file) in its environment.
        public var command: String
        /// Seconds the command may run before it is killed and counts as failed: 1 to 3600.
        public var timeoutSeconds: Int

        public init(command: String, timeoutSeconds: Int = 60) {
            self.command = command
            self.timeoutSeconds = timeoutSeconds
        }
    }

    /// Another package that must be installed, at `minimumVersion` or newer, before this one.
    public struct Requirement: Codable, Sendable, Equatable, Hashable {
        public var name: String
        /// A dotted version such as "2.0" (see `SoftwareVersion`).
        public var minimumVersion: String

        public init(name: String, minimumVersion: String) {
            self.name = name
            self.minimumVersion = minimumVersion
        }
    }

    public var formatVersion: Int
    /// The package name: 1 to 64 ASCII letters, digits, '.', '_' or '-', starting with a letter or digit.
    public var name: String
    public var kind: PackageKind
    /// A dotted version such as "24.3.1" (see `SoftwareVersion`).
    public var version: String
    public var requires: [Requirement]
    /// Licence text the operator accepts before installing; may be empty.
    public var eula: String
    public var description: String
    /// Size of the `payload` member in bytes.
    public var payloadSize: Int64
    /// Lowercase hex SHA-256 of the `payload` member.
    public var payloadSHA256: String
    public var createdAt: Date
    /// `Ed25519PublicKey.keyId` of the key that signed the manifest.
    public var signingKeyId: String
    /// The post-install self-test, if the package has one (format version 2 and later).
    public var selfTest: SelfTest?

    public init(
        formatVersion: Int = PackageManifest.currentFormatVersion,
        name: String,
        kind: PackageKind,
        version: String,
        requires: [Requirement] = [],
        eula: String = "",
        description: String = "",
        payloadSize: Int64,
        payloadSHA256: String,
        createdAt: Date,
        signingKeyId: String,
        selfTest: SelfTest? = nil
    ) {
        self.selfTest = selfTest
        self.formatVersion = formatVersion
        self.name = name
        self.kind = kind
        self.version = version
        self.requires = requires
        self.eula = eula
        self.description = description
        self.payloadSize = payloadSize
        self.payloadSHA256 = payloadSHA256
        self.createdAt = createdAt
        self.signingKeyId = signingKeyId
    }

    private enum CodingKeys: String, CodingKey {
        case formatVersion, name, kind, version, requires, eula, description, payloadSize, payloadSHA256, createdAt
        case signingKeyId, selfTest
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        formatVersion = try container.decode(Int.self, forKey: .formatVersion)
        name = try container.decode(String.self, forKey: .name)
        kind = try container.decode(PackageKind.self, forKey: .kind)
        version = try container.decode(String.self, forKey: .version)
        requires = try container.decode([Requirement].self, forKey: .requires)
        eula = try container.decode(String.self, forKey: .eula)
        description = try container.decode(String.self, forKey: .description)
        payloadSize = try container.decode(Int64.self, forKey: .payloadSize)
        payloadSHA256 = try container.decode(String.self, forKey: .payloadSHA256)
        let createdAtText = try container.decode(String.self, forKey: .createdAt)
        guard let date = Timestamp.parse(createdAtText) else {
            throw DecodingError.dataCorruptedError(
                forKey: .createdAt,
                in: container,
                debugDescription: "\"\(createdAtText)\" is not an ISO 8601 date-time"
            )
        }
        createdAt = date
        signingKeyId = try container.decode(String.self, forKey: .signingKeyId)
        selfTest = try container.decodeIfPresent(SelfTest.self, forKey: .selfTest)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(formatVersion, forKey: .formatVersion)
        try container.encode(name, forKey: .name)
        try container.encode(kind, forKey: .kind)
        try container.encode(version, forKey: .version)
        try container.encode(requires, forKey: .requires)
        try container.encode(eula, forKey: .eula)
        try container.encode(description, forKey: .description)
        try container.encode(payloadSize, forKey: .payloadSize)
        try container.encode(payloadSHA256, forKey: .payloadSHA256)
        try container.encode(Timestamp.format(createdAt), forKey: .createdAt)
        try container.encode(signingKeyId, forKey: .signingKeyId)
        try container.encodeIfPresent(selfTest, forKey: .selfTest)
    }

    /// The name a repository stores this package under: `<name>_<version>.pkg`.
    public var fileName: String {
        "\(name)_\(version).pkg"
    }

    /// The largest `manifest.json` a package may have (the EULA is the only large field).
    static let maximumSize = 1 << 20

    /// Pretty-printed JSON with sorted keys: the exact bytes a builder signs.
    func jsonBytes() throws -> [UInt8] {
        Array(try canonicalJSONEncoder().encode(self))
    }

    /// Throws `.invalidArgument` naming the first field a package cannot have.
    func validate() throws {
        func invalid(_ message: String) -> SoftwarePackageError {
            SoftwarePackageError(code: .invalidArgument, message: message)
        }
        try Self.validateName(name, what: "package name")
        try Self.validateVersion(version, what: "the version of \(name)")
        var seen: Set<String> = []
        for requirement in requires {
            try Self.validateName(requirement.name, what: "required package name")
            try Self.validateVersion(requirement.minimumVersion, what: "the minimum version of \(requirement.name)")
            guard seen.insert(requirement.name).inserted else {
                throw invalid("\(name) lists \(requirement.name) twice in its requirements; list each package once")
            }
        }
        guard (0...Int64(TarWriter.maximumSize)).contains(payloadSize) else {
            throw invalid("a payload of \(payloadSize) bytes is outside 0 to 8 GiB - 1; split it into add-ons")
        }
        guard isLowercaseHex(payloadSHA256, length: 64) else {
            throw invalid("payloadSHA256 \"\(payloadSHA256)\" is not 64 lowercase hex digits")
        }
        guard isLowercaseHex(signingKeyId, length: 16) else {
            throw invalid("signingKeyId \"\(signingKeyId)\" is not a 16-digit key id (Ed25519PublicKey.keyId)")
        }
        if let selfTest {
            guard formatVersion >= Self.selfTestFormatVersion else {
                throw invalid(
                    "a self-test needs manifest format version \(Self.selfTestFormatVersion), not \(formatVersion); "
                        + "build the package again with this software"
                )
            }
            guard !selfTest.command.trimmingCharacters(in: .whitespaces).isEmpty, selfTest.command.utf8.count <= 4096
            else {
                throw invalid("the self-test command must be 1 to 4096 bytes; give a shell command such as 'exit 0'")
            }
            guard (1...3600).contains(selfTest.timeoutSeconds) else {
                throw invalid("a self-test time limit of \(selfTest.timeoutSeconds) s is outside 1 to 3600 seconds")
            }
        }
    }

    static func validateName(_ name: String, what: String) throws {
        let bytes = Array(name.utf8)
        let valid =
            (1...64).contains(bytes.count)
            && bytes.enumerated().allSatisfy { index, byte in
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"):
                    true
                case UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
                    index > 0
                default:
                    false
                }
            }
        guard valid else {
            throw SoftwarePackageError(
                code: .invalidArgument,
                message: "\"\(name)\" is not a valid \(what): use 1 to 64 letters, digits, '.', '_' or '-', "
                    + "starting with a letter or digit"
            )
        }
    }

    @discardableResult
    static func validateVersion(_ text: String, what: String) throws -> SoftwareVersion {
        do {
            return try SoftwareVersion(text)
        } catch {
            throw SoftwarePackageError(
                code: .invalidArgument,
                message: "\"\(text)\" is not a valid version for \(what); use dotted numbers like 24.3.1"
            )
        }
    }
}
