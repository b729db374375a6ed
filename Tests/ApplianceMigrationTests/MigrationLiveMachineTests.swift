import ApplianceInventory
import Foundation
import ProcedureEngine
import Testing

@testable import ApplianceMigration

/// The live method's plan and rules (issue 13, X5), without I/O.
@Suite struct MigrationLiveMachineTests {
    typealias M = MigrationMachineTests

    static var liveSettings: MigrationSettings {
        var settings = M.settings
        settings.method = .live
        settings.cutover = .sharedIP(siteAddress: "127.0.0.9:8443")
        settings.decommission = true
        return settings
    }

    static func machine(_ entries: [JournalEntry<MigrationStep>] = []) -> MigrationMachine {
        MigrationMachine(plan: liveSettings.plan, settings: liveSettings, entries: entries)
    }

    @Test func theLivePlanMovesTheDataBeforeTheFreeze() {
        #expect(
            Self.liveSettings.plan == [
                .preflight, .install, .backup, .certificate, .address, .package, .sync, .freeze, .finalSync, .verify,
                .promote, .cutover, .unlink, .decommission,
            ]
        )
        // Without a cutover the site stays on the old box: nothing promotes the new one.
        var noCutover = Self.liveSettings
        noCutover.cutover = .none
        #expect(!noCutover.plan.contains(.promote) && noCutover.plan.contains(.unlink))
        // A journal's plan, in whatever order it was stored, runs in the live order.
        #expect(MigrationProcedure.ordered(Self.liveSettings.plan.reversed()) == Self.liveSettings.plan)
        // The default, and journals written before `method` existed, are backup-restore.
        #expect(M.settings.plan == MigrationStep.allCases.filter { $0 != .cutover && $0 != .decommission })
        #expect(!M.settings.plan.contains(.sync))
    }

    @Test func aFreshLiveRunRunsEveryStepInOrderWithTheBackupBeforeTheFreeze() {
        var machine = Self.machine()
        var order: [MigrationStep] = []
        while case .perform(let step) = machine.next() {
            order.append(step)
            machine.apply(M.entry(step, .intent))
            machine.apply(M.entry(step, .done))
        }
        #expect(order == Self.liveSettings.plan)
        #expect(machine.next() == .finished)
    }

    @Test func nothingDestructiveRunsBeforeTheVerificationAndThePromotion() {
        let synced = Self.machine(
            M.done([.preflight, .install, .backup, .certificate, .address, .package, .sync, .freeze, .finalSync])
        )
        #expect(MigrationProcedure.refusal(for: .promote, in: synced) != nil)
        #expect(MigrationProcedure.refusal(for: .cutover, in: synced) != nil)
        #expect(MigrationProcedure.refusal(for: .decommission, in: synced) != nil)
        let early = Self.machine(M.done([.preflight, .install, .backup]))
        #expect(MigrationProcedure.refusal(for: .sync, in: early) != nil, "the site version is not installed yet")
        #expect(MigrationProcedure.refusal(for: .freeze, in: early) != nil, "no sync has caught up yet")
    }

    @Test func aLiftedFreezeRedoesTheSyncsButKeepsTheBackup() {
        let before: [MigrationStep] = [.preflight, .install, .backup, .certificate, .address, .package]
        let machine = Self.machine(
            M.done(before + [.sync, .freeze, .finalSync, .verify, .promote]) + [
                M.entry(.cutover, .intent), M.entry(.cutover, .failed, ["error": "the cutover hook exited"]),
                M.entry(.freeze, .reverted, ["error": "the cutover hook exited"]),
            ]
        )
        #expect(machine.next() == .perform(.sync))
        for step in [MigrationStep.sync, .freeze, .finalSync, .verify, .promote] {
            #expect(machine.status[step] == .pending, "\(step)")
        }
        for step in before { #expect(machine.isDone(step), "\(step)") }
        #expect(machine.status[.cutover] == .failed)
        #expect(machine.summary == .failed)
    }

    @Test func settingsWithoutAMethodReadAsBackupRestore() throws {
        let data = try JSONEncoder().encode(M.settings)
        var object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        object["method"] = nil
        let old = try JSONDecoder().decode(
            MigrationSettings.self,
            from: try JSONSerialization.data(withJSONObject: object)
        )
        #expect(!old.isLive && old.plan == M.settings.plan)
        object["method"] = "teleport"
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(MigrationSettings.self, from: try JSONSerialization.data(withJSONObject: object))
        }
    }
}
