import ApplianceAPI
import ApplianceClient
import ApplianceInventory
import ApplianceMigration
import ApplianceProvisioning
import ArgumentParser
import Foundation
import Synchronization

/// Options of the commands that run or resume playbooks.
struct RunOptions: ParsableArguments {
    @Flag(help: "Answer yes to the questions before destructive steps (cutover, decommission).")
    var yes = false

    @Flag(help: "Accept the EULA of the packages step 5 installs (they are printed either way).")
    var acceptEula = false

    @OptionGroup var image: ImageOptions

    @Option(help: "Seconds to wait for a new virtual appliance to answer.")
    var readyTimeout: Int = 300
}

/// `appliancectl run PLAYBOOK`: a migration, provisioning or decommission from a playbook (P8).
struct RunPlaybook: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a playbook (migrate, provision, decommission) against the inventory.",
        discussion: """
            The playbook and its appliance names are checked before anything runs. A migration writes every \
            step's intent and outcome to the journal (<state dir>/journal.sqlite) before and after acting; after \
            an interruption `appliancectl resume RUN` continues. Each run writes report.json and report.md to \
            <state dir>/runs/RUN/. Cutover and decommission ask first unless --yes.
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
        switch book.body {
        case .migrate(let spec):
            try await migrate(spec, inventory: inventory)
        case .provision(let appliance):
            try await provision(appliance.value)
        case .decommission(let appliance):
            try await decommission(appliance.value, inventory: inventory)
        }
    }

    func migrate(_ spec: MigrationSpec, inventory: Inventory) async throws {
        let oldEntry = try inventory.appliance(named: spec.old.value)
        let newEntry = try inventory.appliance(named: spec.new.value)
        var settings = MigrationSettings(
            old: try reference(oldEntry),
            new: try reference(newEntry),
            oldPasswordSecret: oldEntry.passwordSecret,
            newPasswordSecret: newEntry.passwordSecret,
            backupPasswordSecret: spec.backupPasswordSecret,
            certificatePassphraseSecret: spec.certificatePassphraseSecret,
            includeHistory: spec.includeHistory,
            hostnameFromOld: spec.hostnameFromOld,
            repository: repository ?? spec.repository,
            cutover: spec.cutover,
            decommission: spec.decommission
        )
        let secrets = try settings.secrets(from: options.secretSource())
        if dryRun {
            printPlan(settings)
            return
        }
        let locks = try MigrationSession.lock(settings, options: options)
        defer { locks.forEach { $0.release() } }
        settings.old = try await pinFirstContact(settings.old)
        if !settings.new.isVirtual { settings.new = try await pinFirstContact(settings.new) }
        let journal = try Journal(url: options.stateDirectory.appendingPathComponent("journal.sqlite"))
        let record = try journal.createRun(
            kind: "migrate",
            playbook: book(path: playbook),
            inventory: options.inventoryFile.path,
            plan: settings.plan,
            settings: settings
        )
        Terminal.note("Run \(record.id): \(settings.old.name) → \(settings.new.name)")
        try await MigrationSession(options: options, run: run).execute(record, journal: journal, secrets: secrets)
    }

    func printPlan(_ settings: MigrationSettings) {
        print("Plan (dry run, nothing changes): \(settings.old.name) → \(settings.new.name)")
        for step in settings.plan {
            var line = "  \(step.title)"
            if step == .install && settings.new.isVirtual {
                line += " — provisions \(settings.new.name) through libvirt"
            }
            if step == .package { line += " — from \(settings.repository ?? "no repository (versions must match)")" }
            if step == .cutover, let site = settings.cutover.siteAddress { line += " — site address \(site)" }
            if step.isDestructive { line += "  [asks first unless --yes]" }
            print(line)
        }
    }

    func provision(_ name: String) async throws {
        if dryRun {
            print("Plan (dry run, nothing changes): provision \(name) from the image, wait until ready, first login")
            return
        }
        let (result, uri) = try await provisionVirtualAppliance(
            name: name,
            options: options,
            image: run.image,
            keepFailed: false,
            readyTimeout: run.readyTimeout
        )
        let directory = options.stateDirectory.appendingPathComponent("runs")
            .appendingPathComponent("provision-\(name)-\(Int(Date().timeIntervalSince1970))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let encoder = APICoding.encoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(result).write(to: directory.appendingPathComponent("report.json"))
        let markdown = """
            # provision \(name)

            | item | value |
            | --- | --- |
            | result | \(result.adopted ? "adopted" : "created") |
            | address | \(result.address) |
            | appliance id | \(result.applianceId) |
            | pin | \(result.pin) |
            | hypervisor | \(uri) (\(result.domainType)) |
            | ready after start | \(result.startToReadySeconds.map { String(format: "%.1f s", $0) } ?? "-") |

            """
        try Data(markdown.utf8).write(to: directory.appendingPathComponent("report.md"))
        print("\(name) \(result.adopted ? "adopted" : "created") at \(result.address); report in \(directory.path)")
    }

    func decommission(_ name: String, inventory: Inventory) async throws {
        let entry = try inventory.appliance(named: name)
        if case .virtual(let spec) = entry.kind {
            if dryRun {
                print("Plan (dry run, nothing changes): shut down \(name), undefine it, delete its volumes")
                return
            }
            guard run.yes || Confirmation.ask("Destroy the virtual appliance \(name) and its volumes?") else {
                throw CommandError(.refused, "not confirmed; nothing was changed (use --yes to skip the question)")
            }
            let hypervisor = try await Hypervisor.open(
                options.target(for: try inventory.hypervisor(named: spec.hypervisor))
            )
            let removed = try await Provisioner(hypervisor: hypervisor, templates: try options.loadTemplates())
                .destroy(name: name)
            for line in removed { print("\(name): \(line)") }
            return
        }
        var reference = try reference(entry)
        let password = try options.secretSource().adminPassword(for: entry).reveal()
        if dryRun {
            print("Plan (dry run, nothing changes): factory-reset \(name), then shut it down")
            return
        }
        let locks = try MigrationSession.lock(names: [name], options: options)
        defer { locks.forEach { $0.release() } }
        reference = try await pinFirstContact(reference)
        guard let address = reference.address, let pin = reference.pin.flatMap(TLSPin.init) else {
            throw CommandError("\(name) has no address in the inventory")
        }
        var box = try BoxClient(name: name, address: address, pin: pin, passwords: [password])
        let status: StatusResponse = try await box.session().call(.status)
        let journal = try Journal(url: options.stateDirectory.appendingPathComponent("journal.sqlite"))
        let evidence = try journal.verifiedEvidence(applianceId: status.applianceId)
        if let evidence {
            Terminal.note("\(name) (\(status.applianceId)) has \(evidence)")
        } else if !(force && confirmName == name) {
            throw CommandError(
                .refused,
                "\(name) has no verified migration or verified backup in \(journal.url.path); nothing was changed. "
                    + "Migrate or back it up first, or give --force --confirm-name \(name)"
            )
        }
        let settings = MigrationSettings(
            old: reference,
            new: reference,
            oldPasswordSecret: entry.passwordSecret,
            newPasswordSecret: entry.passwordSecret,
            backupPasswordSecret: "-",
            decommission: true
        )
        let record = try journal.createRun(
            kind: "decommission",
            playbook: book(path: playbook),
            inventory: options.inventoryFile.path,
            plan: [.decommission],
            settings: settings
        )
        let secrets = MigrationSecrets(
            oldPassword: password,
            newPassword: password,
            backupPassword: "",
            certificatePassphrase: nil
        )
        try await MigrationSession(options: options, run: run).execute(
            record,
            journal: journal,
            secrets: secrets,
            verifiedElsewhere: true
        )
    }

    func reference(_ entry: ApplianceEntry) throws -> BoxReference {
        var pin = entry.pin
        var address = entry.address
        if case .physical(let physical) = entry.kind { address = physical }
        if pin == nil, let address { pin = try options.pinStore.pin(for: address)?.description }
        return BoxReference(name: entry.name, address: address, pin: pin, isVirtual: entry.isVirtual)
    }

    /// Pins a physical box at first contact, as every other command does, and records the pin.
    func pinFirstContact(_ reference: BoxReference) async throws -> BoxReference {
        guard reference.pin == nil, let address = reference.address, let parsed = HostPort(address) else {
            return reference
        }
        let (pin, _) = try await PinnedHTTPClient.fetchPeerCertificate(host: parsed.host, port: parsed.port)
        try options.pinStore.record(pin, for: address)
        _ = try? Inventory.record(
            appliance: reference.name,
            address: nil,
            id: nil,
            pin: pin.description,
            in: options.inventoryFile
        )
        Terminal.note("First contact with \(reference.name) at \(address): recorded its key pin \(pin)")
        var pinned = reference
        pinned.pin = pin.description
        return pinned
    }

    func book(path: String) -> String {
        URL(fileURLWithPath: path).standardizedFileURL.path
    }
}

/// `appliancectl resume RUN`: continue an interrupted or failed run from the journal.
struct Resume: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Continue a run after an interruption or a fixed failure.",
        discussion: """
            The journal says which step was under way; that step first checks the real state of both appliances \
            (what exists, what matches) and does only what is missing. Secrets are read again by their names.
            """
    )

    @Argument(help: "The run id (see `appliancectl runs`).")
    var id: String

    @OptionGroup var options: InventoryOptions
    @OptionGroup var run: RunOptions

    func run() async throws {
        let journal = try Journal(url: options.stateDirectory.appendingPathComponent("journal.sqlite"))
        let record = try journal.run(id)
        var options = options
        if options.inventory == nil { options.inventory = record.inventory }
        let locks = try MigrationSession.lock(record.settings, options: options)
        defer { locks.forEach { $0.release() } }
        let secrets = try MigrationSession.secrets(for: record, options: options)
        try await MigrationSession(options: options, run: run).execute(
            record,
            journal: journal,
            secrets: secrets,
            verifiedElsewhere: record.kind == "decommission"
        )
    }
}

/// `appliancectl runs`: the journal's runs and where each stands.
struct Runs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the runs in the journal and their state.")

    @Option(help: "Where the journal is kept (default: $APPLIANCECTL_HOME or ~/.appliancectl).")
    var stateDir: String?

    @Flag(help: "Print machine-readable JSON instead of text.")
    var json = false

    struct Line: Codable {
        var id: String
        var kind: String
        var old: String
        var new: String
        var state: RunState
        var next: String?
        var error: String?
    }

    func run() async throws {
        let state = StateHome.directory(stateDir)
        let journal = try Journal(url: state.appendingPathComponent("journal.sqlite"))
        var lines: [Line] = []
        for record in try journal.runs() {
            let machine = MigrationMachine(
                plan: record.plan,
                entries: try journal.entries(record.id),
                verifiedElsewhere: record.kind == "decommission"
            )
            var next: MigrationStep?
            switch machine.next() {
            case .perform(let step), .reconcile(let step), .refuse(let step, _): next = step
            case .finished: next = nil
            }
            lines.append(
                Line(
                    id: record.id,
                    kind: record.kind,
                    old: record.settings.old.name,
                    new: record.kind == "migrate" ? record.settings.new.name : "-",
                    state: machine.summary,
                    next: next?.rawValue,
                    error: next.flatMap { machine.lastError[$0] }
                )
            )
        }
        if json {
            try printJSON(lines)
            return
        }
        if lines.isEmpty { print("No runs in \(journal.url.path).") }
        for line in lines {
            var text = "\(line.id)  \(line.kind)  \(line.old) → \(line.new)  \(line.state.rawValue)"
            if let next = line.next { text += "  next: \(next)" }
            if let error = line.error { text += "  (\(error.prefix(120)))" }
            print(text)
        }
    }
}

/// Asking the operator on the terminal.
enum Confirmation {
    static func ask(_ question: String) -> Bool {
        guard isatty(STDIN_FILENO) == 1 else {
            Terminal.note("\(question)\nNo terminal to ask on; give --yes to go ahead.")
            return false
        }
        FileHandle.standardError.write(Data("\(question) [y/N] ".utf8))
        guard let answer = readLine()?.trimmingCharacters(in: .whitespaces).lowercased() else { return false }
        return answer == "y" || answer == "yes"
    }
}

extension MigrationSession {
    /// The secrets a journaled run needs, read again by their names.
    static func secrets(for record: RunRecord, options: InventoryOptions) throws -> MigrationSecrets {
        let source = try options.secretSource()
        guard record.kind == "decommission" else { return try record.settings.secrets(from: source) }
        let password = try source.resolve(record.settings.oldPasswordSecret).reveal()
        return MigrationSecrets(
            oldPassword: password,
            newPassword: password,
            backupPassword: "",
            certificatePassphrase: nil
        )
    }
}

extension MigrationSettings {
    /// Reads the secrets this run needs by their names; fails naming the first missing one.
    func secrets(from source: SecretSource) throws -> MigrationSecrets {
        MigrationSecrets(
            oldPassword: try source.resolve(oldPasswordSecret).reveal(),
            newPassword: try source.resolve(newPasswordSecret).reveal(),
            backupPassword: try source.resolve(backupPasswordSecret).reveal(),
            certificatePassphrase: try certificatePassphraseSecret.map { try source.resolve($0).reveal() }
        )
    }
}
