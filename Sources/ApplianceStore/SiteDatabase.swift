public import ApplianceAPI
import ApplianceCrypto
public import Foundation
import GRDB
import Synchronization

/// A logged-in user as the API sees it.
public struct AuthenticatedUser: Sendable, Equatable {
    public var id: Int64
    public var username: String
    public var isAdministrator: Bool
    public var passwordChangeRequired: Bool
}

public struct LoginResult: Sendable {
    public var token: String
    public var expiresAt: Date
    public var passwordChangeRequired: Bool
}

/// The site's state: users, sessions, settings, security policy, logged history and the file store index.
///
/// This is what a backup carries. A restore replaces the whole `site/` directory underneath it, so the
/// database is reached through `pool()`, which fails with `.unavailable` while the swap is in progress.
public final class SiteDatabase: Sendable {
    public static let factoryUsername = "admin"
    public static let factoryPassword = "password"

    let directory: DataDirectory
    private let current: Mutex<DatabasePool?>

    public init(directory: DataDirectory) throws {
        self.directory = directory
        self.current = Mutex(nil)
        try open()
    }

    private func open() throws {
        let pool = try DatabasePool(path: directory.siteDatabase.path, configuration: BoxDatabase.configuration())
        try Self.migrator.migrate(pool)
        try pool.write { db in try Self.seedFactoryState(db) }
        current.withLock { $0 = pool }
    }

    func pool() throws -> DatabasePool {
        guard let pool = current.withLock({ $0 }) else {
            throw StoreError(.unavailable, "the site is being restored or reset; try again in a few seconds")
        }
        return pool
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.create(table: "user") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("username", .text).notNull().unique()
                t.column("displayName", .text).notNull()
                t.column("email", .text).notNull()
                t.column("passwordHash", .text).notNull()
                t.column("isAdministrator", .boolean).notNull()
                t.column("mustChangePassword", .boolean).notNull()
                t.column("failedLogins", .integer).notNull().defaults(to: 0)
                t.column("lastFailedAt", .datetime)
                t.column("lockedUntil", .datetime)
                t.column("createdAt", .datetime).notNull()
            }
            try db.create(table: "auth_session") { t in
                t.primaryKey("tokenHash", .text)
                t.column("userId", .integer).notNull().references("user", onDelete: .cascade)
                t.column("createdAt", .datetime).notNull()
                t.column("expiresAt", .datetime).notNull()
            }
            try db.create(table: "setting") { t in
                t.primaryKey("key", .text)
                t.column("value", .text).notNull()
            }
            try db.create(table: "security_policy") { t in
                t.primaryKey("id", .integer)
                t.column("json", .text).notNull()
            }
            try db.create(table: "history") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("sessionId", .text).notNull()
                t.column("username", .text).notNull()
                t.column("target", .text).notNull()
                t.column("proto", .text).notNull()
                t.column("startedAt", .datetime).notNull()
                t.column("endedAt", .datetime).notNull()
                t.column("bytesTransferred", .integer).notNull()
                t.column("summary", .text).notNull()
            }
            try db.create(table: "stored_file") { t in
                t.primaryKey("name", .text)
                t.column("size", .integer).notNull()
                t.column("sha256", .text).notNull()
                t.column("modifiedAt", .datetime).notNull()
            }
        }
        migrator.registerMigration("v2") { db in
            // Failover (A7): every history row gets an id that is the same on every box, so rows that two boxes
            // logged while apart are merged once each; and a place for the relationship and the sync cursor.
            try db.alter(table: "history") { t in t.add(column: "uid", .text) }
            try db.execute(sql: "UPDATE history SET uid = lower(hex(randomblob(16))) WHERE uid IS NULL")
            try db.create(index: "history_uid", on: "history", columns: ["uid"], unique: true)
            try db.create(table: "failover_state") { t in
                t.primaryKey("key", .text)
                t.column("value", .text).notNull()
            }
        }
        registerDigestCache(&migrator)
        return migrator
    }

    /// A site with no users is a factory-fresh site: it gets `admin` / `password`, to be changed at first login.
    static func seedFactoryState(_ db: Database) throws {
        if try UserRecord.fetchCount(db) == 0 {
            var admin = UserRecord(
                id: nil,
                username: factoryUsername,
                displayName: "Administrator",
                email: "",
                passwordHash: PasswordHash.make(factoryPassword),
                isAdministrator: true,
                mustChangePassword: true,
                failedLogins: 0,
                lastFailedAt: nil,
                lockedUntil: nil,
                createdAt: Date()
            )
            try admin.insert(db)
        }
        if try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM security_policy") == 0 {
            try db.execute(
                sql: "INSERT INTO security_policy (id, json) VALUES (1, ?)",
                arguments: [try encodePolicy(.factoryDefault)]
            )
        }
    }

    // MARK: Authentication (A2)

    /// Checks a username and password against backoff, lockout and the stored hash, and opens a session.
    public func login(username: String, password: String, now: Date = Date()) throws -> LoginResult {
        let pool = try pool()
        let policy = try securityPolicy()
        guard let user = try pool.read({ db in try UserRecord.filter(Column("username") == username).fetchOne(db) })
        else {
            // Same work as a real check, so timing does not reveal which usernames exist.
            _ = PasswordHash.verify(password, against: Self.dummyHash)
            throw StoreError(.unauthorized, "wrong username or password")
        }
        if let lockedUntil = user.lockedUntil, lockedUntil > now {
            let seconds = Int(lockedUntil.timeIntervalSince(now).rounded(.up))
            throw StoreError(
                .locked,
                "the account is locked after too many failed logins; try again in \(seconds) s",
                retryAfterSeconds: seconds
            )
        }
        if user.failedLogins > 0, let last = user.lastFailedAt {
            let wait = min(policy.backoffBaseSeconds * pow(2, Double(user.failedLogins - 1)), 60)
            let allowedAt = last.addingTimeInterval(wait)
            if allowedAt > now {
                let seconds = max(1, Int(allowedAt.timeIntervalSince(now).rounded(.up)))
                throw StoreError(
                    .throttled,
                    "too many failed logins; wait \(seconds) s before the next attempt",
                    retryAfterSeconds: seconds
                )
            }
        }
        guard let userId = user.id else { throw StoreError(.storage, "user without id") }
        if PasswordHash.verify(password, against: user.passwordHash) {
            let token = SecureRandom.bytes(32).hexString
            let expiresAt = now.addingTimeInterval(TimeInterval(policy.sessionLifetimeSeconds))
            try pool.write { db in
                try db.execute(
                    sql: "UPDATE user SET failedLogins = 0, lastFailedAt = NULL, lockedUntil = NULL WHERE id = ?",
                    arguments: [userId]
                )
                try db.execute(sql: "DELETE FROM auth_session WHERE expiresAt < ?", arguments: [now])
                try db.execute(
                    sql: "INSERT INTO auth_session (tokenHash, userId, createdAt, expiresAt) VALUES (?, ?, ?, ?)",
                    arguments: [Self.tokenHash(token), userId, now, expiresAt]
                )
            }
            return LoginResult(token: token, expiresAt: expiresAt, passwordChangeRequired: user.mustChangePassword)
        }
        let failures = user.failedLogins + 1
        if failures >= policy.maxFailedLogins {
            let until = now.addingTimeInterval(TimeInterval(policy.lockoutSeconds))
            try pool.write { db in
                try db.execute(
                    sql: "UPDATE user SET failedLogins = 0, lastFailedAt = NULL, lockedUntil = ? WHERE id = ?",
                    arguments: [until, userId]
                )
            }
            throw StoreError(
                .locked,
                "wrong username or password; the account is now locked for \(policy.lockoutSeconds) s",
                retryAfterSeconds: policy.lockoutSeconds
            )
        }
        try pool.write { db in
            try db.execute(
                sql: "UPDATE user SET failedLogins = ?, lastFailedAt = ? WHERE id = ?",
                arguments: [failures, now, userId]
            )
        }
        throw StoreError(.unauthorized, "wrong username or password")
    }

    private static let dummyHash = PasswordHash.make("not a real password")

    static func tokenHash(_ token: String) -> String {
        SHA256Hasher.hash(Array(token.utf8)).hexString
    }

    /// The user a bearer token belongs to, if the session exists and has not expired.
    public func authenticate(token: String, now: Date = Date()) throws -> AuthenticatedUser {
        let found = try pool().read { db -> AuthenticatedUser? in
            let row = try Row.fetchOne(
                db,
                sql: """
                    SELECT user.id, user.username, user.isAdministrator, user.mustChangePassword
                    FROM auth_session JOIN user ON user.id = auth_session.userId
                    WHERE auth_session.tokenHash = ? AND auth_session.expiresAt > ?
                    """,
                arguments: [Self.tokenHash(token), now]
            )
            return row.map {
                AuthenticatedUser(
                    id: $0["id"],
                    username: $0["username"],
                    isAdministrator: $0["isAdministrator"],
                    passwordChangeRequired: $0["mustChangePassword"]
                )
            }
        }
        guard let found else {
            throw StoreError(.unauthorized, "the session has expired or does not exist; log in again")
        }
        return found
    }

    /// Ends every session (after a software update), or every session but `token`'s (maintenance mode).
    public func logoutEveryone(except token: String? = nil) throws {
        try pool().write { db in
            if let token {
                try db.execute(
                    sql: "DELETE FROM auth_session WHERE tokenHash != ?",
                    arguments: [Self.tokenHash(token)]
                )
            } else {
                try db.execute(sql: "DELETE FROM auth_session")
            }
        }
    }

    public func logout(token: String) throws {
        try pool().write { db in
            try db.execute(sql: "DELETE FROM auth_session WHERE tokenHash = ?", arguments: [Self.tokenHash(token)])
        }
    }

    /// Changes a user's password after checking the current one and the policy; other sessions of the user end.
    public func changePassword(user: AuthenticatedUser, token: String, current: String, new: String) throws {
        let pool = try pool()
        guard let record = try pool.read({ db in try UserRecord.fetchOne(db, key: user.id) }) else {
            throw StoreError(.unauthorized, "the user no longer exists; log in again")
        }
        guard PasswordHash.verify(current, against: record.passwordHash) else {
            throw StoreError(.forbidden, "the current password is wrong")
        }
        guard new != current else {
            throw StoreError(.policy, "the new password must differ from the current one")
        }
        try securityPolicy().check(password: new, username: user.username)
        let hash = PasswordHash.make(new)
        try pool.write { db in
            try db.execute(
                sql: "UPDATE user SET passwordHash = ?, mustChangePassword = 0 WHERE id = ?",
                arguments: [hash, user.id]
            )
            try db.execute(
                sql: "DELETE FROM auth_session WHERE userId = ? AND tokenHash != ?",
                arguments: [user.id, Self.tokenHash(token)]
            )
        }
    }

    // MARK: Security policy

    public func securityPolicy() throws -> SecurityPolicy {
        let json = try pool().read { db in try String.fetchOne(db, sql: "SELECT json FROM security_policy") }
        guard let json, let policy = try? JSONDecoder().decode(SecurityPolicy.self, from: Data(json.utf8)) else {
            return .factoryDefault
        }
        return policy
    }

    public func updateSecurityPolicy(_ policy: SecurityPolicy) throws {
        try policy.validate()
        let json = try Self.encodePolicy(policy)
        try pool().write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO security_policy (id, json) VALUES (1, ?)", arguments: [json])
        }
    }

    static func encodePolicy(_ policy: SecurityPolicy) throws -> String {
        String(decoding: try JSONEncoder().encode(policy), as: UTF8.self)
    }

    // MARK: Settings

    public func settings() throws -> [String: String] {
        try pool().read { db in
            var result: [String: String] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT key, value FROM setting") {
                result[row["key"]] = row["value"]
            }
            return result
        }
    }

    public func updateSettings(_ values: [String: String]) throws {
        // Counted in Unicode scalars (code points), as the OpenAPI document's maxLength is.
        for key in values.keys where key.isEmpty || key.unicodeScalars.count > 128 {
            throw StoreError(.invalidInput, "setting names must be 1 to 128 characters long")
        }
        // SQLite hands text back up to the first NUL, so a NUL would silently cut a name or value short.
        for (key, value) in values where key.contains("\u{0}") || value.contains("\u{0}") {
            throw StoreError(.invalidInput, "setting names and values must not contain NUL characters")
        }
        try pool().write { db in
            for (key, value) in values {
                try db.execute(
                    sql: "INSERT OR REPLACE INTO setting (key, value) VALUES (?, ?)",
                    arguments: [key, value]
                )
            }
        }
    }

    // MARK: Users

    public func users() throws -> [UserInfo] {
        try pool().read { db in
            try UserRecord.order(Column("username")).fetchAll(db).map {
                UserInfo(
                    username: $0.username,
                    displayName: $0.displayName,
                    email: $0.email,
                    isAdministrator: $0.isAdministrator
                )
            }
        }
    }

    public func createUser(_ input: UserInput) throws -> UserInfo {
        guard Self.isValidUsername(input.username) else {
            throw StoreError(
                .invalidInput,
                "usernames are 1 to 64 letters, digits, '.', '_' or '-'; '\(input.username)' is not"
            )
        }
        try securityPolicy().check(password: input.password, username: input.username)
        let hash = PasswordHash.make(input.password)
        return try pool().write { db in
            if try UserRecord.filter(Column("username") == input.username).fetchCount(db) > 0 {
                throw StoreError(.conflict, "a user named '\(input.username)' exists already")
            }
            var record = UserRecord(
                id: nil,
                username: input.username,
                displayName: input.displayName,
                email: input.email,
                passwordHash: hash,
                isAdministrator: false,
                mustChangePassword: false,
                failedLogins: 0,
                lastFailedAt: nil,
                lockedUntil: nil,
                createdAt: Date()
            )
            try record.insert(db)
            return UserInfo(
                username: record.username,
                displayName: record.displayName,
                email: record.email,
                isAdministrator: false
            )
        }
    }

    static func isValidUsername(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 64
            && name.unicodeScalars.allSatisfy {
                ($0.properties.isAlphabetic && $0.isASCII) || ("0"..."9").contains($0)
                    || "._-".unicodeScalars
                        .contains($0)
            }
    }

    // MARK: History

    public func history(offset: Int, limit: Int) throws -> HistoryPage {
        try pool().read { db in
            let total = try HistoryRecord.fetchCount(db)
            let rows = try HistoryRecord.order(Column("id")).limit(limit, offset: offset).fetchAll(db)
            return HistoryPage(total: total, rows: rows.map(\.row))
        }
    }

    public func appendHistory(_ rows: [HistoryRow]) throws {
        try pool().write { db in
            for row in rows {
                var record = HistoryRecord(row)
                record.id = nil
                record.uid = SecureRandom.bytes(16).hexString
                try record.insert(db)
            }
        }
    }

    /// Inserts many rows in one transaction through one prepared statement (data generation).
    func appendHistoryBulk(_ rows: some Sequence<HistoryRow>) throws {
        try pool().write { db in
            let statement = try db.makeStatement(
                sql: """
                    INSERT INTO history (sessionId, username, target, proto, startedAt, endedAt, bytesTransferred,
                    summary, uid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, lower(hex(randomblob(16))))
                    """
            )
            for row in rows {
                try statement.execute(arguments: [
                    row.sessionId, row.username, row.target, row.proto, row.startedAt, row.endedAt,
                    row.bytesTransferred, row.summary,
                ])
            }
        }
    }

    // MARK: File store index

    public func files() throws -> [StoredFileInfo] {
        try pool().read { db in try FileRecord.order(Column("name")).fetchAll(db).map(\.info) }
    }

    public func file(named name: String) throws -> StoredFileInfo? {
        try pool().read { db in try FileRecord.fetchOne(db, key: name)?.info }
    }

    public func saveFile(_ info: StoredFileInfo) throws {
        try pool().write { db in try FileRecord(info).upsert(db, table: "stored_file") }
    }

    /// The files a backup carries (A6): smaller than 200 KB, at most 50 — the most recently changed first.
    public func backupFileSelection() throws -> [StoredFileInfo] {
        try pool().read { db in
            try FileRecord.filter(Column("size") < Self.backupFileSizeLimit)
                .order(Column("modifiedAt").desc, Column("name"))
                .limit(Self.backupFileCountLimit)
                .fetchAll(db).map(\.info)
        }
    }

    public static let backupFileSizeLimit: Int64 = 200 * 1024
    public static let backupFileCountLimit = 50

    // MARK: Summary

    /// Counts and digests of everything the site holds, in a canonical order, to compare two boxes.
    ///
    /// History is digested as the multiset of its rows' contents, not by local ids or uids: after a failover merge two
    /// boxes hold the same rows under other ids, and boxes restored from a backup made before uids existed hold other
    /// uids.
    public func summary() throws -> (settings: (Int, String), users: (Int, String), history: (Int, String)) {
        // A write: the history digest keeps its running sum (see SiteDatabase+Digest.swift).
        try pool().write { db in
            let settings = SHA256Hasher()
            let settingRows = try Row.fetchAll(db, sql: "SELECT key, value FROM setting ORDER BY key")
            for row in settingRows {
                settings.update(Array("\(row["key"] as String)=\(row["value"] as String)\n".utf8))
            }
            let users = SHA256Hasher()
            let userRows = try UserRecord.order(Column("username")).fetchAll(db)
            for user in userRows {
                users.update(
                    Array(
                        "\(user.username)|\(user.displayName)|\(user.email)|\(user.isAdministrator)|\(user.passwordHash)\n"
                            .utf8
                    )
                )
            }
            let history = try Self.historyDigest(db)
            return (
                (settingRows.count, settings.finalize().hexString),
                (userRows.count, users.finalize().hexString),
                (history.count, history.digest)
            )
        }
    }

    // MARK: Backup and restore

    /// Writes a consistent copy of the site database to `url` for a backup: no login sessions or failure
    /// counters, history only if asked, and file store rows only for the files the backup carries.
    public func snapshot(to url: URL, includeHistory: Bool, keepFiles: [String]) throws -> [String: Int] {
        try pool().writeWithoutTransaction { db in
            try db.execute(sql: "VACUUM INTO ?", arguments: [url.path])
        }
        let queue = try DatabaseQueue(path: url.path)
        let counts = try queue.write { db -> [String: Int] in
            try db.execute(sql: "DELETE FROM auth_session")
            try db.execute(sql: "UPDATE user SET failedLogins = 0, lastFailedAt = NULL, lockedUntil = NULL")
            if !includeHistory {
                try db.execute(sql: "DELETE FROM history")
            }
            try db.execute(sql: "CREATE TEMP TABLE keep_file (name TEXT PRIMARY KEY)")
            for name in keepFiles {
                try db.execute(sql: "INSERT INTO keep_file (name) VALUES (?)", arguments: [name])
            }
            try db.execute(sql: "DELETE FROM stored_file WHERE name NOT IN (SELECT name FROM keep_file)")
            return try Self.counts(db)
        }
        if !includeHistory {
            try queue.writeWithoutTransaction { db in try db.execute(sql: "VACUUM") }
        }
        try queue.close()
        return counts
    }

    /// The record counts a backup manifest carries.
    static func counts(_ db: Database) throws -> [String: Int] {
        [
            "users": try UserRecord.fetchCount(db),
            "settings": try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM setting") ?? 0,
            "history": try HistoryRecord.fetchCount(db),
            "files": try FileRecord.fetchCount(db),
        ]
    }

    /// Checks a staged site database from a backup: it opens, passes SQLite's integrity check, migrates to
    /// this version's schema and holds no login sessions. Returns its counts.
    public static func prepareStaged(databaseAt url: URL) throws -> [String: Int] {
        let queue: DatabaseQueue
        do {
            queue = try DatabaseQueue(path: url.path)
            let check = try queue.read { db in try String.fetchOne(db, sql: "PRAGMA integrity_check") }
            guard check == "ok" else {
                throw StoreError(.invalidInput, "the backup's database is damaged (\(check ?? "no answer"))")
            }
            try migrator.migrate(queue)
        } catch let error as StoreError {
            throw error
        } catch let error where DiskSpace.isOutOfSpace(error) {
            throw error
        } catch {
            throw StoreError(.invalidInput, "the backup's database cannot be opened: \(error)")
        }
        let counts = try queue.write { db -> [String: Int] in
            try db.execute(sql: "DELETE FROM auth_session")
            try seedFactoryState(db)
            return try Self.counts(db)
        }
        try queue.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
        try queue.close()
        return counts
    }

    /// Replaces the live site with the staged one (`site.restore/`, already complete and verified).
    ///
    /// The order of renames lets `DataDirectory.prepare` finish the switch after a crash at any point:
    /// the `COMPLETE` marker is written last in staging, so from then on the restored site wins.
    public func commitRestore() throws {
        let fm = FileManager.default
        try directory.syncDirectory(directory.restoreStaging)
        guard fm.createFile(atPath: directory.restoreMarker.path, contents: Data("complete\n".utf8)) else {
            throw StoreError(.storage, "cannot write \(directory.restoreMarker.path); check free disk space")
        }
        try syncFile(directory.restoreMarker)
        try directory.syncDirectory(directory.restoreStaging)
        try directory.syncDirectory(directory.root)
        let old = current.withLock { pool -> DatabasePool? in
            defer { pool = nil }
            return pool
        }
        try? old?.close()
        do {
            try fm.moveItem(at: directory.site, to: directory.siteOld)
            try fm.moveItem(at: directory.restoreStaging, to: directory.site)
            try directory.syncDirectory(directory.root)
            try fm.removeItem(at: directory.site.appendingPathComponent("COMPLETE"))
            try? fm.removeItem(at: directory.siteOld)
        } catch {
            throw StoreError(.storage, "switching to the restored site failed (\(error)); restart applianced")
        }
        try open()
    }

    /// Closes the database for a factory reset; `reopen()` makes a fresh site afterwards.
    public func closeForReset() {
        let old = current.withLock { pool -> DatabasePool? in
            defer { pool = nil }
            return pool
        }
        try? old?.close()
    }

    public func reopen() throws {
        try open()
    }
}

/// fsync of one file.
func syncFile(_ url: URL) throws {
    let handle = try FileHandle(forWritingTo: url)
    try handle.synchronize()
    try handle.close()
}

// MARK: Records

struct UserRecord: Codable, FetchableRecord, MutablePersistableRecord {
    static let databaseTableName = "user"
    var id: Int64?
    var username: String
    var displayName: String
    var email: String
    var passwordHash: String
    var isAdministrator: Bool
    var mustChangePassword: Bool
    var failedLogins: Int
    var lastFailedAt: Date?
    var lockedUntil: Date?
    var createdAt: Date

    mutating func didInsert(_ inserted: InsertionSuccess) {
        id = inserted.rowID
    }
}

struct HistoryRecord: Codable, FetchableRecord, MutablePersistableRecord {
    static let databaseTableName = "history"
    var id: Int64?
    var sessionId: String
    var username: String
    var target: String
    var proto: String
    var startedAt: Date
    var endedAt: Date
    var bytesTransferred: Int64
    var summary: String
    /// The row's id on every box (failover); nil only before migration v2.
    var uid: String?

    init(_ row: HistoryRow, uid: String? = nil) {
        self.uid = uid
        self.id = row.id
        self.sessionId = row.sessionId
        self.username = row.username
        self.target = row.target
        self.proto = row.proto
        self.startedAt = row.startedAt
        self.endedAt = row.endedAt
        self.bytesTransferred = row.bytesTransferred
        self.summary = row.summary
    }

    var row: HistoryRow {
        HistoryRow(
            id: id,
            sessionId: sessionId,
            username: username,
            target: target,
            proto: proto,
            startedAt: startedAt,
            endedAt: endedAt,
            bytesTransferred: bytesTransferred,
            summary: summary
        )
    }

    mutating func didInsert(_ inserted: InsertionSuccess) {
        id = inserted.rowID
    }
}
