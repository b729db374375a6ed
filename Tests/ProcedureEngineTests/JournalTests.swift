import Foundation
import GRDB
import Testing

@testable import ProcedureEngine

/// The journal on a real SQLite file: runs typed by kind, steps that carry data, and values this version does
/// not know, which are errors naming the version that wrote them.
@Suite struct JournalTests {
    static func temporaryJournal() throws -> (Journal, URL) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("engine-journal-\(UUID())")
        let url = directory.appendingPathComponent("journal.sqlite")
        return (try Journal(url: url), directory)
    }

    @Test func stepsWithDataSurviveReopeningUnderTheirName() throws {
        let (journal, directory) = try Self.temporaryJournal()
        defer { try? FileManager.default.removeItem(at: directory) }
        let record = try journal.createRun(
            FakeProcedure.self,
            playbook: "p.yml",
            inventory: "i.yml",
            settings: .init(boxes: ["a", "b"])
        )
        #expect(record.formatVersion == JournalFormat.version)
        try journal.append(JournalEntry(runId: record.id, step: FakeProcedure.Step.upgrade(box: "b"), phase: .intent))
        let reopened = try Journal(url: journal.url)
        let loaded = try reopened.run(record.id, as: FakeProcedure.self)
        #expect(loaded.id == record.id && loaded.settings == record.settings)
        #expect(loaded.formatVersion == JournalFormat.version && loaded.writtenBy == JournalFormat.toolVersion)
        #expect(loaded.plan == [.check, .upgrade(box: "a"), .upgrade(box: "b"), .retire])
        let entries = try reopened.entries(loaded)
        #expect(entries.map(\.step) == [.upgrade(box: "b")])
        #expect(entries.first?.writtenBy == JournalFormat.toolVersion)
        let names = try reopened.queue.read { db in try String.fetchAll(db, sql: "SELECT step FROM entry") }
        #expect(names == ["upgrade-b"], "the step column keeps the name, for people and scripts")
    }

    /// A run of a kind this appliancectl does not know, as a newer one would write it.
    static func insertForeignRun(_ journal: Journal, kind: String, plan: String = "[]") throws {
        try journal.queue.write { db in
            try db.execute(
                sql: """
                    INSERT INTO run (id, kind, playbook, inventory, createdAt, plan, settings, formatVersion,
                    toolVersion) VALUES ('r-1', ?, 'p.yml', 'i.yml', ?, ?, '{"boxes":[]}', 3,
                    'appliancectl 0.99 (journal format 3)')
                    """,
                arguments: [kind, Date(), plan]
            )
        }
    }

    @Test func anUnknownKindIsAnErrorNamingTheWriter() throws {
        let (journal, directory) = try Self.temporaryJournal()
        defer { try? FileManager.default.removeItem(at: directory) }
        try Self.insertForeignRun(journal, kind: "upgrade-failover")
        let stored = try journal.storedRun("r-1")
        let error = try #require(throws: ProcedureError.self) { try stored.typed(as: FakeProcedure.self) }
        #expect(error.code == .unreadableRun)
        #expect(error.message.contains("appliancectl 0.99"), "\(error.message)")
        let lines = try RunListing.lines(journal: journal, procedures: [FakeProcedure.self])
        #expect(lines.count == 1)
        #expect(lines.first?.state == nil, "no state is guessed for a run that cannot be read")
        #expect(lines.first?.error?.contains("'upgrade-failover'") == true, "\(lines)")
        #expect(lines.first?.error?.contains("appliancectl 0.99") == true, "\(lines)")
    }

    @Test func anUnknownStepInThePlanIsAnErrorNamingTheWriter() throws {
        let (journal, directory) = try Self.temporaryJournal()
        defer { try? FileManager.default.removeItem(at: directory) }
        try Self.insertForeignRun(journal, kind: "fake-upgrade", plan: #"["check","teleport"]"#)
        let error = try #require(throws: ProcedureError.self) {
            try journal.run("r-1", as: FakeProcedure.self)
        }
        #expect(error.code == .unreadableRun)
        #expect(error.message.contains("teleport") && error.message.contains("appliancectl 0.99"), "\(error.message)")
    }

    @Test(arguments: [("teleport", "intent", "teleport"), ("check", "paused", "'paused'")])
    func anUnknownStepOrPhaseOfAnEntryIsAnErrorNamingTheWriter(step: String, phase: String, named: String) throws {
        let (journal, directory) = try Self.temporaryJournal()
        defer { try? FileManager.default.removeItem(at: directory) }
        let record = try journal.createRun(
            FakeProcedure.self,
            playbook: "p.yml",
            inventory: "i.yml",
            settings: .init(boxes: ["a"])
        )
        try journal.queue.write { db in
            try db.execute(
                sql: """
                    INSERT INTO entry (runId, step, stepValue, phase, detail, at, toolVersion)
                    VALUES (?, ?, ?, ?, '{}', ?, 'appliancectl 0.99 (journal format 3)')
                    """,
                arguments: [record.id, step, #"{"\#(step)":{}}"#, phase, Date()]
            )
        }
        let error = try #require(throws: ProcedureError.self) { try journal.entries(record) }
        #expect(error.code == .unreadableRun)
        #expect(error.message.contains(named), "\(error.message)")
        #expect(error.message.contains("appliancectl 0.99"), "\(error.message)")
    }
}
