import Testing

@testable import ProcedureEngine

/// The engine's transition logic alone, on a procedure whose steps carry data: journal entries in, decisions
/// out, no I/O.
@Suite struct ProcedureMachineTests {
    typealias Step = FakeProcedure.Step
    typealias Machine = ProcedureMachine<FakeProcedure>

    static let settings = FakeProcedure.Settings(boxes: ["a", "b"])
    static let plan = FakeProcedure.plan(for: settings)

    static func entry(_ step: Step, _ phase: JournalPhase, _ detail: StepDetail = [:]) -> JournalEntry<Step> {
        JournalEntry(runId: "r", step: step, phase: phase, detail: detail)
    }

    static func done(_ steps: [Step]) -> [JournalEntry<Step>] {
        steps.flatMap { [entry($0, .intent), entry($0, .done)] }
    }

    @Test func aPlanIsPutInTheProceduresOrderAndRunsEachStepOnce() {
        var machine = Machine(plan: [.retire, .upgrade(box: "b"), .check, .upgrade(box: "a")], settings: Self.settings)
        #expect(machine.plan == [.check, .upgrade(box: "a"), .upgrade(box: "b"), .retire])
        #expect(machine.summary == .planned)
        var order: [Step] = []
        while case .perform(let step) = machine.next() {
            order.append(step)
            machine.apply(Self.entry(step, .intent))
            machine.apply(Self.entry(step, .done))
        }
        #expect(order == Self.plan)
        #expect(machine.next() == .finished)
        #expect(machine.summary == .finished)
    }

    @Test func stepsThatCarryDataAreTrackedApart() {
        let machine = Machine(
            plan: Self.plan,
            settings: Self.settings,
            entries: Self.done([.check, .upgrade(box: "a")])
        )
        #expect(machine.isDone(.upgrade(box: "a")))
        #expect(!machine.isDone(.upgrade(box: "b")))
        #expect(machine.next() == .perform(.upgrade(box: "b")))
    }

    @Test(arguments: [
        (Step.upgrade(box: "b"), [Step.check], "an earlier box is not upgraded yet"),
        (Step.retire, [Step.check, .upgrade(box: "a")], "not every box is upgraded"),
    ])
    func safetyRulesRefuseWhatMayNotRunYet(step: Step, done: [Step], reason: String) {
        let machine = Machine(plan: Self.plan, settings: Self.settings, entries: Self.done(done))
        #expect(FakeProcedure.refusal(for: step, in: machine) == reason)
        // With everything before it done, the same step may run.
        let ready = Machine(
            plan: Self.plan,
            settings: Self.settings,
            entries: Self.done(Self.plan.filter { $0 < step })
        )
        #expect(FakeProcedure.refusal(for: step, in: ready) == nil)
        #expect(ready.next() == .perform(step))
    }

    @Test func aRefusedStepStopsTheRun() {
        // A journal whose plan lost the upgrades (hand-edited, or another version's): retire is refused.
        let machine = Machine(plan: [.check, .retire], settings: Self.settings, entries: Self.done([.check]))
        #expect(machine.next() == .refuse(.retire, reason: "not every box is upgraded"))
        #expect(machine.summary == .refused)
    }

    @Test func resumeDecisionsFollowTheJournal() {
        // Never begun: perform. Intent without outcome: reconcile. Failed: reconcile, keeping the error.
        let fresh = Machine(plan: Self.plan, settings: Self.settings, entries: Self.done([.check]))
        #expect(fresh.next() == .perform(.upgrade(box: "a")))
        #expect(fresh.summary == .interrupted)
        let interrupted = Machine(
            plan: Self.plan,
            settings: Self.settings,
            entries: Self.done([.check]) + [Self.entry(.upgrade(box: "a"), .intent)]
        )
        #expect(interrupted.next() == .reconcile(.upgrade(box: "a")))
        #expect(interrupted.summary == .interrupted)
        let failed = Machine(
            plan: Self.plan,
            settings: Self.settings,
            entries: Self.done([.check]) + [
                Self.entry(.upgrade(box: "a"), .intent), Self.entry(.upgrade(box: "a"), .failed, ["error": "refused"]),
            ]
        )
        #expect(failed.next() == .reconcile(.upgrade(box: "a")))
        #expect(failed.lastError[.upgrade(box: "a")] == "refused")
        #expect(failed.summary == .failed)
        // A late intent (a note written while acting) does not undo a done step.
        var late = fresh
        late.apply(Self.entry(.check, .intent, ["released": "yes"]))
        #expect(late.isDone(.check))
    }

    @Test func aRevertMakesTheStepsItNamesPendingAgain() {
        let machine = Machine(
            plan: Self.plan,
            settings: Self.settings,
            entries: Self.done([.check, .upgrade(box: "a"), .upgrade(box: "b")]) + [
                Self.entry(.retire, .intent), Self.entry(.retire, .failed, ["error": "x"]),
                Self.entry(.check, .reverted, ["error": "x"]),
            ]
        )
        #expect(machine.next() == .perform(.check))
        #expect(machine.status[.upgrade(box: "b")] == .pending)
        #expect(machine.status[.retire] == .failed, "a revert touches only what the procedure names")
        #expect(machine.summary == .failed)
    }

    @Test func anAbortedRunRefusesEverything() {
        let machine = Machine(
            plan: Self.plan,
            settings: Self.settings,
            entries: Self.done([.check]) + [Self.entry(.upgrade(box: "a"), .aborted)]
        )
        guard case .refuse(_, let reason) = machine.next() else {
            Issue.record("an aborted run went on: \(machine.next())")
            return
        }
        #expect(reason.contains("aborted"))
        #expect(machine.summary == .aborted)
    }

    @Test func factsAreWhatStepsFoundLaterOnesWinningFailuresLeftOut() {
        let facts = Machine.facts([
            Self.entry(.check, .done, ["pin": "1", "id": "A"]),
            Self.entry(.upgrade(box: "a"), .failed, ["error": "boom"]),
            Self.entry(.upgrade(box: "a"), .done, ["pin": "2"]),
        ])
        #expect(facts == ["pin": "2", "id": "A"])
    }
}
