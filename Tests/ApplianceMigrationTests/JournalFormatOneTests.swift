import ApplianceInventory
import Foundation
import GRDB
import Testing

@testable import ApplianceMigration
@testable import ProcedureEngine

/// A journal written by appliancectl before the procedure engine (journal format 1) still resumes: its
/// migrations and its decommissions (then migrations with old == new) are read as runs of today's procedures.
@Suite struct JournalFormatOneTests {
    /// A format-1 journal as that appliancectl's GRDB migrator "v1" made it: a migration interrupted while
    /// restoring, and a decommission that had begun.
    static let fixture = """
        CREATE TABLE grdb_migrations (identifier TEXT NOT NULL PRIMARY KEY);
        INSERT INTO grdb_migrations VALUES ('v1');
        CREATE TABLE "run" ("id" TEXT PRIMARY KEY NOT NULL, "kind" TEXT NOT NULL, "playbook" TEXT NOT NULL,
          "inventory" TEXT NOT NULL, "createdAt" DATETIME NOT NULL, "plan" TEXT NOT NULL, "settings" TEXT NOT NULL);
        CREATE TABLE "entry" ("sequence" INTEGER PRIMARY KEY AUTOINCREMENT,
          "runId" TEXT NOT NULL REFERENCES "run"("id") ON DELETE CASCADE, "step" TEXT NOT NULL,
          "phase" TEXT NOT NULL, "detail" TEXT NOT NULL, "at" DATETIME NOT NULL);
        INSERT INTO run VALUES ('20261130-100000-migrate-1a2b', 'migrate', '/work/migrate.yml', '/work/inventory.yml',
          '2026-11-30 10:00:00.000',
          '["preflight","install","freeze","backup","certificate","address","package","restore","transfer","verify","cutover","decommission"]',
          '{"backupPasswordSecret":"BACKUP_PW","cutover":{"sharedIP":{"siteAddress":"127.0.0.12:8443"}},"decommission":true,"hostnameFromOld":true,"includeHistory":true,"new":{"address":"127.0.0.13:8443","isVirtual":false,"name":"new-box","pin":"sha256/bmV3"},"newPasswordSecret":"NEW_PW","old":{"address":"127.0.0.11:8443","isVirtual":false,"name":"old-box","pin":"sha256/b2xk"},"oldPasswordSecret":"OLD_PW"}');
        INSERT INTO entry (runId, step, phase, detail, at) VALUES
          ('20261130-100000-migrate-1a2b', 'preflight', 'intent', '{}', '2026-11-30 10:00:01.000'),
          ('20261130-100000-migrate-1a2b', 'preflight', 'done', '{"oldApplianceId":"A-1","oldHostname":"old"}', '2026-11-30 10:00:02.000'),
          ('20261130-100000-migrate-1a2b', 'install', 'intent', '{}', '2026-11-30 10:00:03.000'),
          ('20261130-100000-migrate-1a2b', 'install', 'done', '{"newApplianceId":"B-2"}', '2026-11-30 10:00:04.000'),
          ('20261130-100000-migrate-1a2b', 'freeze', 'intent', '{}', '2026-11-30 10:00:05.000'),
          ('20261130-100000-migrate-1a2b', 'freeze', 'done', '{"frozenAt":"2026-11-30T10:00:06Z"}', '2026-11-30 10:00:06.000'),
          ('20261130-100000-migrate-1a2b', 'backup', 'intent', '{}', '2026-11-30 10:00:07.000'),
          ('20261130-100000-migrate-1a2b', 'backup', 'done', '{"oldApplianceId":"A-1"}', '2026-11-30 10:00:08.000'),
          ('20261130-100000-migrate-1a2b', 'certificate', 'intent', '{}', '2026-11-30 10:00:09.000'),
          ('20261130-100000-migrate-1a2b', 'certificate', 'done', '{"certificate":"factory"}', '2026-11-30 10:00:10.000'),
          ('20261130-100000-migrate-1a2b', 'address', 'intent', '{}', '2026-11-30 10:00:11.000'),
          ('20261130-100000-migrate-1a2b', 'address', 'done', '{}', '2026-11-30 10:00:12.000'),
          ('20261130-100000-migrate-1a2b', 'package', 'intent', '{}', '2026-11-30 10:00:13.000'),
          ('20261130-100000-migrate-1a2b', 'package', 'done', '{"siteVersion":"24.2.0"}', '2026-11-30 10:00:14.000'),
          ('20261130-100000-migrate-1a2b', 'restore', 'intent', '{}', '2026-11-30 10:00:15.000');
        INSERT INTO run VALUES ('20261130-110000-decommission-3c4d', 'decommission', '/work/decommission.yml',
          '/work/inventory.yml', '2026-11-30 11:00:00.000', '["decommission"]',
          '{"backupPasswordSecret":"-","cutover":{"none":{}},"decommission":true,"hostnameFromOld":true,"includeHistory":true,"new":{"address":"127.0.0.11:8443","isVirtual":false,"name":"old-box","pin":"sha256/b2xk"},"newPasswordSecret":"OLD_PW","old":{"address":"127.0.0.11:8443","isVirtual":false,"name":"old-box","pin":"sha256/b2xk"},"oldPasswordSecret":"OLD_PW"}');
        INSERT INTO entry (runId, step, phase, detail, at) VALUES
          ('20261130-110000-decommission-3c4d', 'decommission', 'intent', '{}', '2026-11-30 11:00:01.000'),
          ('20261130-110000-decommission-3c4d', 'decommission', 'intent', '{"oldReset":"yes"}', '2026-11-30 11:00:02.000');
        """

    /// The fixture written to a fresh file, as a format-1 appliancectl left it.
    static func formatOneJournal() throws -> (url: URL, directory: URL) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("journal-v1-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let url = directory.appendingPathComponent("journal.sqlite")
        try DatabaseQueue(path: url.path).write { db in try db.execute(sql: fixture) }
        return (url, directory)
    }

    @Test func aFormatOneMigrationResumesWhereItStopped() throws {
        let (url, directory) = try Self.formatOneJournal()
        defer { try? FileManager.default.removeItem(at: directory) }
        let journal = try Journal(url: url)
        let stored = try journal.storedRun("20261130-100000-migrate-1a2b")
        #expect(stored.formatVersion == 1)
        #expect(stored.writer.contains("journal format 1"), "\(stored.writer)")
        let record = try stored.typed(as: MigrationProcedure.self)
        #expect(record.plan == MigrationStep.allCases)
        #expect(record.settings.cutover == .sharedIP(siteAddress: "127.0.0.12:8443"))
        #expect(record.settings.old.name == "old-box" && record.settings.new.name == "new-box")
        let entries = try journal.entries(record)
        #expect(entries.count == 15)
        let machine = MigrationMachine(record: record, entries: entries)
        #expect(machine.next() == .reconcile(.restore))
        #expect(machine.summary == .interrupted)
        #expect(MigrationMachine.facts(entries)["newApplianceId"] == "B-2")
        #expect(try journal.verifiedEvidence(applianceId: "A-1") == "a verified backup (run \(record.id))")
        // Resumed by this version: its entries are format 2 and the run reads on as before.
        try journal.append(JournalEntry(runId: record.id, step: MigrationStep.restore, phase: .done))
        let resumed = MigrationMachine(record: record, entries: try Journal(url: url).entries(record))
        #expect(resumed.next() == .perform(.transfer))
    }

    @Test func aFormatOneDecommissionIsReadAsADecommission() throws {
        let (url, directory) = try Self.formatOneJournal()
        defer { try? FileManager.default.removeItem(at: directory) }
        let journal = try Journal(url: url)
        let record = try journal.run("20261130-110000-decommission-3c4d", as: DecommissionProcedure.self)
        #expect(record.plan == [.decommission])
        #expect(record.settings.appliance.name == "old-box")
        #expect(record.settings.passwordSecret == "OLD_PW")
        #expect(record.settings.evidence != nil, "a format-1 decommission began only once its evidence was checked")
        let entries = try journal.entries(record)
        let machine = ProcedureMachine<DecommissionProcedure>(record: record, entries: entries)
        #expect(machine.next() == .reconcile(.decommission))
        #expect(ProcedureMachine<DecommissionProcedure>.facts(entries)["oldReset"] == "yes")
        let lines = try RunListing.lines(journal: journal, procedures: RunSession.procedures)
        #expect(lines.map(\.kind) == ["decommission", "migrate"])
        #expect(lines.map(\.state) == [.interrupted, .interrupted])
        #expect(lines.last?.new == "new-box")
    }
}
