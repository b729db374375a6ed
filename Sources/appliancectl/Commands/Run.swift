import ApplianceInventory
import ApplianceMigration
import ApplianceProvisioning
import ArgumentParser
import Foundation

/// `appliancectl run PLAYBOOK`: a migration, provisioning or decommission from a playbook (P8).
struct RunPlaybook: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a playbook (migrate, provision, decommission, upgrade, upgrade-failover) against the inventory.",
        discussion: """
            The playbook and its appliance names are checked before anything runs. A migration writes every \
            step's intent and outcome to the journal (<state dir>/journal.sqlite) before and after acting; after \
            an interruption `appliancectl resume RUN` continues. Each run writes report.json and report.md to \
            <state dir>/runs/RUN/. Cutover, decommission and an upgrade's install ask first unless --yes.
            """
    )

    @Argument(help: "The playbook file (see Playbooks/).")
    var playbook: String

    @OptionGroup var options: InventoryOptions
    @OptionGroup var run: RunOptions

    @Flag(help: "Print the plan and change nothing.")
    var dryRun = false

    @Option(help: "A package repository (directory or URL) instead of the playbook's packages.repository.")
    var repository: String?

    @Flag(help: "Decommission without a verified migration or backup (with --confirm-name).")
    var force = false

    @Option(help: "The appliance's name typed back, required with --force.")
    var confirmName: String?

    func run() async throws {
        let inventory = try options.loadInventory()
        let book = try Playbook.load(from: URL(fileURLWithPath: playbook))
        try book.validate(against: inventory)
        let console = RunConsole(quiet: options.json)
        let session = try options.runSession(run, console: console)
        let path = URL(fileURLWithPath: playbook).standardizedFileURL.path
        switch book.body {
        case .migrate(let spec):
            let settings = try session.migrationSettings(spec, inventory: inventory, repository: repository)
            _ = try settings.secrets(from: session.secrets)
            if dryRun {
                let chosen = await session.withMethod(settings)
                if let line = chosen.line { print(line) }
                MigrationProcedure.planLines(chosen.settings).forEach { print($0) }
                return
            }
            try console.finish(try await session.migrate(settings, playbook: path), json: options.json)
        case .provision(let appliance):
            try await Provision.run(appliance.value, options: options, run: run, dryRun: dryRun)
        case .decommission(let appliance):
            let entry = try inventory.appliance(named: appliance.value)
            if entry.isVirtual {
                try await destroy(entry.name, inventory: inventory)
                return
            }
            _ = try session.secrets.adminPassword(for: entry)
            if dryRun {
                print("Plan (dry run, nothing changes): factory-reset \(entry.name), then shut it down")
                return
            }
            let outcome = try await session.decommission(
                entry,
                playbook: path,
                force: force,
                confirmName: confirmName
            )
            try console.finish(outcome, json: options.json)
        case .upgrade(let spec):
            let settings = try session.upgradeSettings(spec, inventory: inventory, repository: repository)
            _ = try session.secrets.resolve(settings.passwordSecret)
            _ = try session.secrets.resolve(settings.backupPasswordSecret)
            if dryRun {
                UpgradeProcedure.planLines(settings).forEach { print($0) }
                return
            }
            try console.finish(try await session.upgrade(settings, playbook: path), json: options.json)
        case .upgradeFailover(let spec):
            let settings = try session.pairUpgradeSettings(spec, inventory: inventory, repository: repository)
            for secret in [settings.aPasswordSecret, settings.bPasswordSecret, settings.backupPasswordSecret] {
                _ = try session.secrets.resolve(secret)
            }
            if dryRun {
                PairUpgradeProcedure.planLines(settings).forEach { print($0) }
                return
            }
            try console.finish(try await session.pairUpgrade(settings, playbook: path), json: options.json)
        }
    }

    /// A virtual appliance is decommissioned by removing it.
    func destroy(_ name: String, inventory: Inventory) async throws {
        if dryRun {
            print("Plan (dry run, nothing changes): shut down \(name), undefine it, delete its volumes")
            return
        }
        guard run.yes || Confirmation.ask("Destroy the virtual appliance \(name) and its volumes?") else {
            throw CommandError(.refused, "not confirmed; nothing was changed (use --yes to skip the question)")
        }
        let provisioner = try options.provisioner(image: run.image, readyTimeout: run.readyTimeout, keepFailed: false)
        let (removed, _) = try await provisioner.destroy(name: name, inventory: inventory)
        for line in removed { print("\(name): \(line)") }
    }
}
