import Foundation
import Testing

@testable import ApplianceMigration
@testable import ProcedureEngine

/// The decommission as its own procedure: its rules without I/O, and how run failures are told to the operator.
@Suite struct DecommissionProcedureTests {
    typealias Machine = ProcedureMachine<DecommissionProcedure>

    static let box = BoxReference(name: "old", address: "127.0.0.1:1", pin: "sha256/x", isVirtual: false)

    static func settings(evidence: String?) -> DecommissionSettings {
        DecommissionSettings(appliance: box, passwordSecret: "OLD_PW", evidence: evidence)
    }

    @Test func itIdentifiesTheApplianceBeforeTheOnlyDestructiveStep() {
        let settings = Self.settings(evidence: "a verified migration (run r)")
        #expect(DecommissionProcedure.plan(for: settings) == [.identify, .decommission])
        #expect(DecommissionStep.allCases.filter(DecommissionProcedure.isDestructive) == [.decommission])
        #expect(DecommissionProcedure.appliances(settings) == ["old"])
        var machine = Machine(plan: DecommissionProcedure.plan(for: settings), settings: settings)
        #expect(machine.next() == .perform(.identify))
        #expect(
            DecommissionProcedure.refusal(for: .decommission, in: machine) == "the appliance has not been identified"
        )
        machine.apply(JournalEntry(runId: "r", step: .identify, phase: .done))
        #expect(machine.next() == .perform(.decommission))
    }

    @Test func withoutEvidenceNothingIsReset() {
        let settings = Self.settings(evidence: nil)
        let machine = Machine(
            plan: DecommissionProcedure.plan(for: settings),
            settings: settings,
            entries: [JournalEntry(runId: "r", step: .identify, phase: .done)]
        )
        #expect(
            machine.next()
                == .refuse(.decommission, reason: "no verified migration or verified backup of this appliance exists")
        )
    }

    @Test func settingsOfThisFormatReadBackAsWritten() throws {
        let settings = Self.settings(evidence: "none; forced with --force --confirm-name old")
        let json = Data(try Journal.json(settings).utf8)
        #expect(try DecommissionProcedure.settings(from: json, formatVersion: JournalFormat.version) == settings)
    }

    @Test func refusalsAndDeclinesExitAsRefusalsAndSayThemselvesWhatToDo() {
        let refused = ProcedureError(.refused, "decommission refused: no evidence")
        #expect(RunSession.isRefusal(refused))
        #expect(RunSession.advice(refused, runId: "r") == "decommission refused: no evidence")
        #expect(RunSession.isRefusal(MigrationError(.preflight, "pre-flight failed")))
        let failed = MigrationError(.cutover, "the hook exited with status 7")
        #expect(!RunSession.isRefusal(failed))
        #expect(RunSession.advice(failed, runId: "r").contains("`appliancectl resume r`"))
        #expect(RunSession.advice(failed, runId: "r").contains("`appliancectl abort r`"))
        // A failure whose clean-up also failed keeps the kind of the failure it wraps.
        let wrapped = ProcedureError(.failed, "x\nAlso: run maintenance off", cause: refused)
        #expect(RunSession.isRefusal(wrapped))
    }
}
