public import Foundation
import GRDB

/// One line of the journal: a step's intent before acting, or its outcome after.
public struct JournalEntry: Sendable, Equatable, Codable {
    public enum Phase: String, Codable, Sendable {
        case intent, done, failed
        /// A failure lifted the freeze: this step and the site-copying steps after it are to be done again.
        case reverted
        /// The operator abandoned the run.
        case aborted
    }

    public var sequence: Int64
    public var runId: String
    public var step: MigrationStep
    public var phase: Phase
    /// What the step found or made (ids, checksums, pins, file names); never a secret.
    public var detail: [String: String]
    public var at: Date

    public init(
        sequence: Int64 = 0,
        runId: String,
        step: MigrationStep,
        phase: Phase,
        detail: [String: String] = [:],
        at: Date = Date()
    ) {
        self.sequence = sequence
        self.runId = runId
        self.step = step
        self.phase = phase
        self.detail = detail
        self.at = at
    }
}

/// A run as the journal keeps it: what was asked (the plan and settings), not how far it got.
public struct RunRecord: Sendable, Equatable, Codable {
    public var id: String
    /// `migrate`, `provision` or `decommission`.
    public var kind: String
    public var playbook: String
    public var inventory: String
    public var createdAt: Date
    public var plan: [MigrationStep]
    public var settings: MigrationSettings
}

/// The local journal (SQLite, synchronous writes): every step's intent and outcome, written before and after
/// acting, so `appliancectl resume RUN` knows where a run stopped (P4).
public final class Journal: Sendable {
    let queue: DatabaseQueue
    public let url: URL

    /// Opens (creating) the journal at `url`.
    public init(url: URL) throws {
        self.url = url
        do {
            try FileManager.default.createDirectory(
                at: url.deletingLastPathComponent(),
                withIntermediateDirectories: true
            )
            var config = Configuration()
            config.busyMode = .timeout(10)
            config.prepareDatabase { db in
                try db.execute(sql: "PRAGMA synchronous = FULL")
            }
            queue = try DatabaseQueue(path: url.path, configuration: config)
            try Self.migrator.migrate(queue)
        } catch {
            throw MigrationError(.journal, "cannot open the journal \(url.path) (\(error)); check the state directory")
        }
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.create(table: "run") { t in
                t.primaryKey("id", .text)
                t.column("kind", .text).notNull()
                t.column("playbook", .text).notNull()
                t.column("inventory", .text).notNull()
                t.column("createdAt", .datetime).notNull()
                t.column("plan", .text).notNull()
                t.column("settings", .text).notNull()
            }
            try db.create(table: "entry") { t in
                t.autoIncrementedPrimaryKey("sequence")
                t.column("runId", .text).notNull().references("run", onDelete: .cascade)
                t.column("step", .text).notNull()
                t.column("phase", .text).notNull()
                t.column("detail", .text).notNull()
                t.column("at", .datetime).notNull()
            }
        }
        return migrator
    }

    /// Records a new run and returns it.
    public func createRun(
        kind: String,
        playbook: String,
        inventory: String,
        plan: [MigrationStep],
        settings: MigrationSettings
    ) throws -> RunRecord {
        let now = Date()
        let stamp = Self.stampFormat(now)
        let id = "\(stamp)-\(kind)-\(String(UInt32.random(in: 0...0xFFFF), radix: 16))"
        let record = RunRecord(
            id: id,
            kind: kind,
            playbook: playbook,
            inventory: inventory,
            createdAt: now,
            plan: plan,
            settings: settings
        )
        try write { db in
            try db.execute(
                sql: """
                    INSERT INTO run (id, kind, playbook, inventory, createdAt, plan, settings)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    id, kind, playbook, inventory, now, try Self.json(plan.map(\.rawValue)), try Self.json(settings),
                ]
            )
        }
        return record
    }

    /// Appends one entry; it is on disk when this returns.
    @discardableResult
    public func append(_ entry: JournalEntry) throws -> JournalEntry {
        var stored = entry
        try write { db in
            try db.execute(
                sql: "INSERT INTO entry (runId, step, phase, detail, at) VALUES (?, ?, ?, ?, ?)",
                arguments: [
                    entry.runId, entry.step.rawValue, entry.phase.rawValue, try Self.json(entry.detail), entry.at,
                ]
            )
            stored.sequence = db.lastInsertedRowID
        }
        return stored
    }

    public func run(_ id: String) throws -> RunRecord {
        let found = try read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM run WHERE id = ?", arguments: [id]).map(Self.runRecord)
        }
        guard let found else {
            throw MigrationError(.unknownRun, "there is no run \(id) in \(url.path); `appliancectl runs` lists them")
        }
        return found
    }

    /// Every run, newest first.
    public func runs() throws -> [RunRecord] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM run ORDER BY createdAt DESC, id DESC").map(Self.runRecord)
        }
    }

    public func entries(_ runId: String) throws -> [JournalEntry] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM entry WHERE runId = ? ORDER BY sequence", arguments: [runId])
                .map { row in
                    JournalEntry(
                        sequence: row["sequence"],
                        runId: row["runId"],
                        step: MigrationStep(rawValue: row["step"]) ?? .preflight,
                        phase: JournalEntry.Phase(rawValue: row["phase"]) ?? .failed,
                        detail: (try? Self.decode([String: String].self, row["detail"])) ?? [:],
                        at: row["at"]
                    )
                }
        }
    }

    /// Whether any run verified a migration (`verify` done) or a backup (`backup` done, proven restorable) of the
    /// appliance with this id — the evidence a decommission needs (P6).
    public func verifiedEvidence(applianceId: String) throws -> String? {
        let rows = try read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT runId, step, at FROM entry WHERE phase = 'done' AND step IN ('verify', 'backup')
                    AND json_extract(detail, '$.oldApplianceId') = ? ORDER BY sequence DESC
                    """,
                arguments: [applianceId]
            )
        }
        guard let row = rows.first(where: { $0["step"] == "verify" }) ?? rows.first else { return nil }
        let step: String = row["step"]
        let runId: String = row["runId"]
        return step == "verify" ? "a verified migration (run \(runId))" : "a verified backup (run \(runId))"
    }

    // MARK: Helpers

    private func write(_ body: (Database) throws -> Void) throws {
        do {
            try queue.write(body)
        } catch {
            throw MigrationError(.journal, "cannot write the journal \(url.path) (\(error)); check disk space")
        }
    }

    private func read<T>(_ body: (Database) throws -> T) throws -> T {
        do {
            return try queue.read(body)
        } catch {
            throw MigrationError(.journal, "cannot read the journal \(url.path) (\(error))")
        }
    }

    static func runRecord(_ row: Row) throws -> RunRecord {
        RunRecord(
            id: row["id"],
            kind: row["kind"],
            playbook: row["playbook"],
            inventory: row["inventory"],
            createdAt: row["createdAt"],
            plan: try decode([String].self, row["plan"]).compactMap(MigrationStep.init(rawValue:)),
            settings: try decode(MigrationSettings.self, row["settings"])
        )
    }

    static func json(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    static func decode<T: Decodable>(_ type: T.Type, _ text: String) throws -> T {
        try JSONDecoder().decode(type, from: Data(text.utf8))
    }

    static func stampFormat(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        return formatter.string(from: date)
    }
}
