import ApplianceAPI
import ApplianceClient
public import ApplianceInventory
import BackupFormat
public import Foundation
public import ProcedureEngine

/// The steps of an upgrade of one appliance (P7, `upgrade-single.yml`).
public enum UpgradeStep: String, ProcedureStep, CaseIterable {
    /// Health, versions and the box's update plan; refuses a downgrade or an unknown target. Changes nothing but
    /// the update source the playbook names.
    case preflight
    /// A password-protected backup with history, proven restorable (X1), kept in the run directory.
    case backup
    /// The planned packages, dependencies first, each EULA accepted explicitly.
    case install
    /// Healthy within the timeout, the target versions, the site data as before, the certificate still served.
    case verify

    public var name: String { rawValue }

    public var title: String {
        switch self {
        case .preflight: "Pre-flight: health, versions, the box's update plan (refuses a downgrade); nothing changes"
        case .backup:
            "Back up the appliance (password, history), prove the backup restorable (X1), export the certificate"
        case .install: "Install the planned packages, dependencies first, EULA accepted"
        case .verify: "Verify: healthy, target versions installed, site data as before, certificate still served"
        }
    }
}

/// What an upgrade run was asked to do.
public struct UpgradeSettings: Codable, Sendable, Equatable {
    public var box: BoxReference
    /// Names of the secrets, never their values.
    public var passwordSecret: String
    public var backupPasswordSecret: String
    public var includeHistory: Bool
    /// The site version to reach; nil: every applicable update.
    public var target: String?
    /// The update source the box is given before it checks (directory or http(s) URL); nil: its own.
    public var repository: String?
    public var rollback: UpgradeRollback
    /// How long the box may take to answer healthy after an install or a rollback.
    public var healthTimeoutSeconds: Int
    /// Offline: the packages come from a repository on this machine and are uploaded; nil: online.
    public var offline: UpgradeOffline?

    public init(
        box: BoxReference,
        passwordSecret: String,
        backupPasswordSecret: String,
        includeHistory: Bool,
        target: String?,
        repository: String?,
        rollback: UpgradeRollback,
        healthTimeoutSeconds: Int = 300,
        offline: UpgradeOffline? = nil
    ) {
        self.box = box
        self.passwordSecret = passwordSecret
        self.backupPasswordSecret = backupPasswordSecret
        self.includeHistory = includeHistory
        self.target = target
        self.repository = repository
        self.rollback = rollback
        self.healthTimeoutSeconds = healthTimeoutSeconds
        self.offline = offline
    }

    /// "site 24.2.0" or "every applicable update", for plans and messages.
    public var targetText: String { target.map { "site \($0)" } ?? "every applicable update" }
}

/// Upgrades one appliance: pre-flight, proven backup, install, verify; a failed install or verification rolls
/// the box back to its previous software slot (X4) and proves it. Its own small procedure on the engine.
public actor UpgradeProcedure: Procedure {
    public typealias Step = UpgradeStep
    public typealias Settings = UpgradeSettings
    public typealias Machine = ProcedureMachine<UpgradeProcedure>

    let settings: UpgradeSettings
    let environment: RunEnvironment
    /// The box's upgrade: its steps, facts and rollback.
    let unit: BoxUpgrade
    let boxName: String
    let boxAddress: String
    /// The planned packages, for the question before the install.
    var planText: String?

    public init(
        record: RunRecord<UpgradeProcedure>,
        facts: StepDetail,
        password: String,
        backupPassword: String,
        environment: RunEnvironment
    ) throws {
        settings = record.settings
        self.environment = environment
        let box = try BoxClient(reference: record.settings.box, password: password)
        boxName = box.name
        boxAddress = box.address
        unit = try BoxUpgrade(
            box: box,
            options: record.settings.options,
            facts: facts,
            prefix: "",
            backupPassword: backupPassword,
            environment: environment
        )
        planText = facts["planText"]
    }

    public func perform(_ step: UpgradeStep, context: StepContext) async throws -> StepDetail {
        let detail = try await unit.perform(step, context: context)
        if let text = detail["planText"] { planText = text }
        return detail
    }

    // MARK: Rules

    public static let kind = RunKind(rawValue: "upgrade")

    public static func plan(for settings: UpgradeSettings) -> [UpgradeStep] { UpgradeStep.allCases }

    public static func isDestructive(_ step: UpgradeStep) -> Bool { step == .install }

    /// Each step needs the one before it done: no install without a proven backup, no verification without an
    /// install.
    public static func refusal(for step: UpgradeStep, in machine: Machine) -> String? {
        switch step {
        case .preflight:
            if let target = machine.settings.target, (try? SoftwareVersion(target)) == nil {
                return "the target '\(target)' is not a version number; write one such as 24.2.0, or 'all'"
            }
            return nil
        case .backup:
            return machine.isDone(.preflight) ? nil : "the pre-flight checks have not passed"
        case .install:
            return machine.isDone(.backup)
                ? nil : "there is no proven backup of the appliance yet; an upgrade never installs without one"
        case .verify:
            return machine.isDone(.install) ? nil : "the packages have not been installed"
        }
    }

    /// A rolled-back install makes the verification stale too: a resumed run installs and verifies again.
    public static func invalidated(byRevertOf step: UpgradeStep, in plan: [UpgradeStep]) -> [UpgradeStep] {
        step == .install ? [.install, .verify] : [step]
    }

    public static func appliances(_ settings: UpgradeSettings) -> [String] { [settings.box.name] }

    // MARK: Resume

    /// Looks at the box: the backup in the run directory is proven again, the install is finished when the box
    /// has every planned version; pre-flight and verification change nothing and are done again.
    public func reconcile(_ step: UpgradeStep, context: StepContext) async throws -> Reconciliation {
        switch step {
        case .preflight, .verify: .redo
        case .backup: try await unit.reconcileBackup()
        case .install: try await unit.reconcileInstall()
        }
    }

    public func abort(machine: Machine) async throws -> [String] {
        guard machine.status[.install] != .pending else { return ["\(boxName) is left as it was"] }
        return [
            "\(boxName) may run the new software (see the report); `appliancectl updates rollback \(boxAddress)` "
                + "returns it one step, and \(unit.backupFile.path) holds the pre-upgrade backup"
        ]
    }

    public func consequence(of step: UpgradeStep) -> String {
        let plan = planText ?? settings.targetText
        return "\(boxName) at \(boxAddress) installs \(plan); every user is logged out, and a site update "
            + "changes the site hash (client installers must be regenerated)"
    }

    public func snapshots(machine: Machine) async -> [BoxSnapshot] { [await unit.snapshot()] }

    // MARK: Report

    public static func summary(machine: Machine, entries: [JournalEntry<UpgradeStep>]) -> UpgradeSummary {
        UpgradeSummary(machine: machine, entries: entries)
    }

    public static func difference(before: [BoxSnapshot], after: [BoxSnapshot]) -> [String]? {
        guard let was = before.first, let now = after.first, let old = was.site, let site = now.site else {
            return nil
        }
        var lines: [String] = []
        if let from = was.software, let to = now.software, from != to {
            lines.append("software: \(UpgradePlanning.describe(from)) → \(UpgradePlanning.describe(to))")
        }
        return lines
            + ComparisonItem.compare(old, site).filter { !$0.matches }.map { "\($0.item): \($0.old) → \($0.new)" }
    }

    public static func markdown(before: [BoxSnapshot], after: [BoxSnapshot]) -> String {
        BoxSnapshot.markdownSection(before: before, after: after)
    }

    public static func jsonEncoder() -> JSONEncoder { APICoding.encoder() }

    public static func jsonDecoder() -> JSONDecoder { APICoding.decoder() }
}

extension UpgradeSettings: BoxUpgradeSource {}
