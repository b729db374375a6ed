public import ApplianceInventory
import Foundation
import ProcedureEngine

extension RunSession {
    /// The settings of a failover pair upgrade playbook (`repository` overrides its packages.repository).
    public func pairUpgradeSettings(
        _ spec: PairUpgradeSpec,
        inventory: Inventory,
        repository: String?
    ) throws -> PairUpgradeSettings {
        let a = try inventory.appliance(named: spec.a.value)
        let b = try inventory.appliance(named: spec.b.value)
        return PairUpgradeSettings(
            mode: spec.mode == .sync ? .sync : .async,
            a: try reference(a),
            b: try reference(b),
            aPasswordSecret: a.passwordSecret,
            bPasswordSecret: b.passwordSecret,
            backupPasswordSecret: spec.backupPasswordSecret,
            includeHistory: spec.includeHistory,
            target: spec.target,
            repository: repository ?? spec.repository,
            rollback: spec.rollback,
            cutover: spec.cutover
        )
    }

    /// `appliancectl run upgrade-failover-*.yml`: journals a new pair upgrade and runs it.
    public func pairUpgrade(_ settings: PairUpgradeSettings, playbook: String) async throws -> RunOutcome {
        var settings = settings
        for secret in [settings.aPasswordSecret, settings.bPasswordSecret, settings.backupPasswordSecret] {
            _ = try secrets.resolve(secret)  // every secret is there before anything is journaled
        }
        let locks = try RunLocks(PairUpgradeProcedure.self, settings: settings, directory: state.locks)
        defer { locks.release() }
        settings.a = try await pinFirstContact(settings.a)
        settings.b = try await pinFirstContact(settings.b)
        return try await journalAndRun(
            PairUpgradeProcedure.self,
            settings,
            playbook: playbook,
            "\(settings.mode.rawValue) upgrade of the pair \(settings.a.name) (A) and \(settings.b.name) (B) to "
                + settings.targetText
        )
    }
}

extension PairUpgradeProcedure: SessionProcedure {
    static func runner(
        _ record: RunRecord<PairUpgradeProcedure>,
        journal: Journal,
        session: RunSession
    ) throws -> ProcedureRunner<PairUpgradeProcedure> {
        try session.runner(record, journal: journal) { facts, environment in
            try PairUpgradeProcedure(
                record: record,
                facts: facts,
                passwords: [
                    .a: try session.secrets.resolve(record.settings.aPasswordSecret).reveal(),
                    .b: try session.secrets.resolve(record.settings.bPasswordSecret).reveal(),
                ],
                backupPassword: try session.secrets.resolve(record.settings.backupPasswordSecret).reveal(),
                environment: environment
            )
        }
    }

    func explain(_ failure: any Error, runId: String) async -> any Error {
        await explainFailure(failure, runId: runId)
    }

    /// The plan of a pair upgrade with these settings, with every step's gate, as `run --dry-run` prints it.
    public static func planLines(_ settings: PairUpgradeSettings) -> [String] {
        var lines = [
            "Plan (dry run, nothing changes): \(settings.mode.rawValue) upgrade of \(settings.a.name) (A, primary) "
                + "and \(settings.b.name) (B, backup) to \(settings.targetText)"
        ]
        let plan = plan(for: settings)
        for (index, step) in plan.enumerated() {
            var line = "  \(index + 1). \(step.title)"
            if isDestructive(step) { line += "  [asks first unless --yes]" }
            if case .upgrade = step { line += " [EULAs unless --accept-eula]" }
            if step == .swing, let site = settings.cutover.siteAddress { line += " — site address \(site)" }
            lines.append(line)
            let gate =
                index == 0
                ? "refuses unless both boxes answer, share one key, A is primary and B its backup, both run the "
                    + "same versions, and the target is no downgrade with every dependency in the repository"
                : "refuses while " + PairUpgradeRules.need(plan[index - 1], for: step)
            lines.append("     gate: \(gate)")
        }
        lines.append(
            settings.rollback == .automatic
                ? "  On a failed install or verification: roll that box back automatically and prove it; when it "
                    + "was the first box, set the pair up again as it was"
                : "  On a failed install or verification: stop and leave the box as it is (rollback: manual)"
        )
        return lines
    }
}
