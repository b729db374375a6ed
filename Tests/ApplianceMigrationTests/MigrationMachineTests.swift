import ApplianceInventory
import Foundation
import Testing

@testable import ApplianceMigration

/// The transition logic alone: journal entries in, decisions out, no I/O.
@Suite struct MigrationMachineTests {
    static let full = MigrationStep.allCases

    static func entry(_ step: MigrationStep, _ phase: JournalEntry.Phase, _ detail: [String: String] = [:])
        -> JournalEntry
    {
        JournalEntry(runId: "r", step: step, phase: phase, detail: detail)
    }

    static func done(_ steps: [MigrationStep]) -> [JournalEntry] {
        steps.flatMap { [entry($0, .intent), entry($0, .done)] }
    }

    @Test func aFreshRunBeginsWithPreflightAndFinishesInOrder() {
        var machine = MigrationMachine(plan: Self.full)
        #expect(machine.next() == .perform(.preflight))
        #expect(machine.summary == .planned)
        var order: [MigrationStep] = []
        while case .perform(let step) = machine.next() {
            order.append(step)
            machine.apply(Self.entry(step, .intent))
            machine.apply(Self.entry(step, .done))
        }
        #expect(order == Self.full)
        #expect(machine.next() == .finished)
        #expect(machine.summary == .finished)
    }

    @Test func anIntentWithoutOutcomeIsReconciledNotRedoneBlindly() {
        let machine = MigrationMachine(
            plan: Self.full,
            entries: Self.done([.preflight, .install, .freeze, .backup]) + [Self.entry(.certificate, .intent)]
        )
        #expect(machine.next() == .reconcile(.certificate))
        #expect(machine.summary == .interrupted)
    }

    @Test func aFailedStepIsReconciledOnResumeAndKeepsItsError() {
        let machine = MigrationMachine(
            plan: Self.full,
            entries: Self.done([.preflight]) + [
                Self.entry(.install, .intent), Self.entry(.install, .failed, ["error": "no answer"]),
            ]
        )
        #expect(machine.next() == .reconcile(.install))
        #expect(machine.lastError[.install] == "no answer")
        #expect(machine.summary == .failed)
    }

    @Test func aLateIntentDoesNotUndoADoneStep() {
        var machine = MigrationMachine(plan: Self.full, entries: Self.done([.preflight]))
        machine.apply(Self.entry(.preflight, .intent, ["oldReset": "yes"]))
        #expect(machine.isDone(.preflight))
        #expect(machine.next() == .perform(.install))
    }

    @Test func decommissionIsRefusedUntilVerifyIsDone() {
        // A journal that (wrongly) reached decommission with verify failed must not reset the old box.
        let entries =
            Self.done([.preflight, .install, .freeze, .backup, .certificate, .address, .package, .restore, .transfer])
            + [Self.entry(.verify, .intent), Self.entry(.verify, .failed, ["error": "digest differs"])]
        let machine = MigrationMachine(plan: Self.full, entries: entries)
        #expect(machine.next() == .reconcile(.verify))
        var skipped = MigrationMachine(
            plan: [.preflight, .backup, .cutover, .verify, .decommission],
            entries: Self.done([.preflight, .backup])
        )
        #expect(skipped.next() == .perform(.verify))
        // Even if verify is bypassed by a hand-edited plan order, the guard holds:
        skipped = MigrationMachine(plan: [.decommission, .verify], entries: [])
        #expect(skipped.plan == [.verify, .decommission])
        #expect(skipped.refusal(for: .decommission) != nil)
        #expect(skipped.refusal(for: .cutover) != nil)
    }

    @Test func decommissionNeedsTheBackupProven() {
        var machine = MigrationMachine(plan: [.backup, .verify, .decommission])
        machine.apply(Self.entry(.verify, .done))
        #expect(machine.refusal(for: .decommission) == "the backup has not been proven restorable")
        machine.apply(Self.entry(.backup, .done))
        #expect(machine.refusal(for: .decommission) == nil)
        #expect(machine.next() == .perform(.decommission))
    }

    @Test func restoreNeedsTheBackupProven() {
        let machine = MigrationMachine(plan: [.backup, .restore])
        #expect(machine.refusal(for: .restore) != nil)
    }

    @Test func aDecommissionOnlyRunNeedsEvidenceFromAnEarlierRun() {
        let without = MigrationMachine(plan: [.decommission])
        #expect(
            without.next()
                == .refuse(.decommission, reason: "no verified migration or verified backup of this appliance exists")
        )
        #expect(without.summary == .refused)
        let with = MigrationMachine(plan: [.decommission], verifiedElsewhere: true)
        #expect(with.next() == .perform(.decommission))
    }

    @Test func entriesOfStepsOutsideThePlanAreIgnored() {
        let machine = MigrationMachine(plan: [.preflight, .install], entries: Self.done([.cutover]))
        #expect(machine.next() == .perform(.preflight))
    }

    @Test func settingsChooseThePlan() {
        var settings = MigrationSettings(
            old: BoxReference(name: "old", address: "127.0.0.1:1", pin: nil, isVirtual: false),
            new: BoxReference(name: "new", address: nil, pin: nil, isVirtual: true),
            oldPasswordSecret: "A",
            newPasswordSecret: "B",
            backupPasswordSecret: "C"
        )
        #expect(!settings.plan.contains(.cutover) && !settings.plan.contains(.decommission))
        settings.cutover = .sharedIP(siteAddress: "127.0.0.12:8443")
        settings.decommission = true
        #expect(settings.plan == MigrationStep.allCases)
        #expect(MigrationStep.allCases.filter(\.isDestructive) == [.cutover, .decommission])
    }
}

/// The journal on a real SQLite file: runs, entries in order, evidence for decommission.
@Suite struct JournalTests {
    static func settings() -> MigrationSettings {
        MigrationSettings(
            old: BoxReference(name: "old-box", address: "127.0.0.11:8443", pin: "sha256/x", isVirtual: false),
            new: BoxReference(name: "new-vm", address: nil, pin: nil, isVirtual: true),
            oldPasswordSecret: "OLD",
            newPasswordSecret: "NEW",
            backupPasswordSecret: "BACKUP",
            cutover: .hook(siteAddress: "127.0.0.12:8443", command: "true")
        )
    }

    @Test func runsAndEntriesSurviveReopening() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("journal-\(UUID())")
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("journal.sqlite")
        let journal = try Journal(url: url)
        let run = try journal.createRun(
            kind: "migrate",
            playbook: "p.yml",
            inventory: "i.yml",
            plan: Self.settings().plan,
            settings: Self.settings()
        )
        try journal.append(JournalEntry(runId: run.id, step: .preflight, phase: .intent))
        try journal.append(
            JournalEntry(runId: run.id, step: .preflight, phase: .done, detail: ["oldApplianceId": "A-1"])
        )
        try journal.append(JournalEntry(runId: run.id, step: .install, phase: .intent))

        let reopened = try Journal(url: url)
        let loaded = try reopened.run(run.id)
        #expect(loaded.settings == Self.settings())
        #expect(loaded.plan == Self.settings().plan)
        let entries = try reopened.entries(run.id)
        #expect(entries.map(\.phase) == [.intent, .done, .intent])
        #expect(entries[1].detail == ["oldApplianceId": "A-1"])
        #expect(entries.map(\.sequence) == entries.map(\.sequence).sorted())
        let machine = MigrationMachine(plan: loaded.plan, entries: entries)
        #expect(machine.next() == .reconcile(.install))
        #expect(try reopened.runs().map(\.id) == [run.id])
        #expect(throws: MigrationError.self) { try reopened.run("nope") }
    }

    @Test func evidenceComesOnlyFromDoneVerifyOrBackupOfThatAppliance() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("journal-\(UUID())")
        defer { try? FileManager.default.removeItem(at: directory) }
        let journal = try Journal(url: directory.appendingPathComponent("journal.sqlite"))
        let run = try journal.createRun(
            kind: "migrate",
            playbook: "p.yml",
            inventory: "i.yml",
            plan: Self.settings().plan,
            settings: Self.settings()
        )
        try journal.append(
            JournalEntry(runId: run.id, step: .verify, phase: .failed, detail: ["oldApplianceId": "A-1"])
        )
        #expect(try journal.verifiedEvidence(applianceId: "A-1") == nil)
        try journal.append(
            JournalEntry(runId: run.id, step: .backup, phase: .done, detail: ["oldApplianceId": "A-1"])
        )
        #expect(try journal.verifiedEvidence(applianceId: "A-1")?.contains("verified backup") == true)
        try journal.append(
            JournalEntry(runId: run.id, step: .verify, phase: .done, detail: ["oldApplianceId": "A-1"])
        )
        #expect(try journal.verifiedEvidence(applianceId: "A-1")?.contains("verified migration") == true)
        #expect(try journal.verifiedEvidence(applianceId: "B-2") == nil)
    }
}
