public import ApplianceAPI
import ApplianceCrypto
import Foundation
import GRDB

/// What a box is when it leaves the factory (and after a factory reset).
public struct FactorySettings: Sendable {
    public var hostname: String
    /// The management address the box answers on from the first start: `--listen`.
    public var listenAddress: String
    public var baseVersion: String
    public var siteVersion: String

    public init(hostname: String, listenAddress: String, baseVersion: String, siteVersion: String) {
        self.hostname = hostname
        self.listenAddress = listenAddress
        self.baseVersion = baseVersion
        self.siteVersion = siteVersion
    }
}

/// The factory certificate or an imported one, as stored.
public struct StoredCertificate: Sendable, Equatable {
    public var id: Int64
    public var name: String
    public var certificatePEM: String
    public var privateKeyPEM: String?
    public var chainPEM: String
    public var isFactory: Bool
}

/// The box's own state: network, certificates, installed software and the recordings index.
///
/// It is not part of a backup and survives a restore; a factory reset deletes it.
public final class BoxDatabase: Sendable {
    let writer: DatabasePool

    /// Opens (and migrates) `box.sqlite`, filling it with factory state when it is new.
    public init(
        directory: DataDirectory,
        factory: FactorySettings,
        makeCertificate: () throws -> (certificatePEM: String, privateKeyPEM: String)
    ) throws {
        let isNew = !FileManager.default.fileExists(atPath: directory.boxDatabase.path)
        writer = try DatabasePool(path: directory.boxDatabase.path, configuration: Self.configuration())
        try Self.migrator.migrate(writer)
        let hasConfig = try writer.read { try BoxConfigRecord.fetchOne($0) } != nil
        if isNew || !hasConfig {
            let certificate = try makeCertificate()
            try writer.write { db in
                try BoxConfigRecord(
                    id: 1,
                    hostname: factory.hostname,
                    defaultGateway: nil,
                    dnsServers: "[]",
                    ntpServers: "[\"0.debian.pool.ntp.org\",\"1.debian.pool.ntp.org\"]"
                ).insert(db)
                var address = AddressRecord(
                    id: nil,
                    enabled: true,
                    port: "eth0",
                    address: factory.listenAddress,
                    subnetMask: factory.listenAddress.hasPrefix("127.") ? "255.0.0.0" : "255.255.255.0",
                    access: AccessType.both.rawValue
                )
                try address.insert(db)
                try SoftwareRecord(name: "base", kind: "base", version: factory.baseVersion, installedAt: Date())
                    .insert(db)
                try SoftwareRecord(name: "site", kind: "site", version: factory.siteVersion, installedAt: Date())
                    .insert(db)
                var cert = CertificateRecord(
                    id: nil,
                    name: "factory",
                    certificatePEM: certificate.certificatePEM,
                    privateKeyPEM: certificate.privateKeyPEM,
                    chainPEM: "",
                    isFactory: true,
                    createdAt: Date()
                )
                try cert.insert(db)
            }
        }
    }

    static func configuration() -> Configuration {
        var config = Configuration()
        config.busyMode = .timeout(10)
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        return config
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.create(table: "box_config") { t in
                t.primaryKey("id", .integer)
                t.column("hostname", .text).notNull()
                t.column("defaultGateway", .text)
                t.column("dnsServers", .text).notNull()
                t.column("ntpServers", .text).notNull()
            }
            try db.create(table: "network_address") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("enabled", .boolean).notNull()
                t.column("port", .text).notNull()
                t.column("address", .text).notNull().unique()
                t.column("subnetMask", .text).notNull()
                t.column("access", .text).notNull()
            }
            try db.create(table: "software") { t in
                t.primaryKey("name", .text)
                t.column("kind", .text).notNull()
                t.column("version", .text).notNull()
                t.column("installedAt", .datetime).notNull()
            }
            try db.create(table: "certificate") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("name", .text).notNull()
                t.column("certificatePEM", .text).notNull()
                t.column("privateKeyPEM", .text)
                t.column("chainPEM", .text).notNull()
                t.column("isFactory", .boolean).notNull()
                t.column("createdAt", .datetime).notNull()
            }
            try db.create(table: "recording") { t in
                t.primaryKey("name", .text)
                t.column("size", .integer).notNull()
                t.column("sha256", .text).notNull()
                t.column("modifiedAt", .datetime).notNull()
            }
        }
        migrator.registerMigration("v2") { db in
            try db.alter(table: "network_address") { t in
                t.add(column: "certificateId", .integer).references("certificate", onDelete: .restrict)
            }
        }
        migrator.registerMigration("v3") { db in
            try db.create(table: "box_meta") { t in
                t.primaryKey("key", .text)
                t.column("value", .text).notNull()
            }
        }
        return migrator
    }

    // MARK: Metadata (update source, site hash, installer generation)

    public func meta(_ key: String) throws -> String? {
        try writer.read { db in
            try String.fetchOne(db, sql: "SELECT value FROM box_meta WHERE key = ?", arguments: [key])
        }
    }

    public func setMeta(_ key: String, _ value: String?) throws {
        try writer.write { db in
            if let value {
                try db.execute(
                    sql: "INSERT OR REPLACE INTO box_meta (key, value) VALUES (?, ?)",
                    arguments: [key, value]
                )
            } else {
                try db.execute(sql: "DELETE FROM box_meta WHERE key = ?", arguments: [key])
            }
        }
    }

    // MARK: Installed packages (A5)

    /// Installed packages by name (`base`, `site`, add-on names) and version.
    public func installedPackages() throws -> [String: String] {
        try writer.read { db in
            Dictionary(
                try SoftwareRecord.fetchAll(db).map { ($0.name, $0.version) },
                uniquingKeysWith: { first, _ in first }
            )
        }
    }

    // MARK: Box configuration

    public func networkSettings() throws -> NetworkSettings {
        try writer.read { db in
            guard let config = try BoxConfigRecord.fetchOne(db) else {
                throw StoreError(.storage, "the box configuration is missing; restart applianced to recreate it")
            }
            return config.settings
        }
    }

    public func updateNetworkSettings(_ settings: NetworkSettings) throws {
        try writer.write { db in
            try BoxConfigRecord(settings).update(db)
        }
    }

    public func installedSoftware() throws -> InstalledSoftware {
        try writer.read { db in
            let rows = try SoftwareRecord.fetchAll(db)
            return InstalledSoftware(
                baseVersion: rows.first { $0.kind == "base" }?.version ?? "0",
                siteVersion: rows.first { $0.kind == "site" }?.version ?? "0",
                addons: rows.filter { $0.kind == "addon" }.map { "\($0.name) \($0.version)" }.sorted()
            )
        }
    }

    // MARK: Addresses

    public func addresses() throws -> [AddressConfig] {
        try writer.read { db in try AddressRecord.order(Column("id")).fetchAll(db).map(\.config) }
    }

    /// Applies `change` to the address list inside one transaction after `validate` accepted the result.
    ///
    /// `validate` sees the complete list as it would be and throws to refuse; then nothing is written.
    public func changeAddresses(
        _ change: (inout [AddressConfig]) throws -> Void,
        validate: ([AddressConfig]) throws -> Void
    ) throws -> [AddressConfig] {
        try writer.write { db in
            let before = try AddressRecord.order(Column("id")).fetchAll(db)
            var after = before.map(\.config)
            try change(&after)
            try validate(after)
            let keep = Set(after.compactMap(\.id))
            for old in before where !keep.contains(old.id ?? -1) {
                _ = try old.delete(db)
            }
            var saved: [AddressConfig] = []
            for config in after {
                var record = AddressRecord(config)
                if record.id == nil {
                    try record.insert(db)
                } else {
                    try record.update(db)
                }
                saved.append(record.config)
            }
            return saved
        }
    }

    // MARK: Certificates

    /// The factory certificate: served on every address without an assigned certificate.
    public func factoryCertificate() throws -> StoredCertificate {
        try writer.read { db in
            guard let record = try CertificateRecord.filter(Column("isFactory") == true).fetchOne(db) else {
                throw StoreError(.storage, "the factory certificate is missing; a factory reset recreates it")
            }
            return record.stored
        }
    }

    public func certificates() throws -> [StoredCertificate] {
        try writer.read { db in try CertificateRecord.order(Column("id")).fetchAll(db).map(\.stored) }
    }

    public func certificate(id: Int64) throws -> StoredCertificate {
        guard let record = try writer.read({ db in try CertificateRecord.fetchOne(db, key: id) }) else {
            throw StoreError(.notFound, "there is no certificate \(id); list them with `appliancectl cert list`")
        }
        return record.stored
    }

    /// Stores an imported certificate (already parsed and checked by the caller).
    public func addCertificate(
        name: String,
        certificatePEM: String,
        privateKeyPEM: String?,
        chainPEM: String
    ) throws -> StoredCertificate {
        try writer.write { db in
            var record = CertificateRecord(
                id: nil,
                name: name,
                certificatePEM: certificatePEM,
                privateKeyPEM: privateKeyPEM,
                chainPEM: chainPEM,
                isFactory: false,
                createdAt: Date()
            )
            try record.insert(db)
            return record.stored
        }
    }

    /// Deletes a certificate; refused for the factory certificate and for one assigned to an address.
    public func deleteCertificate(id: Int64) throws {
        try writer.write { db in
            guard let record = try CertificateRecord.fetchOne(db, key: id) else {
                throw StoreError(.notFound, "there is no certificate \(id); list them with `appliancectl cert list`")
            }
            if record.isFactory {
                throw StoreError(
                    .conflict,
                    "the factory certificate serves every address without an assigned certificate; it cannot be deleted"
                )
            }
            let users = try String.fetchAll(
                db,
                sql: "SELECT address FROM network_address WHERE certificateId = ? ORDER BY address",
                arguments: [id]
            )
            if !users.isEmpty {
                throw StoreError(
                    .conflict,
                    "certificate \(id) is assigned to \(users.joined(separator: ", ")); assign another certificate "
                        + "to those addresses first"
                )
            }
            _ = try record.delete(db)
        }
    }

    /// Assigns a certificate (nil: the factory certificate) to one address entry.
    public func assignCertificate(_ certificateId: Int64?, toAddress addressId: Int64) throws {
        try writer.write { db in
            if let certificateId {
                guard let record = try CertificateRecord.fetchOne(db, key: certificateId) else {
                    throw StoreError(.notFound, "there is no certificate \(certificateId)")
                }
                guard record.privateKeyPEM != nil else {
                    throw StoreError(
                        .conflict,
                        "certificate \(certificateId) has no private key, so it cannot serve TLS; import it with its key"
                    )
                }
            }
            guard try AddressRecord.fetchOne(db, key: addressId) != nil else {
                throw StoreError(.notFound, "there is no address entry \(addressId); list them with GET network")
            }
            try db.execute(
                sql: "UPDATE network_address SET certificateId = ? WHERE id = ?",
                arguments: [certificateId, addressId]
            )
        }
    }

    /// The certificate each configured address serves (its assigned one, or the factory certificate).
    public func servedCertificates() throws -> [String: StoredCertificate] {
        try writer.read { db in
            guard let factory = try CertificateRecord.filter(Column("isFactory") == true).fetchOne(db)?.stored else {
                throw StoreError(.storage, "the factory certificate is missing; a factory reset recreates it")
            }
            var result: [String: StoredCertificate] = [:]
            for address in try AddressRecord.fetchAll(db) {
                if let id = address.certificateId, let record = try CertificateRecord.fetchOne(db, key: id) {
                    result[address.address] = record.stored
                } else {
                    result[address.address] = factory
                }
            }
            return result
        }
    }

    // MARK: Recordings index

    public func recordings() throws -> [StoredFileInfo] {
        try writer.read { db in try FileRecord.recordings.order(Column("name")).fetchAll(db).map(\.info) }
    }

    public func recording(named name: String) throws -> StoredFileInfo? {
        try writer.read { db in try FileRecord.recordings.filter(key: name).fetchOne(db)?.info }
    }

    public func saveRecording(_ info: StoredFileInfo) throws {
        try writer.write { db in try FileRecord(info).upsert(db, table: "recording") }
    }

    /// Closes the database so its file can be deleted (factory reset).
    public func close() throws {
        try writer.close()
    }
}

// MARK: Records

struct BoxConfigRecord: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "box_config"
    var id: Int64
    var hostname: String
    var defaultGateway: String?
    var dnsServers: String
    var ntpServers: String

    init(id: Int64, hostname: String, defaultGateway: String?, dnsServers: String, ntpServers: String) {
        self.id = id
        self.hostname = hostname
        self.defaultGateway = defaultGateway
        self.dnsServers = dnsServers
        self.ntpServers = ntpServers
    }

    init(_ settings: NetworkSettings) {
        self.id = 1
        self.hostname = settings.hostname
        self.defaultGateway = settings.defaultGateway
        self.dnsServers = Self.encode(settings.dnsServers)
        self.ntpServers = Self.encode(settings.ntpServers)
    }

    var settings: NetworkSettings {
        NetworkSettings(
            hostname: hostname,
            defaultGateway: defaultGateway,
            dnsServers: Self.decode(dnsServers),
            ntpServers: Self.decode(ntpServers)
        )
    }

    static func encode(_ list: [String]) -> String {
        (try? String(decoding: JSONEncoder().encode(list), as: UTF8.self)) ?? "[]"
    }

    static func decode(_ text: String) -> [String] {
        (try? JSONDecoder().decode([String].self, from: Data(text.utf8))) ?? []
    }
}

/// One IP configuration entry (A3) as the box holds it.
public struct AddressConfig: Sendable, Equatable {
    public var id: Int64?
    public var enabled: Bool
    public var port: String
    public var address: String
    public var subnetMask: String
    public var access: AccessType
    /// The certificate this address serves; nil: the factory certificate.
    public var certificateId: Int64?

    public init(
        id: Int64?,
        enabled: Bool,
        port: String,
        address: String,
        subnetMask: String,
        access: AccessType,
        certificateId: Int64? = nil
    ) {
        self.id = id
        self.enabled = enabled
        self.port = port
        self.address = address
        self.subnetMask = subnetMask
        self.access = access
        self.certificateId = certificateId
    }

    public init(id: Int64?, _ input: AddressInput) {
        self.init(
            id: id,
            enabled: input.enabled,
            port: input.port,
            address: input.address,
            subnetMask: input.subnetMask,
            access: input.access
        )
    }
}

struct AddressRecord: Codable, FetchableRecord, MutablePersistableRecord {
    static let databaseTableName = "network_address"
    var id: Int64?
    var enabled: Bool
    var port: String
    var address: String
    var subnetMask: String
    var access: String
    var certificateId: Int64?

    init(
        id: Int64?,
        enabled: Bool,
        port: String,
        address: String,
        subnetMask: String,
        access: String,
        certificateId: Int64? = nil
    ) {
        self.id = id
        self.enabled = enabled
        self.port = port
        self.address = address
        self.subnetMask = subnetMask
        self.access = access
        self.certificateId = certificateId
    }

    init(_ config: AddressConfig) {
        self.init(
            id: config.id,
            enabled: config.enabled,
            port: config.port,
            address: config.address,
            subnetMask: config.subnetMask,
            access: config.access.rawValue,
            certificateId: config.certificateId
        )
    }

    var config: AddressConfig {
        AddressConfig(
            id: id,
            enabled: enabled,
            port: port,
            address: address,
            subnetMask: subnetMask,
            access: AccessType(rawValue: access) ?? .both,
            certificateId: certificateId
        )
    }

    mutating func didInsert(_ inserted: InsertionSuccess) {
        id = inserted.rowID
    }
}

struct SoftwareRecord: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "software"
    var name: String
    var kind: String
    var version: String
    var installedAt: Date
}

struct CertificateRecord: Codable, FetchableRecord, MutablePersistableRecord {
    static let databaseTableName = "certificate"
    var id: Int64?
    var name: String
    var certificatePEM: String
    var privateKeyPEM: String?
    var chainPEM: String
    var isFactory: Bool
    var createdAt: Date

    mutating func didInsert(_ inserted: InsertionSuccess) {
        id = inserted.rowID
    }

    var stored: StoredCertificate {
        StoredCertificate(
            id: id ?? 0,
            name: name,
            certificatePEM: certificatePEM,
            privateKeyPEM: privateKeyPEM,
            chainPEM: chainPEM,
            isFactory: isFactory
        )
    }
}

/// A row of the file store index (site) or the recordings index (box): same shape, different tables.
struct FileRecord: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "stored_file"
    static let recordings = Table<FileRecord>("recording")
    var name: String
    var size: Int64
    var sha256: String
    var modifiedAt: Date

    init(_ info: StoredFileInfo) {
        self.name = info.name
        self.size = info.size
        self.sha256 = info.sha256
        self.modifiedAt = info.modifiedAt
    }

    var info: StoredFileInfo { StoredFileInfo(name: name, size: size, sha256: sha256, modifiedAt: modifiedAt) }

    func upsert(_ db: Database, table: String) throws {
        try db.execute(
            sql: """
                INSERT INTO \(table) (name, size, sha256, modifiedAt) VALUES (?, ?, ?, ?)
                ON CONFLICT(name) DO UPDATE SET size = excluded.size, sha256 = excluded.sha256,
                modifiedAt = excluded.modifiedAt
                """,
            arguments: [name, size, sha256, modifiedAt]
        )
    }
}
