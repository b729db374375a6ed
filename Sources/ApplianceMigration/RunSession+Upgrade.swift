public import ApplianceInventory
import Foundation
import ProcedureEngine

extension RunSession {
    /// The settings of an upgrade playbook (`repository` overrides its packages.repository).
    public func upgradeSettings(_ spec: UpgradeSpec, inventory: Inventory, repository: String?) throws
        -> UpgradeSettings
    {
        let entry = try inventory.appliance(named: spec.box.value)
        // Offline, the repository is on this machine: kept as an absolute path so a resume elsewhere finds it.
        let offline = spec.offline.map { packages in
            UpgradeOffline(
                repository: Self.absolute(repository ?? spec.repository ?? ""),
                vendorKey: Self.absolute(packages.vendorKey.value)
            )
        }
        return UpgradeSettings(
            box: try reference(entry),
            passwordSecret: entry.passwordSecret,
            backupPasswordSecret: spec.backupPasswordSecret,
            includeHistory: spec.includeHistory,
            target: spec.target,
            repository: offline == nil ? repository ?? spec.repository : nil,
            rollback: spec.rollback,
            offline: offline
        )
    }

    /// A path made absolute against the current directory; URLs as they are.
    static func absolute(_ text: String) -> String {
        text.contains("://") ? text : URL(fileURLWithPath: text).standardizedFileURL.path
    }

    /// `appliancectl run upgrade-single.yml`: journals a new upgrade and runs it.
    public func upgrade(_ settings: UpgradeSettings, playbook: String) async throws -> RunOutcome {
        var settings = settings
        // Every secret is there before anything is journaled.
        _ = try secrets.resolve(settings.passwordSecret)
        _ = try secrets.resolve(settings.backupPasswordSecret)
        let locks = try RunLocks(UpgradeProcedure.self, settings: settings, directory: state.locks)
        defer { locks.release() }
        settings.box = try await pinFirstContact(settings.box)
        return try await journalAndRun(
            UpgradeProcedure.self,
            settings,
            playbook: playbook,
            "upgrade \(settings.box.name) to \(settings.targetText)"
        )
    }

    /// Journals a new run of `P` with `settings` and runs it; `line` says what it does, after its id.
    func journalAndRun<P: SessionProcedure>(
        _ type: P.Type,
        _ settings: P.Settings,
        playbook: String,
        _ line: String
    ) async throws -> RunOutcome {
        let journal = try journal()
        let record = try journal.createRun(
            P.self,
            playbook: playbook,
            inventory: inventoryFile.path,
            settings: settings
        )
        note("Run \(record.id): \(line)")
        return try await execute(try P.runner(record, journal: journal, session: self))
    }
}

extension UpgradeProcedure: SessionProcedure {
    static func runner(
        _ record: RunRecord<UpgradeProcedure>,
        journal: Journal,
        session: RunSession
    ) throws -> ProcedureRunner<UpgradeProcedure> {
        try session.runner(record, journal: journal) { facts, environment in
            try UpgradeProcedure(
                record: record,
                facts: facts,
                password: try session.secrets.resolve(record.settings.passwordSecret).reveal(),
                backupPassword: try session.secrets.resolve(record.settings.backupPasswordSecret).reveal(),
                environment: environment
            )
        }
    }

    func explain(_ failure: any Error, runId: String) async -> any Error {
        await explainFailure(failure, runId: runId)
    }

    /// The plan of an upgrade with these settings, as `run --dry-run` prints it.
    public static func planLines(_ settings: UpgradeSettings) -> [String] {
        var lines = ["Plan (dry run, nothing changes): upgrade \(settings.box.name) to \(settings.targetText)"]
        for step in plan(for: settings) {
            var line = "  \(step.title)"
            if step == .preflight, let offline = settings.offline {
                line +=
                    " — offline: the box's download key (refused on clock skew), the packages fetched here from "
                    + "\(offline.repository) and verified with \(offline.vendorKey); the update source stays as it is"
            } else if step == .preflight {
                line += " — update source: \(settings.repository ?? "the box's own")"
            }
            if step == .install, settings.offline != nil {
                line += " — uploaded from the run directory (manual install), each file verified again first"
            }
            if step == .install { line += "  [asks first unless --yes; EULAs unless --accept-eula]" }
            lines.append(line)
        }
        lines.append(
            settings.rollback == .automatic
                ? "  On a failed install or verification: roll back automatically to the previous software slot, "
                    + "then prove it (health 200, versions and site data as before)"
                : "  On a failed install or verification: stop and leave the box as it is (rollback: manual)"
        )
        return lines
    }
}
