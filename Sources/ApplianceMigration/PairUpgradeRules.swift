public import ApplianceAPI
import ApplianceClient
public import ApplianceInventory
import BackupFormat
import Foundation
public import ProcedureEngine

/// One box of a failover pair, as the vendor's manual names them: A is the primary (the site address resolves
/// to it), B its backup.
public enum PairBox: String, Codable, Sendable, Hashable, CaseIterable {
    case a, b

    public var other: PairBox { self == .a ? .b : .a }
    /// "A", "B" in messages.
    public var label: String { rawValue.uppercased() }
}

/// The steps of an upgrade of a failover pair (P8, `upgrade-failover-sync.yml`, `upgrade-failover-async.yml`).
public enum PairUpgradeStep: ProcedureStep {
    /// Both boxes healthy and reachable, paired (A primary, B its backup) with one shared key, on the same
    /// versions; each box's update plan (refuses a downgrade, an unknown target, a missing dependency).
    case preflight
    /// A password-protected backup of the primary with history, proven restorable (X1).
    case backup
    /// B pulls a sync now and the run waits for it.
    case syncNow
    /// The relationship is broken on both boxes; nothing but the relationship is lost.
    case breakPair
    /// The planned packages on one box (sync: A first; async: B first), each EULA accepted.
    case upgrade(PairBox)
    /// Healthy within the timeout, the target versions, the site data as before, the certificate still served.
    case verify(PairBox)
    /// Async only: A is frozen (maintenance) and the site address moves to B, which serves from then on.
    case swing
    /// The pair is established again (sync: A primary; async: B primary); what the future backup accepted while
    /// they were apart is merged into the primary, then the first sync is waited for.
    case reestablish

    public var name: String {
        switch self {
        case .preflight: "preflight"
        case .backup: "backup"
        case .syncNow: "sync"
        case .breakPair: "break"
        case .upgrade(let box): "upgrade-\(box.rawValue)"
        case .verify(let box): "verify-\(box.rawValue)"
        case .swing: "swing"
        case .reestablish: "reestablish"
        }
    }

    public var title: String {
        switch self {
        case .preflight:
            "Pre-flight: both boxes healthy, paired with one key, same versions, each box's update plan; nothing changes"
        case .backup: "Back up the primary A (password, history), prove the backup restorable (X1)"
        case .syncNow: "Sync now: B pulls a sync from A, waited for"
        case .breakPair: "Break the failover relationship (nothing else is lost on either box)"
        case .upgrade(let box): "Upgrade \(box.label): install the planned packages, EULA accepted"
        case .verify(let box):
            "Verify \(box.label): healthy, target versions, site data as before, certificate still served"
        case .swing: "Make B primary: freeze A (maintenance), move the site address to B"
        case .reestablish: "Re-establish the pair, merge what the backup holds alone, wait for the first sync"
        }
    }
}

/// Which of the manual's two methods a pair upgrade follows.
public enum PairUpgradeMode: String, Codable, Sendable, Hashable, CaseIterable {
    /// The primary A is upgraded first and stays primary; the site is down while A upgrades.
    case sync
    /// The backup B is upgraded first and takes over the site; the site is down only for the swing.
    case async
}

/// What a pair upgrade was asked to do.
public struct PairUpgradeSettings: Codable, Sendable, Equatable {
    public var mode: PairUpgradeMode
    /// The primary (A) and its backup (B).
    public var a: BoxReference
    public var b: BoxReference
    /// Names of the secrets, never their values.
    public var aPasswordSecret: String
    public var bPasswordSecret: String
    public var backupPasswordSecret: String
    public var includeHistory: Bool
    /// The site version to reach; nil: every applicable update.
    public var target: String?
    public var repository: String?
    public var rollback: UpgradeRollback
    /// How the site address moves to B (async); in sync mode only its address is used, to measure the downtime.
    public var cutover: Cutover
    public var healthTimeoutSeconds: Int

    public init(
        mode: PairUpgradeMode,
        a: BoxReference,
        b: BoxReference,
        aPasswordSecret: String,
        bPasswordSecret: String,
        backupPasswordSecret: String,
        includeHistory: Bool,
        target: String?,
        repository: String?,
        rollback: UpgradeRollback,
        cutover: Cutover,
        healthTimeoutSeconds: Int = 300
    ) {
        self.mode = mode
        self.a = a
        self.b = b
        self.aPasswordSecret = aPasswordSecret
        self.bPasswordSecret = bPasswordSecret
        self.backupPasswordSecret = backupPasswordSecret
        self.includeHistory = includeHistory
        self.target = target
        self.repository = repository
        self.rollback = rollback
        self.cutover = cutover
        self.healthTimeoutSeconds = healthTimeoutSeconds
    }

    /// The box upgraded first: sync A, async B.
    public var first: PairBox { mode == .sync ? .a : .b }
    /// The primary once the run is done: sync A, async B.
    public var primaryAfter: PairBox { mode == .sync ? .a : .b }
    public var targetText: String { target.map { "site \($0)" } ?? "every applicable update" }

    public func reference(_ box: PairBox) -> BoxReference { box == .a ? a : b }

    /// Where the site answers: the cutover's site address, or A's own address.
    public var siteAddress: String? { cutover.siteAddress ?? a.address }
}

/// The pure part of the pair upgrade: plan, order, gates, what is destructive, what a revert makes stale.
public enum PairUpgradeRules {
    public typealias Machine = ProcedureMachine<PairUpgradeProcedure>

    public static func plan(for settings: PairUpgradeSettings) -> [PairUpgradeStep] {
        let first = settings.first
        let head: [PairUpgradeStep] = [.preflight, .backup, .syncNow, .breakPair, .upgrade(first), .verify(first)]
        let second: [PairUpgradeStep] = [.upgrade(first.other), .verify(first.other)]
        return head + (settings.mode == .async ? [.swing] : []) + second + [.reestablish]
    }

    /// Why `step` may not run: the step before it in the plan is not done (each gate says what it protects).
    public static func refusal(for step: PairUpgradeStep, in machine: Machine) -> String? {
        let settings = machine.settings
        if step == .preflight {
            if let target = settings.target, (try? SoftwareVersion(target)) == nil {
                return "the target '\(target)' is not a version number; write one such as 24.2.0, or 'all'"
            }
            if settings.mode == .async && settings.cutover.siteAddress == nil {
                return "an async pair upgrade moves the site address to B: give 'cutover' with 'method: shared-ip' "
                    + "or 'method: hook' and 'site_address', or use the sync playbook"
            }
            return nil
        }
        guard let index = machine.plan.firstIndex(of: step), index > 0 else { return nil }
        let before = machine.plan[index - 1]
        guard !machine.isDone(before) else { return nil }
        return need(before, for: step)
    }

    /// What is missing when `before` is not done, said for `step`.
    static func need(_ before: PairUpgradeStep, for step: PairUpgradeStep) -> String {
        switch before {
        case .preflight: "the pre-flight checks have not passed"
        case .backup: "there is no proven backup of the primary A yet; the pair is never broken without one"
        case .syncNow: "B has not pulled a sync since the backup; the pair is not broken before it has"
        case .breakPair: "the failover relationship is not broken yet; a box of a pair is never upgraded paired"
        case .upgrade(let box): "\(box.label) has not been upgraded"
        case .verify(let box):
            step == .swing
                ? "B is not verified; the site moves only to a verified box"
                : "\(box.label) is not verified on the new software yet"
        case .swing: "the site has not moved to B; A is upgraded only once B serves"
        case .reestablish: "the pair is not established again"
        }
    }

    public static func isDestructive(_ step: PairUpgradeStep) -> Bool {
        switch step {
        case .breakPair, .upgrade, .swing: true
        default: false
        }
    }

    /// A revert of `break` (the pair re-established as it was after a rollback of the first box) makes every
    /// step after the backup stale; a rolled-back install its verification; a swing put back itself.
    public static func invalidated(
        byRevertOf step: PairUpgradeStep,
        in plan: [PairUpgradeStep]
    ) -> [PairUpgradeStep] {
        switch step {
        case .breakPair: Array(plan.drop { $0 != .syncNow })
        case .upgrade(let box): [.upgrade(box), .verify(box)]
        default: [step]
        }
    }

    /// One box as the pre-flight read it.
    public struct PairView: Sendable {
        public var name: String
        public var id: String
        public var software: InstalledSoftware
        public var failover: FailoverStatus

        public init(name: String, id: String, software: InstalledSoftware, failover: FailoverStatus) {
            self.name = name
            self.id = id
            self.software = software
            self.failover = failover
        }
    }

    /// Why the two boxes are not a pair this run can upgrade; nil when they are: one inter-appliance key on both,
    /// A the primary and B its backup (no conflict), the same versions.
    public static func pairRefusal(a: PairView, b: PairView) -> String? {
        let nothing = "; nothing was changed"
        let (aKey, bKey) = (a.failover.key, b.failover.key)
        guard aKey.isSet, bKey.isSet, aKey.fingerprint != nil, aKey.fingerprint == bKey.fingerprint else {
            return "\(a.name) and \(b.name) do not share an inter-appliance key (\(aKey.fingerprint ?? "none") and "
                + "\(bKey.fingerprint ?? "none")): they are not a pair. Set the same key on both (`appliancectl "
                + "failover key set`) and establish the pair, or upgrade each box with upgrade-single.yml" + nothing
        }
        if a.failover.role == "backup" && a.failover.peerApplianceId == b.id {
            return "\(a.name) is the backup of \(b.name), not its primary: swap 'a' and 'b' in the playbook (A is the "
                + "box the site address resolves to)" + nothing
        }
        guard a.failover.role == "primary", a.failover.peerApplianceId == b.id, b.failover.role == "backup",
            b.failover.peerApplianceId == a.id
        else {
            return "\(a.name) (\(a.failover.role)) and \(b.name) (\(b.failover.role)) are not a failover pair with "
                + "\(a.name) as the primary; establish it (`appliancectl failover establish`) first" + nothing
        }
        if let conflict = a.failover.conflict ?? b.failover.conflict {
            return "the pair is in conflict (\(conflict)); fix it first (`appliancectl failover fix`)" + nothing
        }
        guard a.software == b.software else {
            return "the pair runs different versions (\(a.name): \(UpgradePlanning.describe(a.software)); \(b.name): "
                + "\(UpgradePlanning.describe(b.software))); a pair is upgraded from one version: bring the older box "
                + "to the other's version first (upgrade-single.yml), then run again" + nothing
        }
        return nil
    }
}

extension PairUpgradeSettings: BoxUpgradeSource {}
