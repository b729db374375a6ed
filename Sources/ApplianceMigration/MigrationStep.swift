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
    case verify
    case cutover
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
        MigrationStep.allCases.filter { step in
            switch step {
            case .cutover: settings.cutover != .none
            case .decommission: settings.decommission
            default: true
            }
        }
    }

    public static func ordered(_ steps: [MigrationStep]) -> [MigrationStep] { steps.sorted() }

    public static func isDestructive(_ step: MigrationStep) -> Bool { step.isDestructive }

    /// The steps whose result depends on the site's data, which a lifted freeze makes stale.
    static let siteDataSteps: Set<MigrationStep> = [.freeze, .backup, .restore, .transfer, .verify]

    public static func invalidated(byRevertOf step: MigrationStep, in plan: [MigrationStep]) -> [MigrationStep] {
        plan.filter { $0 >= step && siteDataSteps.contains($0) }
    }

    public static func refusal(for step: MigrationStep, in machine: MigrationMachine) -> String? {
        let plan = machine.plan
        switch step {
        case .backup where plan.contains(.freeze) && !machine.isDone(.freeze):
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
