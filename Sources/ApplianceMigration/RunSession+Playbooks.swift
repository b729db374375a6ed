import ApplianceAPI
import ApplianceClient
public import ApplianceInventory
import ApplianceTemplates
import Foundation
import ProcedureEngine

extension RunSession {
    /// The inventory a new run uses.
    var inventoryFile: URL { inventory ?? URL(fileURLWithPath: "inventory.yml") }

    /// The box of an inventory entry as a run records it: its address and recorded pin.
    func reference(_ entry: ApplianceEntry) throws -> BoxReference {
        var pin = entry.pin
        var address = entry.address
        if case .physical(let physical) = entry.kind { address = physical }
        if pin == nil, let address { pin = try pins.pin(for: address)?.description }
        return BoxReference(name: entry.name, address: address, pin: pin, isVirtual: entry.isVirtual)
    }

    /// The settings of a migration playbook (`repository` overrides its packages.repository).
    public func migrationSettings(
        _ spec: MigrationSpec,
        inventory: Inventory,
        repository: String?
    ) throws -> MigrationSettings {
        let oldEntry = try inventory.appliance(named: spec.old.value)
        let newEntry = try inventory.appliance(named: spec.new.value)
        let old = try reference(oldEntry)
        return MigrationSettings(
            old: old,
            new: try reference(newEntry),
            oldPasswordSecret: oldEntry.passwordSecret,
            newPasswordSecret: newEntry.passwordSecret,
            backupPasswordSecret: spec.backupPasswordSecret,
            certificatePassphraseSecret: spec.certificatePassphraseSecret,
            includeHistory: spec.includeHistory,
            hostnameFromOld: spec.hostnameFromOld,
            repository: repository ?? spec.repository,
            cutover: spec.cutover,
            decommission: spec.decommission,
            method: spec.method,
            oldAddressFromNew: try Self.guestForwardAddress(to: old, from: newEntry, inventory: inventory)
        )
    }

    /// Where a new virtual appliance on QEMU user networking reaches the old box: the guest side of a forward
    /// to the old box's address (same port). Nil where the new box reaches the old one directly.
    static func guestForwardAddress(
        to old: BoxReference,
        from newEntry: ApplianceEntry,
        inventory: Inventory
    ) throws -> String? {
        guard case .virtual(let spec) = newEntry.kind, let address = old.address, let parsed = HostPort(address)
        else { return nil }
        if case .libvirt = try inventory.hypervisor(named: spec.hypervisor).network { return nil }
        return GuestForward(guestPort: parsed.port, targetHost: parsed.host, targetPort: parsed.port).guestAddress
    }

    /// `appliancectl run migrate.yml`: journals a new migration and runs it.
    public func migrate(_ settings: MigrationSettings, playbook: String) async throws -> RunOutcome {
        var settings = settings
        _ = try settings.secrets(from: secrets)  // every secret is there before anything is journaled
        let locks = try RunLocks(MigrationProcedure.self, settings: settings, directory: state.locks)
        defer { locks.release() }
        settings.old = try await pinFirstContact(settings.old)
        if !settings.new.isVirtual { settings.new = try await pinFirstContact(settings.new) }
        let chosen = await withMethod(settings)
        settings = chosen.settings
        if let line = chosen.line { note(line) }
        let journal = try journal()
        let record = try journal.createRun(
            MigrationProcedure.self,
            playbook: playbook,
            inventory: inventoryFile.path,
            settings: settings
        )
        note("Run \(record.id): \(settings.old.name) → \(settings.new.name)")
        return try await execute(try migrationRunner(record, journal: journal))
    }

    /// `appliancectl run decommission.yml` for a physical appliance: refused unless a migration or backup of it
    /// was verified (or `force` with the name typed back), then journaled and run.
    public func decommission(
        _ entry: ApplianceEntry,
        playbook: String,
        force: Bool,
        confirmName: String?
    ) async throws -> RunOutcome {
        let name = entry.name
        let password = try secrets.adminPassword(for: entry).reveal()
        let locks = try RunLocks([name], directory: state.locks, command: "appliancectl run/resume")
        defer { locks.release() }
        let reference = try await pinFirstContact(try reference(entry))
        guard let address = reference.address, let pin = reference.pin.flatMap(TLSPin.init) else {
            throw MigrationError(.preflight, "\(name) has no address in the inventory")
        }
        var box = try BoxClient(name: name, address: address, pin: pin, passwords: [password])
        let status: StatusResponse = try await box.session().call(.status)
        let journal = try journal()
        let evidence: String
        if let found = try journal.verifiedEvidence(applianceId: status.applianceId) {
            note("\(name) (\(status.applianceId)) has \(found)")
            evidence = found
        } else if force && confirmName == name {
            evidence = "none; forced with --force --confirm-name \(name)"
        } else {
            throw MigrationError(
                .refused,
                "\(name) has no verified migration or verified backup in \(journal.url.path); nothing was changed. "
                    + "Migrate or back it up first, or give --force --confirm-name \(name)"
            )
        }
        let record = try journal.createRun(
            DecommissionProcedure.self,
            playbook: playbook,
            inventory: inventoryFile.path,
            settings: DecommissionSettings(
                appliance: reference,
                passwordSecret: entry.passwordSecret,
                evidence: evidence
            )
        )
        return try await execute(try decommissionRunner(record, journal: journal, password: password))
    }

    /// Pins a physical box at first contact, as every other command does, and records the pin.
    func pinFirstContact(_ reference: BoxReference) async throws -> BoxReference {
        guard reference.pin == nil, let address = reference.address, let parsed = HostPort(address) else {
            return reference
        }
        let (pin, _) = try await PinnedHTTPClient.fetchPeerCertificate(host: parsed.host, port: parsed.port)
        try pins.record(pin, for: address)
        _ = try? Inventory.record(
            appliance: reference.name,
            address: nil,
            id: nil,
            pin: pin.description,
            in: inventoryFile
        )
        note("First contact with \(reference.name) at \(address): recorded its key pin \(pin)")
        var pinned = reference
        pinned.pin = pin.description
        return pinned
    }
}

extension MigrationProcedure {
    /// The plan of a migration with these settings, as `run --dry-run` prints it.
    public static func planLines(_ settings: MigrationSettings) -> [String] {
        var lines = ["Plan (dry run, nothing changes): \(settings.old.name) → \(settings.new.name)"]
        for step in plan(for: settings) {
            var line = "  \(step.title)"
            if step == .install && settings.new.isVirtual {
                line += " — provisions \(settings.new.name) through libvirt"
            }
            if step == .package { line += " — from \(settings.repository ?? "no repository (versions must match)")" }
            if step == .cutover, let site = settings.cutover.siteAddress { line += " — site address \(site)" }
            if step.isDestructive { line += "  [asks first unless --yes]" }
            lines.append(line)
        }
        return lines
    }
}
