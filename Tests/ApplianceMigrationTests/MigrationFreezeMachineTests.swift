import Foundation
import ProcedureEngine
import Testing

@testable import ApplianceMigration

/// The freeze rules of the state machine (issue 11), without I/O.
@Suite struct MigrationFreezeMachineTests {
    typealias M = MigrationMachineTests

    @Test func theBackupNeedsTheFreeze() {
        // A journal where the freeze never finished cannot move on to the backup.
        let machine = M.machine(
            M.full,
            M.done([.preflight, .install]) + [M.entry(.freeze, .intent), M.entry(.freeze, .failed)]
        )
        #expect(machine.next() == .reconcile(.freeze))
        #expect(MigrationProcedure.refusal(for: .backup, in: machine) != nil)
    }

    @Test func aLiftedFreezeMakesTheSiteCopyingStepsRunAgain() {
        let copied: [MigrationStep] = [.preflight, .install, .freeze, .backup, .certificate, .address, .package]
        let machine = M.machine(
            M.full,
            M.done(copied + [.restore, .transfer]) + [
                M.entry(.verify, .intent), M.entry(.verify, .failed, ["error": "history rows 10 ≠ 9"]),
                M.entry(.freeze, .reverted, ["error": "history rows 10 ≠ 9"]),
            ]
        )
        // Freeze, backup, restore, transfer and verify again; certificate, address and package stay done.
        #expect(machine.next() == .perform(.freeze))
        for step in [MigrationStep.freeze, .backup, .restore, .transfer, .verify] {
            #expect(machine.status[step] == .pending, "\(step)")
        }
        for step in [MigrationStep.preflight, .install, .certificate, .address, .package] {
            #expect(machine.isDone(step), "\(step)")
        }
        #expect(machine.summary == .failed)
        #expect(machine.lastError[.freeze] == "history rows 10 ≠ 9")
        // Resuming clears the failure.
        var resumed = machine
        resumed.apply(M.entry(.freeze, .intent))
        #expect(resumed.summary == .interrupted)
    }

    @Test func anAbortedRunRefusesEverything() {
        let machine = M.machine(
            M.full,
            M.done([.preflight, .install, .freeze]) + [M.entry(.backup, .aborted)]
        )
        guard case .refuse(_, let reason) = machine.next() else {
            Issue.record("an aborted run went on: \(machine.next())")
            return
        }
        #expect(reason.contains("aborted"))
        #expect(machine.summary == .aborted)
    }
}
