import ApplianceInventory
import Foundation
import Testing

@testable import ApplianceMigration
@testable import ProcedureEngine

/// The transition logic alone: journal entries in, decisions out, no I/O.
@Suite struct MigrationMachineTests {
    static let full = MigrationStep.allCases

    static func entry(_ step: MigrationStep, _ phase: JournalPhase, _ detail: [String: String] = [:])
        -> JournalEntry<MigrationStep>
    {
        JournalEntry(runId: "r", step: step, phase: phase, detail: detail)
    }

    static func done(_ steps: [MigrationStep]) -> [JournalEntry<MigrationStep>] {
        steps.flatMap { [entry($0, .intent), entry($0, .done)] }
    }

    static let settings = MigrationSettings(
        old: BoxReference(name: "old", address: "127.0.0.1:1", pin: nil, isVirtual: false),
        new: BoxReference(name: "new", address: nil, pin: nil, isVirtual: true),
        oldPasswordSecret: "A",
        newPasswordSecret: "B",
        backupPasswordSecret: "C"
    )

    /// A migration's machine over `plan`, fed `entries`.
    static func machine(_ plan: [MigrationStep], _ entries: [JournalEntry<MigrationStep>] = []) -> MigrationMachine {
        MigrationMachine(plan: plan, settings: settings, entries: entries)
    }

    @Test func aFreshRunBeginsWithPreflightAndFinishesInOrder() {
        var machine = Self.machine(Self.full)
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
        let machine = Self.machine(
            Self.full,
            Self.done([.preflight, .install, .freeze, .backup]) + [Self.entry(.certificate, .intent)]
        )
        #expect(machine.next() == .reconcile(.certificate))
        #expect(machine.summary == .interrupted)
    }

    @Test func aFailedStepIsReconciledOnResumeAndKeepsItsError() {
        let machine = Self.machine(
            Self.full,
            Self.done([.preflight]) + [
                Self.entry(.install, .intent), Self.entry(.install, .failed, ["error": "no answer"]),
            ]
        )
        #expect(machine.next() == .reconcile(.install))
        #expect(machine.lastError[.install] == "no answer")
        #expect(machine.summary == .failed)
    }

    @Test func aLateIntentDoesNotUndoADoneStep() {
        var machine = Self.machine(
            Self.full,
            Self.done([.preflight])
        )
        machine.apply(Self.entry(.preflight, .intent, ["oldReset": "yes"]))
        #expect(machine.isDone(.preflight))
        #expect(machine.next() == .perform(.install))
    }

    @Test func decommissionIsRefusedUntilVerifyIsDone() {
        // A journal that (wrongly) reached decommission with verify failed must not reset the old box.
        let entries =
            Self.done([.preflight, .install, .freeze, .backup, .certificate, .address, .package, .restore, .transfer])
            + [Self.entry(.verify, .intent), Self.entry(.verify, .failed, ["error": "digest differs"])]
        let machine = Self.machine(
            Self.full,
            entries
        )
        #expect(machine.next() == .reconcile(.verify))
        var skipped = Self.machine(
            [.preflight, .backup, .cutover, .verify, .decommission],
            Self.done([.preflight, .backup])
        )
        #expect(skipped.next() == .perform(.verify))
        // Even if verify is bypassed by a hand-edited plan order, the guard holds:
        skipped = Self.machine([.decommission, .verify])
        #expect(skipped.plan == [.verify, .decommission])
        #expect(MigrationProcedure.refusal(for: .decommission, in: skipped) != nil)
        #expect(MigrationProcedure.refusal(for: .cutover, in: skipped) != nil)
    }

    @Test func decommissionNeedsTheBackupProven() {
        var machine = Self.machine([.backup, .verify, .decommission])
        machine.apply(Self.entry(.verify, .done))
        #expect(
            MigrationProcedure.refusal(for: .decommission, in: machine) == "the backup has not been proven restorable"
        )
        machine.apply(Self.entry(.backup, .done))
        #expect(MigrationProcedure.refusal(for: .decommission, in: machine) == nil)
        #expect(machine.next() == .perform(.decommission))
    }

    @Test func restoreNeedsTheBackupProven() {
        let machine = Self.machine([.backup, .restore])
        #expect(MigrationProcedure.refusal(for: .restore, in: machine) != nil)
    }

    @Test func aDecommissionOnlyRunNeedsEvidenceFromAnEarlierRun() {
        let box = BoxReference(name: "old", address: "127.0.0.1:1", pin: "sha256/x", isVirtual: false)
        let without = ProcedureMachine<DecommissionProcedure>(
            plan: [.decommission],
            settings: DecommissionSettings(appliance: box, passwordSecret: "A", evidence: nil)
        )
        #expect(
            without.next()
                == .refuse(.decommission, reason: "no verified migration or verified backup of this appliance exists")
        )
        #expect(without.summary == .refused)
        let with = ProcedureMachine<DecommissionProcedure>(
            plan: [.decommission],
            settings: DecommissionSettings(appliance: box, passwordSecret: "A", evidence: "a verified backup (run r)")
        )
        #expect(with.next() == .perform(.decommission))
    }

    @Test func entriesOfStepsOutsideThePlanAreIgnored() {
        let machine = Self.machine([.preflight, .install], Self.done([.cutover]))
        #expect(machine.next() == .perform(.preflight))
    }

    @Test func settingsChooseThePlan() {
        var settings = Self.settings
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
            MigrationProcedure.self,
            playbook: "p.yml",
            inventory: "i.yml",
            settings: Self.settings()
        )
        try journal.append(JournalEntry(runId: run.id, step: MigrationStep.preflight, phase: .intent))
        try journal.append(
            JournalEntry(runId: run.id, step: MigrationStep.preflight, phase: .done, detail: ["oldApplianceId": "A-1"])
        )
        try journal.append(JournalEntry(runId: run.id, step: MigrationStep.install, phase: .intent))

        let reopened = try Journal(url: url)
        let loaded = try reopened.run(run.id, as: MigrationProcedure.self)
        #expect(loaded.settings == Self.settings())
        #expect(loaded.plan == Self.settings().plan)
        let entries = try reopened.entries(loaded)
        #expect(entries.map(\.phase) == [.intent, .done, .intent])
        #expect(entries[1].detail == ["oldApplianceId": "A-1"])
        #expect(entries.map(\.sequence) == entries.map(\.sequence).sorted())
        let machine = MigrationMachine(record: loaded, entries: entries)
        #expect(machine.next() == .reconcile(.install))
        #expect(try reopened.storedRuns().map(\.id) == [run.id])
        #expect(throws: ProcedureError.self) { try reopened.storedRun("nope") }
    }

    @Test func evidenceComesOnlyFromDoneVerifyOrBackupOfThatAppliance() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("journal-\(UUID())")
        defer { try? FileManager.default.removeItem(at: directory) }
        let journal = try Journal(url: directory.appendingPathComponent("journal.sqlite"))
        let run = try journal.createRun(
            MigrationProcedure.self,
            playbook: "p.yml",
            inventory: "i.yml",
            settings: Self.settings()
        )
        try journal.append(
            JournalEntry(runId: run.id, step: MigrationStep.verify, phase: .failed, detail: ["oldApplianceId": "A-1"])
        )
        #expect(try journal.verifiedEvidence(applianceId: "A-1") == nil)
        try journal.append(
            JournalEntry(runId: run.id, step: MigrationStep.backup, phase: .done, detail: ["oldApplianceId": "A-1"])
        )
        #expect(try journal.verifiedEvidence(applianceId: "A-1")?.contains("verified backup") == true)
        try journal.append(
            JournalEntry(runId: run.id, step: MigrationStep.verify, phase: .done, detail: ["oldApplianceId": "A-1"])
        )
        #expect(try journal.verifiedEvidence(applianceId: "A-1")?.contains("verified migration") == true)
        #expect(try journal.verifiedEvidence(applianceId: "B-2") == nil)
    }
}
