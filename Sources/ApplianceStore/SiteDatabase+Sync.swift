public import ApplianceAPI
import ApplianceCrypto
public import Foundation
import GRDB

/// One sync as the backup applies it: everything at once, or nothing.
public struct SyncApply: Codable, Sendable {
    public var primaryApplianceId: String
    public var history: [SyncedHistoryRow]
    public var historyThrough: Int64
    public var config: SyncedConfig?
    public var configDigest: String
    public var fileUpserts: [StoredFileInfo]
    public var fileDeletes: [String]
    public var recordingUpserts: [StoredFileInfo]
    public var recordingDeletes: [String]
    public var takenAt: Date

    public init(
        primaryApplianceId: String,
        history: [SyncedHistoryRow],
        historyThrough: Int64,
        config: SyncedConfig?,
        configDigest: String,
        fileUpserts: [StoredFileInfo],
        fileDeletes: [String],
        recordingUpserts: [StoredFileInfo],
        recordingDeletes: [String],
        takenAt: Date
    ) {
        self.primaryApplianceId = primaryApplianceId
        self.history = history
        self.historyThrough = historyThrough
        self.config = config
        self.configDigest = configDigest
        self.fileUpserts = fileUpserts
        self.fileDeletes = fileDeletes
        self.recordingUpserts = recordingUpserts
        self.recordingDeletes = recordingDeletes
        self.takenAt = takenAt
    }
}

/// Where a backup's copy of the site stands: the primary it follows and the point it holds.
public struct SyncCursor: Codable, Sendable, Equatable {
    public var primaryApplianceId: String
    public var historyThrough: Int64
    public var configDigest: String
    public var takenAt: Date

    public init(primaryApplianceId: String, historyThrough: Int64, configDigest: String, takenAt: Date) {
        self.primaryApplianceId = primaryApplianceId
        self.historyThrough = historyThrough
        self.configDigest = configDigest
        self.takenAt = takenAt
    }
}

extension SiteDatabase {
    // MARK: Failover state (part of the site: a restore overwrites it, SPEC A6)

    public func failoverValue(_ key: String) throws -> String? {
        try pool().read { db in
            try String.fetchOne(db, sql: "SELECT value FROM failover_state WHERE key = ?", arguments: [key])
        }
    }

    public func setFailoverValue(_ key: String, _ value: String?) throws {
        try pool().write { db in try Self.setFailoverValue(db, key, value) }
    }

    static func setFailoverValue(_ db: Database, _ key: String, _ value: String?) throws {
        if let value {
            try db.execute(
                sql: "INSERT OR REPLACE INTO failover_state (key, value) VALUES (?, ?)",
                arguments: [key, value]
            )
        } else {
            try db.execute(sql: "DELETE FROM failover_state WHERE key = ?", arguments: [key])
        }
    }

    public static let cursorKey = "sync.cursor"

    public func syncCursor() throws -> SyncCursor? {
        guard let text = try failoverValue(Self.cursorKey) else { return nil }
        return try? JSONDecoder.sync.decode(SyncCursor.self, from: Data(text.utf8))
    }

    // MARK: The primary's side

    /// History rows after `after` (primary ids), at most `limit`. A cursor beyond the newest row (the primary's
    /// site was replaced) starts over from the first row; the backup keeps each row once by its uid.
    public func historyChanges(after: Int64, limit: Int) throws -> (
        rows: [SyncedHistoryRow], through: Int64, more: Bool
    ) {
        try pool().read { db in
            let newest = try Int64.fetchOne(db, sql: "SELECT MAX(id) FROM history") ?? 0
            let start = after > newest ? 0 : after
            let records = try Row.fetchAll(
                db,
                sql: """
                    SELECT id, uid, sessionId, username, target, proto, startedAt, endedAt, bytesTransferred, summary
                    FROM history WHERE id > ? ORDER BY id LIMIT ?
                    """,
                arguments: [start, limit + 1]
            )
            let page = records.prefix(limit)
            let rows = page.map { row in
                SyncedHistoryRow(
                    uid: row["uid"] ?? "",
                    sessionId: row["sessionId"],
                    username: row["username"],
                    target: row["target"],
                    proto: row["proto"],
                    startedAt: row["startedAt"],
                    endedAt: row["endedAt"],
                    bytesTransferred: row["bytesTransferred"],
                    summary: row["summary"]
                )
            }
            let through: Int64 = page.last?["id"] ?? start
            return (rows, through, records.count > limit)
        }
    }

    /// Settings, users and the security policy, and a digest of them.
    public func syncedConfig() throws -> (config: SyncedConfig, digest: String) {
        let config = try pool().read { db in
            let settings = try Row.fetchAll(db, sql: "SELECT key, value FROM setting").reduce(into: [String: String]())
            {
                $0[$1["key"]] = $1["value"]
            }
            let users = try UserRecord.order(Column("username")).fetchAll(db).map {
                SyncedUser(
                    username: $0.username,
                    displayName: $0.displayName,
                    email: $0.email,
                    passwordHash: $0.passwordHash,
                    isAdministrator: $0.isAdministrator,
                    mustChangePassword: $0.mustChangePassword
                )
            }
            let json = try String.fetchOne(db, sql: "SELECT json FROM security_policy WHERE id = 1") ?? "{}"
            let policy = try JSONDecoder().decode(SecurityPolicy.self, from: Data(json.utf8))
            return SyncedConfig(settings: settings, users: users, securityPolicy: policy)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return (config, SHA256Hasher.hash(Array(try encoder.encode(config))).hexString)
    }

    // MARK: The backup's side

    /// Applies one sync in one transaction: history rows (each once, by uid), the configuration when it changed
    /// (users matched by name, so their sessions on this box survive unless they are gone), the file store index,
    /// and the new cursor. Running it twice changes nothing the second time.
    public func apply(_ sync: SyncApply) throws {
        try pool().write { db in
            let insert = try db.makeStatement(
                sql: """
                    INSERT OR IGNORE INTO history (sessionId, username, target, proto, startedAt, endedAt,
                    bytesTransferred, summary, uid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """
            )
            for row in sync.history {
                try insert.execute(arguments: [
                    row.sessionId, row.username, row.target, row.proto, row.startedAt, row.endedAt,
                    row.bytesTransferred, row.summary, row.uid,
                ])
            }
            if let config = sync.config {
                try db.execute(sql: "DELETE FROM setting")
                for (key, value) in config.settings {
                    try db.execute(sql: "INSERT INTO setting (key, value) VALUES (?, ?)", arguments: [key, value])
                }
                try Self.replaceUsers(db, config.users)
                try db.execute(
                    sql: "INSERT OR REPLACE INTO security_policy (id, json) VALUES (1, ?)",
                    arguments: [try Self.encodePolicy(config.securityPolicy)]
                )
            }
            for info in sync.fileUpserts { try FileRecord(info).upsert(db, table: "stored_file") }
            for name in sync.fileDeletes {
                try db.execute(sql: "DELETE FROM stored_file WHERE name = ?", arguments: [name])
            }
            let cursor = SyncCursor(
                primaryApplianceId: sync.primaryApplianceId,
                historyThrough: sync.historyThrough,
                configDigest: sync.configDigest,
                takenAt: sync.takenAt
            )
            try Self.setFailoverValue(
                db,
                Self.cursorKey,
                String(decoding: try JSONEncoder.sync.encode(cursor), as: UTF8.self)
            )
        }
    }

    static func replaceUsers(_ db: Database, _ users: [SyncedUser]) throws {
        let names = Set(users.map(\.username))
        for existing in try UserRecord.fetchAll(db) where !names.contains(existing.username) {
            _ = try existing.delete(db)
        }
        for user in users {
            if var record = try UserRecord.filter(Column("username") == user.username).fetchOne(db) {
                record.displayName = user.displayName
                record.email = user.email
                if record.passwordHash != user.passwordHash {
                    record.passwordHash = user.passwordHash
                    // A changed password ends the user's sessions here too.
                    try db.execute(sql: "DELETE FROM auth_session WHERE userId = ?", arguments: [record.id])
                }
                record.isAdministrator = user.isAdministrator
                record.mustChangePassword = user.mustChangePassword
                try record.update(db)
            } else {
                var record = UserRecord(
                    id: nil,
                    username: user.username,
                    displayName: user.displayName,
                    email: user.email,
                    passwordHash: user.passwordHash,
                    isAdministrator: user.isAdministrator,
                    mustChangePassword: user.mustChangePassword,
                    failedLogins: 0,
                    lastFailedAt: nil,
                    lockedUntil: nil,
                    createdAt: Date()
                )
                try record.insert(db)
            }
        }
    }

    /// Whether the site holds anything beyond a factory-fresh box: history, files or users other than `admin`.
    public func holdsSiteData() throws -> Bool {
        try pool().read { db in
            try HistoryRecord.fetchCount(db) > 0 || FileRecord.fetchCount(db) > 0
                || UserRecord.filter(Column("username") != Self.factoryUsername).fetchCount(db) > 0
        }
    }
}

extension BoxDatabase {
    /// The recordings part of a sync (recordings are indexed in the box database).
    public func applyRecordings(upserts: [StoredFileInfo], deletes: [String]) throws {
        try writer.write { db in
            for info in upserts { try FileRecord(info).upsert(db, table: "recording") }
            for name in deletes {
                try db.execute(sql: "DELETE FROM recording WHERE name = ?", arguments: [name])
            }
        }
    }
}

extension JSONEncoder {
    static var sync: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .secondsSince1970
        encoder.outputFormatting = .sortedKeys
        return encoder
    }
}

extension JSONDecoder {
    static var sync: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        return decoder
    }
}
