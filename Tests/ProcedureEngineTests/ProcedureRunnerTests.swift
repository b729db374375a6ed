import Foundation
import Testing

@testable import ProcedureEngine

/// The runner with a scripted procedure: what it journals, when it performs or reconciles, asks, recovers.
@Suite struct ProcedureRunnerTests {
    typealias Step = FakeProcedure.Step

    /// A run of the fake procedure in a fresh journal; `confirm` answers the destructive step's question.
    static func runner(
        _ procedure: FakeProcedure,
        confirm: Bool = true,
        prepare: (Journal, RunRecord<FakeProcedure>) throws -> Void = { _, _ in }
    ) throws -> (ProcedureRunner<FakeProcedure>, URL) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("engine-runner-\(UUID())")
        let journal = try Journal(url: directory.appendingPathComponent("journal.sqlite"))
        let record = try journal.createRun(
            FakeProcedure.self,
            playbook: "p.yml",
            inventory: "i.yml",
            settings: .init(boxes: ["a", "b"])
        )
        try prepare(journal, record)
        let environment = RunEnvironment(
            runDirectory: directory.appendingPathComponent("run"),
            confirm: { _ in confirm },
            events: { _ in },
            crashPoint: nil
        )
        let runner = try ProcedureRunner(
            record: record,
            journal: journal,
            procedure: procedure,
            environment: environment
        )
        return (runner, directory)
    }

    static func phases(_ runner: ProcedureRunner<FakeProcedure>) async throws -> [String] {
        try runner.journal.entries(runner.record).map { "\($0.step.name):\($0.phase.rawValue)" }
    }

    @Test func aFreshRunPerformsEveryStepBetweenIntentAndOutcome() async throws {
        let procedure = FakeProcedure()
        let (runner, directory) = try Self.runner(procedure)
        defer { try? FileManager.default.removeItem(at: directory) }
        let (report, failure) = try await runner.execute()
        #expect(failure == nil)
        #expect(await procedure.performed == [.check, .upgrade(box: "a"), .upgrade(box: "b"), .retire])
        #expect(await procedure.reconciled.isEmpty)
        #expect(
            try await Self.phases(runner) == [
                "check:intent", "check:done", "upgrade-a:intent", "upgrade-a:done", "upgrade-b:intent",
                "upgrade-b:done", "retire:intent", "retire:done",
            ]
        )
        #expect(report.state == .finished)
        #expect(report.steps.map(\.step) == ["check", "upgrade-a", "upgrade-b", "retire"])
        #expect(report.difference == ["0 steps performed → 4 steps performed"])
        let written = directory.appendingPathComponent("run/report.json")
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: written)) as? [String: Any]
        #expect(json?["state"] as? String == "finished")
    }

    @Test func aResumedStepIsReconciledAndFinishedFromWhatTheBoxesShow() async throws {
        let procedure = FakeProcedure()
        await procedure.script(reconcile: [.upgrade(box: "a"): .finished(["seen": "upgraded"])])
        let (runner, directory) = try Self.runner(procedure) { journal, record in
            for step: Step in [.check] {
                try journal.append(JournalEntry(runId: record.id, step: step, phase: .intent))
                try journal.append(JournalEntry(runId: record.id, step: step, phase: .done))
            }
            try journal.append(JournalEntry(runId: record.id, step: Step.upgrade(box: "a"), phase: .intent))
        }
        defer { try? FileManager.default.removeItem(at: directory) }
        try await runner.run()
        #expect(await procedure.reconciled == [.upgrade(box: "a")])
        #expect(await procedure.performed == [.upgrade(box: "b"), .retire], "a finished step is not redone")
        let entries = try runner.journal.entries(runner.record)
        #expect(entries.first { $0.step == .upgrade(box: "a") && $0.phase == .done }?.detail == ["seen": "upgraded"])
    }

    @Test func aReconcileThatSaysRedoPerformsAgain() async throws {
        let procedure = FakeProcedure()
        let (runner, directory) = try Self.runner(procedure) { journal, record in
            try journal.append(JournalEntry(runId: record.id, step: Step.check, phase: .intent))
            try journal.append(
                JournalEntry(runId: record.id, step: Step.check, phase: .failed, detail: ["error": "down"])
            )
        }
        defer { try? FileManager.default.removeItem(at: directory) }
        try await runner.run()
        #expect(await procedure.reconciled == [.check])
        #expect(await procedure.performed.first == .check)
    }

    @Test func anUnconfirmedDestructiveStepChangesNothingAndIsNotJournaled() async throws {
        let procedure = FakeProcedure()
        let (runner, directory) = try Self.runner(procedure, confirm: false)
        defer { try? FileManager.default.removeItem(at: directory) }
        let error = await #expect(throws: ProcedureError.self) { try await runner.run() }
        #expect(error?.code == .declined)
        #expect(await !procedure.performed.contains(.retire))
        #expect(try await !Self.phases(runner).contains { $0.hasPrefix("retire:") })
        #expect(await procedure.recovered == 1, "the procedure is asked to put back what it must")
    }

    @Test func aFailureIsJournaledAndARecoveryIsJournaledAsAReversion() async throws {
        let procedure = FakeProcedure()
        await procedure.script(fail: [.upgrade(box: "b")], recovery: .reverted(.check, ["thawed": "yes"]))
        let (runner, directory) = try Self.runner(procedure)
        defer { try? FileManager.default.removeItem(at: directory) }
        await #expect(throws: FakeProcedure.Failure.self) { try await runner.run() }
        let phases = try await Self.phases(runner)
        #expect(phases.suffix(3) == ["upgrade-b:intent", "upgrade-b:failed", "check:reverted"])
        let machine = await runner.machine
        #expect(machine.next() == .perform(.check), "the reverted step and those it made stale run again")
        #expect(machine.summary == .failed)
    }

    @Test func anAbortedRunIsRefusedOnResume() async throws {
        let procedure = FakeProcedure()
        let (runner, directory) = try Self.runner(procedure)
        defer { try? FileManager.default.removeItem(at: directory) }
        #expect(try await runner.abort() == ["nothing to put back"])
        let error = await #expect(throws: ProcedureError.self) { try await runner.run() }
        #expect(error?.code == .refused)
        #expect(error?.message.contains("aborted") == true)
        await #expect(throws: ProcedureError.self) { try await runner.abort() }
        #expect(await procedure.performed.isEmpty)
    }
}
