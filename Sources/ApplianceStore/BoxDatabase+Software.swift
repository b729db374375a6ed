import ApplianceCrypto
public import Foundation
import GRDB

/// An installed package as the box records it.
public struct InstalledPackageRecord: Sendable, Equatable {
    public var name: String
    public var kind: String
    public var version: String
    public var installedAt: Date

    public init(name: String, kind: String, version: String, installedAt: Date) {
        self.name = name
        self.kind = kind
        self.version = version
        self.installedAt = installedAt
    }
}

/// Software slots (X4): the installed software is replaced as a whole, so a rollback is one transaction.
extension BoxDatabase {
    /// Every installed package with its kind and install time.
    public func installedPackageRecords() throws -> [InstalledPackageRecord] {
        try writer.read { db in
            try SoftwareRecord.fetchAll(db).map {
                InstalledPackageRecord(name: $0.name, kind: $0.kind, version: $0.version, installedAt: $0.installedAt)
            }
        }
    }

    /// The site hash client installers are made for; nil until a site package is installed.
    public func siteHash() throws -> String? {
        try meta("siteHash")
    }

    /// Makes `packages` the installed software in one transaction, with `siteHash` as the site hash (nil: none
    /// recorded). When the site version changes, client installers generated so far become invalid (their
    /// generation number goes up), as after a site install.
    public func replaceInstalledSoftware(_ packages: [InstalledPackageRecord], siteHash: String?) throws {
        try writer.write { db in
            let before = try SoftwareRecord.fetchAll(db)
            let siteBefore = before.first { $0.kind == "site" }?.version
            let siteAfter = packages.first { $0.kind == "site" }?.version
            try db.execute(sql: "DELETE FROM software")
            for package in packages {
                try SoftwareRecord(
                    name: package.name,
                    kind: package.kind,
                    version: package.version,
                    installedAt: package.installedAt
                ).insert(db)
            }
            if let siteHash {
                try db.execute(
                    sql: "INSERT OR REPLACE INTO box_meta (key, value) VALUES ('siteHash', ?)",
                    arguments: [siteHash]
                )
            } else {
                try db.execute(sql: "DELETE FROM box_meta WHERE key = 'siteHash'")
            }
            if siteBefore != siteAfter {
                let generation =
                    try String.fetchOne(db, sql: "SELECT value FROM box_meta WHERE key = 'installersGeneration'")
                    .flatMap(Int.init) ?? 1
                try db.execute(
                    sql: "INSERT OR REPLACE INTO box_meta (key, value) VALUES ('installersGeneration', ?)",
                    arguments: ["\(generation + 1)"]
                )
            }
        }
    }

    /// A new random site hash, as a site install makes.
    public static func newSiteHash() -> String {
        SecureRandom.bytes(16).hexString
    }
}
