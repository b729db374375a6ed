/// Where one step stands, as the journal tells it.
public enum StepStatus: String, Codable, Sendable, Equatable {
    /// Never begun.
    case pending
    /// Its intent is journaled but no outcome: the process stopped while acting. The real state decides.
    case started
    /// Done and journaled.
    case done
    /// Failed with nothing destructive half-done; it is tried again (after checking the real state).
    case failed
}

/// What to do next, as decided from the plan and the journal alone.
public enum Decision<Step: ProcedureStep>: Sendable, Equatable {
    /// Begin a step that was never begun.
    case perform(Step)
    /// A step was begun (or failed) before: look at the real state first, then redo, finish or skip it.
    case reconcile(Step)
    /// A step may not run: a safety rule is not met. Nothing further happens.
    case refuse(Step, reason: String)
    /// Every step of the plan is done.
    case finished
}

/// A run's state as `appliancectl runs` shows it.
public enum RunState: String, Codable, Sendable {
    case planned, interrupted, failed, refused, aborted, finished
}

/// The pure transition logic of every procedure's run: no I/O, fed by journal entries.
///
/// In order, each step once; nothing runs after a refusal or an abort; a step runs only when the procedure's
/// safety rules (`P.refusal(for:in:)`) allow it; a reverted step makes the steps `P.invalidated(byRevertOf:in:)`
/// names pending again.
public struct ProcedureMachine<P: ProcedureRules>: Sendable, Equatable {
    public let plan: [P.Step]
    public let settings: P.Settings
    public private(set) var status: [P.Step: StepStatus]
    public private(set) var lastError: [P.Step: String] = [:]
    /// The operator abandoned the run (`appliancectl abort`): nothing more runs.
    public private(set) var aborted = false
    /// A failure was put back (e.g. a freeze lifted); the steps it made stale run again on resume.
    public private(set) var revertedAfterFailure = false

    public init(plan: [P.Step], settings: P.Settings) {
        self.plan = P.ordered(plan)
        self.settings = settings
        self.status = Dictionary(plan.map { ($0, StepStatus.pending) }) { first, _ in first }
    }

    /// Replays journal entries.
    public init(plan: [P.Step], settings: P.Settings, entries: [JournalEntry<P.Step>]) {
        self.init(plan: plan, settings: settings)
        for entry in entries { apply(entry) }
    }

    /// The machine of a journaled run.
    public init(record: RunRecord<P>, entries: [JournalEntry<P.Step>]) {
        self.init(plan: record.plan, settings: record.settings, entries: entries)
    }

    /// Advances with one journal entry.
    public mutating func apply(_ entry: JournalEntry<P.Step>) {
        guard status[entry.step] != nil else { return }
        switch entry.phase {
        case .intent:
            revertedAfterFailure = false
            if status[entry.step] != .done { status[entry.step] = .started }
        case .done:
            status[entry.step] = .done
            lastError[entry.step] = nil
        case .failed:
            status[entry.step] = .failed
            lastError[entry.step] = entry.detail["error"]
        case .reverted:
            for step in P.invalidated(byRevertOf: entry.step, in: plan) where status[step] != nil {
                status[step] = .pending
                lastError[step] = nil
            }
            lastError[entry.step] = entry.detail["error"]
            revertedAfterFailure = true
        case .aborted:
            aborted = true
        }
    }

    public func isDone(_ step: P.Step) -> Bool { status[step] == .done }

    /// Whether `step` is in the plan and not yet done.
    public func awaits(_ step: P.Step) -> Bool { status[step] != nil && status[step] != .done }

    /// The first step not done, if any.
    public var current: P.Step? { plan.first { status[$0] != .done } }

    /// The next thing to do.
    public func next() -> Decision<P.Step> {
        guard let step = current else { return .finished }
        if aborted {
            return .refuse(step, reason: "the run was aborted (appliancectl abort); start a new run")
        }
        if let reason = P.refusal(for: step, in: self) { return .refuse(step, reason: reason) }
        return status[step] == .pending ? .perform(step) : .reconcile(step)
    }

    /// The run's overall state, for `appliancectl runs`.
    public var summary: RunState {
        switch next() {
        case .finished: return .finished
        case .refuse: return aborted ? .aborted : .refused
        case .perform(let step), .reconcile(let step):
            if status[step] == .failed || revertedAfterFailure { return .failed }
            if status[step] == .started { return .interrupted }
            return plan.contains(where: { status[$0] != .pending }) ? .interrupted : .planned
        }
    }

    /// What done steps found, later entries winning; failures' errors left out.
    public static func facts(_ entries: [JournalEntry<P.Step>]) -> StepDetail {
        var facts: StepDetail = [:]
        for entry in entries where entry.phase != .failed { facts.merge(entry.detail) { $1 } }
        return facts
    }
}
