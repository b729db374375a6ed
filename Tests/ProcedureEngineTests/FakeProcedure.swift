import Foundation
import ProcedureEngine

/// A small procedure for the engine's tests, shaped like the upgrades to come: steps that carry data (which box
/// to upgrade), a safety rule between them, a destructive last step. It acts on nothing: `perform` and
/// `reconcile` answer as the test scripts them, and it records what it was asked.
actor FakeProcedure: Procedure {
    enum Step: ProcedureStep, Comparable {
        case check
        case upgrade(box: String)
        case retire

        var name: String {
            switch self {
            case .check: "check"
            case .upgrade(let box): "upgrade-\(box)"
            case .retire: "retire"
            }
        }

        var title: String { "Fake \(name)" }

        var rank: Int {
            switch self {
            case .check: 0
            case .upgrade: 1
            case .retire: 2
            }
        }

        static func < (lhs: Step, rhs: Step) -> Bool {
            switch (lhs, rhs) {
            case (.upgrade(let a), .upgrade(let b)): a < b
            default: lhs.rank < rhs.rank
            }
        }
    }

    struct Settings: Codable, Sendable, Equatable {
        var boxes: [String]
    }

    typealias Snapshot = String
    typealias Summary = NoSummary
    typealias Machine = ProcedureMachine<FakeProcedure>

    static let kind = RunKind(rawValue: "fake-upgrade")

    static func plan(for settings: Settings) -> [Step] {
        [.check] + settings.boxes.map { .upgrade(box: $0) } + [.retire]
    }

    static func ordered(_ steps: [Step]) -> [Step] { steps.sorted() }

    static func isDestructive(_ step: Step) -> Bool { step == .retire }

    /// A box is upgraded only after every box before it; nothing is retired before every box of the settings is.
    static func refusal(for step: Step, in machine: Machine) -> String? {
        switch step {
        case .check:
            return nil
        case .upgrade(let box):
            let earlier = machine.plan.filter { if case .upgrade(let other) = $0 { other < box } else { false } }
            return earlier.allSatisfy(machine.isDone) ? nil : "an earlier box is not upgraded yet"
        case .retire:
            let upgraded = machine.settings.boxes.allSatisfy { machine.isDone(.upgrade(box: $0)) }
            return upgraded ? nil : "not every box is upgraded"
        }
    }

    /// Redoing the check makes every upgrade stale.
    static func invalidated(byRevertOf step: Step, in plan: [Step]) -> [Step] {
        step == .check ? plan.filter { $0 != .retire } : [step]
    }

    static func appliances(_ settings: Settings) -> [String] { settings.boxes }

    // MARK: Live part, scripted

    var reconciliation: [Step: Reconciliation] = [:]
    var failing: Set<Step> = []
    var recovery: Recovery<Step> = .nothing
    private(set) var performed: [Step] = []
    private(set) var reconciled: [Step] = []
    private(set) var recovered = 0

    init() {}

    func script(
        reconcile: [Step: Reconciliation] = [:],
        fail: Set<Step> = [],
        recovery: Recovery<Step> = .nothing
    ) {
        reconciliation = reconcile
        failing = fail
        self.recovery = recovery
    }

    struct Failure: Error {}

    func perform(_ step: Step, context: StepContext) async throws -> StepDetail {
        performed.append(step)
        if failing.contains(step) { throw Failure() }
        return ["did": step.name]
    }

    func reconcile(_ step: Step, context: StepContext) async throws -> Reconciliation {
        reconciled.append(step)
        return reconciliation[step] ?? .redo
    }

    func recover(after failure: any Error, machine: Machine) async -> Recovery<Step> {
        recovered += 1
        return recovery
    }

    func abort(machine: Machine) async throws -> [String] { ["nothing to put back"] }

    func consequence(of step: Step) -> String { "the fake boxes retire" }

    func snapshots(machine: Machine) async -> [String] { ["\(performed.count) steps performed"] }

    static func difference(before: [String], after: [String]) -> [String]? {
        before == after ? [] : ["\(before.joined()) → \(after.joined())"]
    }

    static func markdown(before: [String], after: [String]) -> String { "" }

    static func summary(machine: Machine, entries: [JournalEntry<Step>]) -> NoSummary { NoSummary() }
}
