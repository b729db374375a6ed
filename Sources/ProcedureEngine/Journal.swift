public import Foundation
import GRDB

/// The local journal (SQLite, synchronous writes): every step's intent and outcome, written before and after
/// acting, so `appliancectl resume RUN` knows where a run stopped (P4). Runs of every procedure share it, each
/// typed by its kind.
public final class Journal: Sendable {
    let queue: DatabaseQueue
    public let url: URL

    /// Opens (creating, or bringing an older format up to date) the journal at `url`.
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
            throw ProcedureError(
                .journal,
                "cannot open the journal \(url.path) (\(error)); check the state directory"
            )
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
        // Journal format 2: who wrote each run and entry, and steps as Codable values (`stepValue`, JSON; the
        // `step` column keeps the step's name). Rows of format 1 keep NULLs there and are read as format 1.
        migrator.registerMigration("v2") { db in
            try db.alter(table: "run") { t in
                t.add(column: "formatVersion", .integer).notNull().defaults(to: 1)
                t.add(column: "toolVersion", .text)
            }
            try db.alter(table: "entry") { t in
                t.add(column: "stepValue", .text)
                t.add(column: "toolVersion", .text)
            }
        }
        return migrator
    }

    /// Records a new run of procedure `P` and returns it.
    public func createRun<P: ProcedureRules>(
        _ type: P.Type,
        playbook: String,
        inventory: String,
        settings: P.Settings
    ) throws -> RunRecord<P> {
        let now = Date()
        let id = "\(Self.stampFormat(now))-\(P.kind)-\(String(UInt32.random(in: 0...0xFFFF), radix: 16))"
        let record = RunRecord<P>(
            id: id,
            playbook: playbook,
            inventory: inventory,
            createdAt: now,
            plan: P.plan(for: settings),
            settings: settings,
            formatVersion: JournalFormat.version,
            writtenBy: JournalFormat.toolVersion
        )
        try write { db in
            try db.execute(
                sql: """
                    INSERT INTO run (id, kind, playbook, inventory, createdAt, plan, settings, formatVersion,
                    toolVersion) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    id, P.kind.rawValue, playbook, inventory, now, try Self.json(record.plan),
                    try Self.json(settings), JournalFormat.version, JournalFormat.toolVersion,
                ]
            )
        }
        return record
    }

    /// Appends one entry; it is on disk when this returns.
    @discardableResult
    public func append<Step: ProcedureStep>(_ entry: JournalEntry<Step>) throws -> JournalEntry<Step> {
        var stored = entry
        stored.writtenBy = JournalFormat.toolVersion
        try write { db in
            try db.execute(
                sql: """
                    INSERT INTO entry (runId, step, stepValue, phase, detail, at, toolVersion)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    entry.runId, entry.step.name, try Self.json(entry.step), entry.phase.rawValue,
                    try Self.json(entry.detail), entry.at, JournalFormat.toolVersion,
                ]
            )
            stored.sequence = db.lastInsertedRowID
        }
        return stored
    }

    /// The run `id` as stored, whatever its kind.
    public func storedRun(_ id: String) throws -> StoredRun {
        let found = try read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM run WHERE id = ?", arguments: [id]).map(Self.storedRun)
        }
        guard let found else {
            throw ProcedureError(
                .unknownRun,
                "there is no run \(id) in \(url.path); `appliancectl runs` lists them"
            )
        }
        return found
    }

    /// The run `id`, typed as procedure `P`.
    public func run<P: ProcedureRules>(_ id: String, as type: P.Type) throws -> RunRecord<P> {
        try storedRun(id).typed(as: type)
    }

    /// Every run, newest first.
    public func storedRuns() throws -> [StoredRun] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM run ORDER BY createdAt DESC, id DESC").map(Self.storedRun)
        }
    }

    /// The entries of a run in the order they were written; an error naming the writer for a step or phase this
    /// appliancectl does not know.
    public func entries<P: ProcedureRules>(_ record: RunRecord<P>) throws -> [JournalEntry<P.Step>] {
        try entries(runId: record.id, kind: P.kind, of: P.Step.self)
    }

    /// The entries of run `runId` with steps of type `Step`.
    public func entries<Step: ProcedureStep>(
        runId: String,
        kind: RunKind,
        of type: Step.Type
    ) throws -> [JournalEntry<Step>] {
        let rows = try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM entry WHERE runId = ? ORDER BY sequence", arguments: [runId])
        }
        return try rows.map { row in
            let name: String = row["step"]
            let value: String? = row["stepValue"]
            let toolVersion: String? = row["toolVersion"]
            let writer = JournalFormat.writer(toolVersion, formatVersion: value == nil ? 1 : JournalFormat.version)
            let sequence: Int64 = row["sequence"]
            func unreadable(_ what: String) -> ProcedureError {
                ProcedureError(
                    .unreadableRun,
                    "entry \(sequence) of run \(runId) (\(kind)) holds \(what), which \(JournalFormat.toolVersion) "
                        + "does not know; it was written by \(writer): resume or abort the run with that version"
                )
            }
            // Format 1 wrote a step by its name alone: the JSON of a step without data is that name as a string.
            guard let step = try? Self.decode(Step.self, value ?? Self.json(name)) else {
                throw unreadable("the step \(value ?? name)")
            }
            let phaseName: String = row["phase"]
            guard let phase = JournalPhase(rawValue: phaseName) else {
                throw unreadable("the phase '\(phaseName)'")
            }
            let detailText: String = row["detail"]
            guard let detail = try? Self.decode(StepDetail.self, detailText) else {
                throw unreadable("the detail \(detailText)")
            }
            return JournalEntry(
                sequence: sequence,
                runId: row["runId"],
                step: step,
                phase: phase,
                detail: detail,
                at: row["at"],
                writtenBy: toolVersion
            )
        }
    }

    // MARK: Helpers

    private func write(_ body: (Database) throws -> Void) throws {
        do {
            try queue.write(body)
        } catch {
            throw ProcedureError(.journal, "cannot write the journal \(url.path) (\(error)); check disk space")
        }
    }

    private func read<T>(_ body: (Database) throws -> T) throws -> T {
        do {
            return try queue.read(body)
        } catch {
            throw ProcedureError(.journal, "cannot read the journal \(url.path) (\(error))")
        }
    }

    static func storedRun(_ row: Row) -> StoredRun {
        StoredRun(
            id: row["id"],
            kind: RunKind(rawValue: row["kind"]),
            playbook: row["playbook"],
            inventory: row["inventory"],
            createdAt: row["createdAt"],
            plan: row["plan"],
            settings: row["settings"],
            formatVersion: row["formatVersion"],
            toolVersion: row["toolVersion"]
        )
    }

    /// JSON with sorted keys, as every column of the journal holds it.
    public static func json(_ value: some Encodable) throws -> String {
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
