public import Foundation

/// The `manifest.json` of a backup: what it contains and what made it.
///
/// `createdAt` is encoded as an ISO 8601 string with millisecond precision whatever the encoder's date strategy, so
/// manifests read the same everywhere.
public struct BackupManifest: Codable, Sendable, Equatable {
    /// The manifest format this code writes; readers refuse newer versions.
    public static let currentFormatVersion = 1

    /// One file in the backup archive.
    public struct Member: Codable, Sendable, Equatable, Hashable {
        public var name: String
        public var size: Int64
        /// Lowercase hex SHA-256 of the member's contents.
        public var sha256: String

        public init(name: String, size: Int64, sha256: String) {
            self.name = name
            self.size = size
            self.sha256 = sha256
        }
    }

    public var formatVersion: Int
    public var createdAt: Date
    public var applianceId: String
    public var hostname: String
    public var baseVersion: String
    public var siteVersion: String
    public var includesHistory: Bool
    public var encrypted: Bool
    /// Row or object counts by kind, for showing the operator what a restore will bring back.
    public var counts: [String: Int]
    public var members: [Member]

    public init(
        formatVersion: Int = BackupManifest.currentFormatVersion,
        createdAt: Date,
        applianceId: String,
        hostname: String,
        baseVersion: String,
        siteVersion: String,
        includesHistory: Bool,
        encrypted: Bool,
        counts: [String: Int],
        members: [Member]
    ) {
        self.formatVersion = formatVersion
        self.createdAt = createdAt
        self.applianceId = applianceId
        self.hostname = hostname
        self.baseVersion = baseVersion
        self.siteVersion = siteVersion
        self.includesHistory = includesHistory
        self.encrypted = encrypted
        self.counts = counts
        self.members = members
    }

    private enum CodingKeys: String, CodingKey {
        case formatVersion, createdAt, applianceId, hostname, baseVersion, siteVersion, includesHistory, encrypted
        case counts, members
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        formatVersion = try container.decode(Int.self, forKey: .formatVersion)
        let createdAtText = try container.decode(String.self, forKey: .createdAt)
        guard let date = Self.parseDate(createdAtText) else {
            throw DecodingError.dataCorruptedError(
                forKey: .createdAt,
                in: container,
                debugDescription: "\"\(createdAtText)\" is not an ISO 8601 date-time"
            )
        }
        createdAt = date
        applianceId = try container.decode(String.self, forKey: .applianceId)
        hostname = try container.decode(String.self, forKey: .hostname)
        baseVersion = try container.decode(String.self, forKey: .baseVersion)
        siteVersion = try container.decode(String.self, forKey: .siteVersion)
        includesHistory = try container.decode(Bool.self, forKey: .includesHistory)
        encrypted = try container.decode(Bool.self, forKey: .encrypted)
        counts = try container.decode([String: Int].self, forKey: .counts)
        members = try container.decode([Member].self, forKey: .members)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(formatVersion, forKey: .formatVersion)
        try container.encode(createdAt.formatted(Self.dateStyle), forKey: .createdAt)
        try container.encode(applianceId, forKey: .applianceId)
        try container.encode(hostname, forKey: .hostname)
        try container.encode(baseVersion, forKey: .baseVersion)
        try container.encode(siteVersion, forKey: .siteVersion)
        try container.encode(includesHistory, forKey: .includesHistory)
        try container.encode(encrypted, forKey: .encrypted)
        try container.encode(counts, forKey: .counts)
        try container.encode(members, forKey: .members)
    }

    /// Pretty-printed JSON with sorted keys, so equal manifests are byte-identical.
    public func jsonBytes() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(self))
    }

    /// Decodes a manifest, throwing `.notABackup` for anything that is not a manifest and `.unsupported` for a
    /// newer format version.
    public static func decode(jsonBytes: [UInt8]) throws -> BackupManifest {
        let manifest: BackupManifest
        do {
            manifest = try JSONDecoder().decode(BackupManifest.self, from: Data(jsonBytes))
        } catch {
            throw BackupFormatError(
                code: .notABackup,
                message: "the archive's manifest.json cannot be read (\(error)); this is not an appliance backup"
            )
        }
        guard manifest.formatVersion >= 1 else {
            throw BackupFormatError(
                code: .notABackup,
                message: "the manifest has format version \(manifest.formatVersion); this is not an appliance backup"
            )
        }
        guard manifest.formatVersion <= currentFormatVersion else {
            throw BackupFormatError(
                code: .unsupported,
                message: "the backup has format version \(manifest.formatVersion), newer than this software "
                    + "understands (\(currentFormatVersion)); update the appliance software before restoring"
            )
        }
        return manifest
    }

    /// Compares dotted numeric versions ("24.10" > "24.9", "24.3" == "24.3.0"): -1, 0 or 1. Lenient: each
    /// component counts by its leading digits and anything else as 0, so it never fails; use `SoftwareVersion` to
    /// validate.
    public static func compareVersions(_ lhs: String, _ rhs: String) -> Int {
        func components(_ text: String) -> [Int] {
            text.split(separator: ".", omittingEmptySubsequences: false).map { part in
                Int(part.prefix(while: \.isASCIIDigit).prefix(18)) ?? 0
            }
        }
        return SoftwareVersion.compare(components(lhs), components(rhs))
    }

    private static let dateStyle = Date.ISO8601FormatStyle(includingFractionalSeconds: true)

    private static func parseDate(_ text: String) -> Date? {
        if let date = try? dateStyle.parse(text) {
            return date
        }
        return try? Date.ISO8601FormatStyle().parse(text)
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool {
        isASCII && isNumber
    }
}
