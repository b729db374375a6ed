import ApplianceInventory
public import ProcedureEngine

/// The steps of a migration (SPEC P4, P5, P6, X1, X2), in the order they run.
///
/// The six numbered steps are the vendor manual's "hardware upgrade"; the others surround them: pre-flight
/// before anything changes, the freeze, the transfer of what the vendor backup leaves out, the verification that
/// gates everything destructive, cutover and decommission.
public enum MigrationStep: String, ProcedureStep, CaseIterable, Comparable {
    case preflight
    case install
    case freeze
    case backup
    case certificate
    case address
    case package
    case restore
    case transfer
    /// Live method: the new box becomes a failover backup of the old one and syncs while the old one serves.
    case sync
    /// Live method: inside the freeze, the last sync moves what the old box accepted since the previous one.
    case finalSync = "final-sync"
    case verify
    /// Live method: the new box becomes primary (the old one its backup, which takes no site writes).
    case promote
    case cutover
    /// Live method: the temporary failover relationship is broken; the old box stays frozen.
    case unlink
    case decommission

    public var name: String { rawValue }

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
        case .sync:
            "Sync: the new appliance becomes the old one's failover backup and syncs while the old one serves"
        case .finalSync: "Final sync: move what the old appliance accepted before the freeze"
        case .promote: "Promote: the new appliance becomes primary, the old one its backup"
        case .unlink: "Unlink: break the temporary failover relationship; the old appliance stays frozen"
        case .verify: "Verify: settings, users, counts, checksums, version, certificate served"
        case .cutover: "Cutover: point the site address at the new appliance (P5)"
        case .decommission: "Decommission: factory reset, then shut down the old appliance (P6)"
        }
    }

    /// Steps that change the old appliance or what the site's clients reach; they ask unless `--yes`.
    public var isDestructive: Bool { self == .cutover || self == .decommission }

    public static func < (lhs: MigrationStep, rhs: MigrationStep) -> Bool {
        everyStep.firstIndex(of: lhs)! < everyStep.firstIndex(of: rhs)!
    }

    /// The steps of `method: backup-restore`, in order (the vendor manual's procedure): what `allCases` has
    /// always listed, so plans and journals written before the live method read the same.
    public static var allCases: [MigrationStep] { backupRestoreOrder }

    static let backupRestoreOrder: [MigrationStep] = [
        .preflight, .install, .freeze, .backup, .certificate, .address, .package, .restore, .transfer, .verify,
        .cutover, .decommission,
    ]

    /// Every step of either method (the live method's own steps last).
    public static let everyStep: [MigrationStep] = backupRestoreOrder + [.sync, .finalSync, .promote, .unlink]

    /// The steps of `method: live`, in order: everything that moves data in bulk happens before the freeze.
    static let liveOrder: [MigrationStep] = [
        .preflight, .install, .backup, .certificate, .address, .package, .sync, .freeze, .finalSync, .verify,
        .promote, .cutover, .unlink, .decommission,
    ]

    /// Steps only the live method has; a plan holding one is a live plan.
    static let liveOnly: Set<MigrationStep> = [.sync, .finalSync, .promote, .unlink]
}

/// The transition logic of a migration run: the engine's machine with the migration's rules.
public typealias MigrationMachine = ProcedureMachine<MigrationProcedure>

/// The migration's pure rules, beyond "in order, each once" (tested without I/O):
/// - `backup` needs the old box frozen (`freeze` done), so it misses nothing the box accepts;
/// - `restore` needs a backup proven restorable (`backup` done);
/// - `cutover` and `decommission` need `verify` done in this run — the old box is never touched before the
///   new one holds everything it held — and `decommission` also needs the backup proven (X1);
/// - a lifted freeze (`freeze` reverted) makes the steps that copy the site stale: they run again.
extension MigrationProcedure {
    public static let kind = RunKind(rawValue: "migrate")

    public static func plan(for settings: MigrationSettings) -> [MigrationStep] {
        let order = settings.isLive ? MigrationStep.liveOrder : MigrationStep.backupRestoreOrder
        return order.filter { step in
            switch step {
            case .cutover, .promote: settings.cutover != .none
            case .decommission: settings.decommission
            default: true
            }
        }
    }

    /// Whether `plan` is one of `method: live`.
    static func isLive(_ plan: [MigrationStep]) -> Bool { plan.contains { MigrationStep.liveOnly.contains($0) } }

    static func order(of plan: [MigrationStep]) -> [MigrationStep] {
        isLive(plan) ? MigrationStep.liveOrder : MigrationStep.backupRestoreOrder
    }

    public static func ordered(_ steps: [MigrationStep]) -> [MigrationStep] {
        let order = order(of: steps)
        return steps.sorted { order.firstIndex(of: $0)! < order.firstIndex(of: $1)! }
    }

    public static func isDestructive(_ step: MigrationStep) -> Bool { step.isDestructive }

    /// The steps whose result depends on the site's data, which a lifted freeze makes stale.
    static let siteDataSteps: Set<MigrationStep> = [.freeze, .backup, .restore, .transfer, .verify]

    /// Live: the backup was taken before the freeze and stays valid; the syncs and what follows them are redone
    /// (a reverted promotion was given back to the old box, so it runs again too).
    static let liveSiteDataSteps: Set<MigrationStep> = [.sync, .freeze, .finalSync, .verify, .promote]

    public static func invalidated(byRevertOf step: MigrationStep, in plan: [MigrationStep]) -> [MigrationStep] {
        guard isLive(plan) else { return plan.filter { $0 >= step && siteDataSteps.contains($0) } }
        return plan.filter { liveSiteDataSteps.contains($0) }
    }

    public static func refusal(for step: MigrationStep, in machine: MigrationMachine) -> String? {
        let plan = machine.plan
        if isLive(plan), let reason = liveRefusal(for: step, in: machine) { return reason }
        switch step {
        case .backup where !isLive(plan) && plan.contains(.freeze) && !machine.isDone(.freeze):
            return "the old appliance is not frozen, so the backup could miss what it accepts meanwhile"
        case .restore where plan.contains(.backup) && !machine.isDone(.backup):
            return "the backup has not been proven restorable"
        case .cutover, .decommission:
            guard machine.isDone(.verify) else {
                return "the new appliance has not been verified; the old one stays as it is"
            }
            if step == .decommission, plan.contains(.backup), !machine.isDone(.backup) {
                return "the backup has not been proven restorable"
            }
            return nil
        default:
            return nil
        }
    }

    /// The live method's own rules: the syncs come after step 5 (same site version), the freeze after the sync
    /// (so only a small delta is left for it), the final sync inside the freeze, the promotion after the
    /// verification, the unlink after the site moved, the decommission after the unlink.
    static func liveRefusal(for step: MigrationStep, in machine: MigrationMachine) -> String? {
        func needs(_ earlier: MigrationStep, _ reason: String) -> String? {
            machine.plan.contains(earlier) && !machine.isDone(earlier) ? reason : nil
        }
        switch step {
        case .sync: return needs(.package, "the new appliance does not run the old one's site version yet")
        case .freeze: return needs(.sync, "the new appliance has not caught up by syncing")
        case .finalSync: return needs(.freeze, "the old appliance is not frozen, so a last sync could miss writes")
        case .verify: return needs(.finalSync, "the last changes have not been synced")
        case .promote: return needs(.verify, "the new appliance has not been verified; the old one stays as it is")
        case .cutover: return needs(.promote, "the new appliance is not primary yet, so it would refuse the site")
        case .unlink: return needs(.verify, "the new appliance has not been verified")
        case .decommission: return needs(.unlink, "the failover relationship with the old appliance is not broken")
        default: return nil
        }
    }

    public static func appliances(_ settings: MigrationSettings) -> [String] {
        [settings.old.name, settings.new.name]
    }

    /// The verification's comparison is in the report's own section, not in the step's line.
    public static func reportDetail(_ step: MigrationStep, _ detail: StepDetail) -> StepDetail {
        var detail = detail
        detail["comparison"] = nil
        return detail
    }
}
