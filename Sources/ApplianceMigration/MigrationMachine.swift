/// The steps of a migration (SPEC P4, P5, P6, X1, X2), in the order they run.
///
/// The six numbered steps are the vendor manual's "hardware upgrade"; the others surround them: pre-flight
/// before anything changes, the transfer of what the vendor backup leaves out, the verification that gates
/// everything destructive, cutover and decommission.
public enum MigrationStep: String, Codable, Sendable, CaseIterable, Comparable {
    case preflight
    case install
    case freeze
    case backup
    case certificate
    case address
    case package
    case restore
    case transfer
    case verify
    case cutover
    case decommission

    /// What the step does, for plans, progress and reports.
    public var title: String {
        switch self {
        case .preflight: "Pre-flight: reachability, credentials, versions, clocks, disk space"
        case .install: "1 Install the new appliance (provision it, or check it is factory-fresh)"
        case .freeze:
            "Freeze the old appliance: maintenance mode, users logged out, site writes refused until the cutover"
        case .backup: "2 Back up the old appliance with history, then prove the backup restorable (X1)"
        case .certificate: "3 Export the active certificate with key and chain, import it into the new appliance"
        case .address: "4 Assign the certificate to the new appliance's address, with no warnings"
        case .package: "5 Install the site package matching the old appliance's site version"
        case .restore: "6 Restore the backup into the new appliance"
        case .transfer: "Move the file store and recordings the backup leaves out (X2)"
        case .verify: "Verify: settings, users, counts, checksums, version, certificate served"
        case .cutover: "Cutover: point the site address at the new appliance (P5)"
        case .decommission: "Decommission: factory reset, then shut down the old appliance (P6)"
        }
    }

    /// Steps that change the old appliance or what the site's clients reach; they ask unless `--yes`.
    public var isDestructive: Bool { self == .cutover || self == .decommission }

    public static func < (lhs: MigrationStep, rhs: MigrationStep) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}

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
public enum MigrationDecision: Sendable, Equatable {
    /// Begin a step that was never begun.
    case perform(MigrationStep)
    /// A step was begun (or failed) before: look at the real state of both boxes first, then finish it.
    case reconcile(MigrationStep)
    /// A step may not run: a safety rule is not met. Nothing further happens.
    case refuse(MigrationStep, reason: String)
    /// Every step of the plan is done.
    case finished
}

/// The pure transition logic of a migration run: no I/O, fed by journal events.
///
/// Rules, beyond "in order, each once":
/// - nothing runs after a refusal;
/// - `restore` needs a backup proven restorable (`backup` done);
/// - `cutover` and `decommission` need `verify` done in this run — the old box is never touched before the
///   new one holds everything it held — and `decommission` also needs the backup proven (X1);
/// - a decommission-only run (no `verify` in its plan) needs evidence from an earlier verified run.
public struct MigrationMachine: Sendable, Equatable {
    public let plan: [MigrationStep]
    public private(set) var status: [MigrationStep: StepStatus]
    public private(set) var lastError: [MigrationStep: String] = [:]
    /// The operator abandoned the run (`appliancectl abort`): nothing more runs.
    public private(set) var aborted = false
    /// A failure lifted the freeze; the steps that copy the site run again on resume.
    public private(set) var revertedAfterFailure = false

    /// The steps whose result depends on the site's data, which a lifted freeze makes stale.
    static let siteDataSteps: Set<MigrationStep> = [.freeze, .backup, .restore, .transfer, .verify]
    /// An earlier run verified a migration or a backup of the box to decommission.
    public var verifiedElsewhere: Bool

    public init(plan: [MigrationStep], verifiedElsewhere: Bool = false) {
        self.plan = plan.sorted()
        self.status = Dictionary(uniqueKeysWithValues: plan.map { ($0, .pending) })
        self.verifiedElsewhere = verifiedElsewhere
    }

    /// Replays journal entries.
    public init(plan: [MigrationStep], entries: [JournalEntry], verifiedElsewhere: Bool = false) {
        self.init(plan: plan, verifiedElsewhere: verifiedElsewhere)
        for entry in entries { apply(entry) }
    }

    /// Advances with one journal entry.
    public mutating func apply(_ entry: JournalEntry) {
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
            // The old box serves (and changes) again: everything copied from it since this step is stale.
            for step in plan where step >= entry.step && Self.siteDataSteps.contains(step) {
                status[step] = .pending
                lastError[step] = nil
            }
            lastError[entry.step] = entry.detail["error"]
            revertedAfterFailure = true
        case .aborted:
            aborted = true
        }
    }

    public func isDone(_ step: MigrationStep) -> Bool { status[step] == .done }

    /// The next thing to do.
    public func next() -> MigrationDecision {
        guard let step = plan.first(where: { status[$0] != .done }) else { return .finished }
        if aborted {
            return .refuse(step, reason: "the run was aborted (appliancectl abort); start a new run")
        }
        if let reason = refusal(for: step) { return .refuse(step, reason: reason) }
        return status[step] == .pending ? .perform(step) : .reconcile(step)
    }

    func refusal(for step: MigrationStep) -> String? {
        switch step {
        case .backup where plan.contains(.freeze) && !isDone(.freeze):
            return "the old appliance is not frozen, so the backup could miss what it accepts meanwhile"
        case .restore where plan.contains(.backup) && !isDone(.backup):
            return "the backup has not been proven restorable"
        case .cutover, .decommission:
            if plan.contains(.verify) {
                guard isDone(.verify) else {
                    return "the new appliance has not been verified; the old one stays as it is"
                }
                if step == .decommission, plan.contains(.backup), !isDone(.backup) {
                    return "the backup has not been proven restorable"
                }
            } else if step == .decommission && !verifiedElsewhere {
                return "no verified migration or verified backup of this appliance exists"
            }
            return nil
        default:
            return nil
        }
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
}

/// A run's state as `appliancectl runs` shows it.
public enum RunState: String, Codable, Sendable {
    case planned, interrupted, failed, refused, aborted, finished
}
