public import Foundation

/// A procedure for `appliancectl run PLAYBOOK --inventory FILE`, as read from a playbook file (YAML).
///
/// A playbook is only ever handed out parsed and checked on its own: `load(from:)` and `parse(_:file:)` refuse
/// unknown keys, keys of another kind of playbook, missing keys, wrong types, bad names and addresses, and
/// secret values where the NAME of a secret belongs. `validate(against:)` then checks its appliance names
/// against an inventory. Every refusal names the playbook's `file:line:column`.
public struct Playbook: Sendable, Hashable {
    /// What the playbook does, with what belongs to that kind only.
    public enum Body: Sendable, Hashable {
        /// Move a physical appliance to a new one (`playbook: migrate`).
        case migrate(MigrationSpec)
        /// Create the virtual appliance `appliance` of the inventory (`playbook: provision`).
        case provision(appliance: Located<String>)
        /// Factory-reset and shut down `appliance` (`playbook: decommission`).
        case decommission(appliance: Located<String>)
        /// Upgrade the software of one appliance, with a backup first and a rollback on failure
        /// (`playbook: upgrade`).
        case upgrade(UpgradeSpec)
        /// Upgrade both boxes of a failover pair, synchronously or asynchronously (`playbook: upgrade-failover`).
        case upgradeFailover(PairUpgradeSpec)
    }

    /// The file name used in messages (as given to `parse(_:file:)`, or the path given to `load(from:)`).
    public let file: String
    /// The free text of `description:`, if any.
    public let description: String?
    public let body: Body

    init(file: String, description: String?, body: Body) {
        self.file = file
        self.description = description
        self.body = body
    }

    /// The kind of playbook, from `playbook:`.
    public var kind: PlaybookKind {
        switch body {
        case .migrate: .migrate
        case .provision: .provision
        case .decommission: .decommission
        case .upgrade: .upgrade
        case .upgradeFailover: .upgradeFailover
        }
    }

    /// The names of the appliances the playbook touches, in the order of the file, to lock before running.
    public var targetNames: [String] {
        switch body {
        case .migrate(let spec): [spec.old.value, spec.new.value]
        case .provision(let appliance), .decommission(let appliance): [appliance.value]
        case .upgrade(let spec): [spec.box.value]
        case .upgradeFailover(let spec): [spec.a.value, spec.b.value]
        }
    }

    /// Reads and checks the playbook file at `url`.
    ///
    /// - Parameter url: The playbook file.
    /// - Throws: `InventoryError` naming the file, line and column at fault and what to do.
    public static func load(from url: URL) throws -> Playbook {
        let text = try InventoryFile.readText(
            of: url,
            document: "playbook",
            ifMissing: "check the path (the shipped playbooks are in Playbooks/)"
        )
        return try parse(text, file: InventoryFile.displayName(of: url))
    }

    /// Checks playbook text.
    ///
    /// - Parameters:
    ///   - text: The YAML text.
    ///   - file: The file name to put in messages, such as `migrate.yml`.
    /// - Throws: `InventoryError` naming the file, line and column at fault and what to do.
    public static func parse(_ text: String, file: String) throws -> Playbook {
        try PlaybookParser(file: file).parse(text)
    }

    /// Checks the playbook's appliance names against `inventory`: each must be an appliance there, of the kind
    /// the playbook needs (a migration's `old` is physical; a provisioned appliance is virtual).
    ///
    /// - Throws: `InventoryError` at the playbook's `file:line:column` of the offending name: code
    ///   `.unknownAppliance` for a name the inventory does not know, `.invalidPlaybook` for one of the wrong kind.
    public func validate(against inventory: Inventory) throws {
        switch body {
        case .migrate(let spec):
            let old = try entry(spec.old, in: inventory)
            if old.isVirtual {
                throw error(
                    "'old' must be a physical appliance: '\(old.name)' is virtual in \(inventory.file); a migration "
                        + "moves a physical box to a new appliance"
                        + Self.choice(of: "physical", in: inventory) { !$0.isVirtual },
                    at: spec.old
                )
            }
            // `parse` already refused a `new` equal to `old`.
            _ = try entry(spec.new, in: inventory)
        case .provision(let appliance):
            let entry = try entry(appliance, in: inventory)
            if !entry.isVirtual {
                throw error(
                    "'appliance' must be a virtual appliance: '\(entry.name)' is physical in \(inventory.file); "
                        + "provisioning creates virtual machines only"
                        + Self.choice(of: "virtual", in: inventory) { $0.isVirtual },
                    at: appliance
                )
            }
        case .decommission(let appliance):
            _ = try entry(appliance, in: inventory)
        case .upgrade(let spec):
            _ = try entry(spec.box, in: inventory)
        case .upgradeFailover(let spec):
            _ = try entry(spec.a, in: inventory)
            _ = try entry(spec.b, in: inventory)
        }
    }

    private func entry(_ name: Located<String>, in inventory: Inventory) throws -> ApplianceEntry {
        if let entry = inventory.appliances.first(where: { $0.name == name.value }) { return entry }
        let names = inventory.appliances.map(\.name)
        throw InventoryError(
            code: .unknownAppliance,
            message: "no appliance '\(name.value)' in \(inventory.file)"
                + Inventory.suggestion(for: name.value, among: names)
                + "; \(Inventory.known("appliances", names)) — fix the name here or add it to the inventory",
            location: name.location(in: file)
        )
    }

    private func error(_ message: String, at name: Located<String>) -> InventoryError {
        InventoryError(code: .invalidPlaybook, message: message, location: name.location(in: file))
    }

    /// `; the physical appliances are: a, b` (or that there are none), for messages about a wrong kind.
    private static func choice(
        of kind: String,
        in inventory: Inventory,
        where matches: (ApplianceEntry) -> Bool
    ) -> String {
        let names = inventory.appliances.filter(matches).map(\.name)
        return names.isEmpty
            ? "; \(inventory.file) declares no \(kind) appliances"
            : "; \(kind) appliances: \(names.joined(separator: ", "))"
    }
}

/// The kinds of playbook, as written after `playbook:`.
public enum PlaybookKind: String, Sendable, Hashable, CaseIterable {
    case migrate
    case provision
    case decommission
    case upgrade
    case upgradeFailover = "upgrade-failover"
}

/// A value read from a playbook with the line and column where it is written, so that a later check (such as
/// `Playbook.validate(against:)`) can point at it. Lines and columns start at 1; columns count Unicode scalars.
public struct Located<Value: Sendable & Hashable>: Sendable, Hashable {
    public let value: Value
    public let line: Int
    public let column: Int

    public init(_ value: Value, line: Int, column: Int) {
        self.value = value
        self.line = line
        self.column = column
    }

    /// Where the value is, for an error about it.
    func location(in file: String) -> InventoryError.Location {
        .init(file: file, line: line, column: column)
    }
}

/// What a migrate playbook says: which appliances, which secrets, and what to do around the move.
public struct MigrationSpec: Sendable, Hashable {
    /// The physical appliance to migrate from (`old:`).
    public let old: Located<String>
    /// The appliance to migrate to, virtual or physical (`new:`); never the same as `old`.
    public let new: Located<String>
    /// The NAME of the secret holding the backup password (`backup.password:`).
    public let backupPasswordSecret: String
    /// Whether the backup carries the history (`backup.include_history:`, default true).
    public let includeHistory: Bool
    /// The NAME of the secret holding the certificate passphrase (`certificate.passphrase:`); nil for a random
    /// one-time passphrase per run.
    public let certificatePassphraseSecret: String?
    /// Whether the new appliance gets the old one's hostname before the certificate is assigned
    /// (`certificate.hostname_from_old:`, default true).
    public let hostnameFromOld: Bool
    /// A directory path or http(s) URL of a package repository (`packages.repository:`), if any.
    public let repository: String?
    /// How clients are moved to the new appliance (`cutover:`, default `.none`).
    public let cutover: Cutover
    /// Whether the old appliance is factory-reset and shut down after a verified migration
    /// (`decommission:`, default false).
    public let decommission: Bool
    /// How the site's data moves (`method:`); nil when the playbook names none: the run then chooses `live`
    /// where both boxes support failover sync, else `backup-restore`.
    public let method: MigrationMethod?

    /// The defaults of the optional keys.
    static let defaultIncludeHistory = true
    static let defaultHostnameFromOld = true
    static let defaultDecommission = false
}

/// How a migration moves the site's data (`method:` of a migrate playbook).
public enum MigrationMethod: String, Codable, Sendable, Hashable, CaseIterable {
    /// The vendor manual's six steps: freeze, back up, restore, transfer; the site is down for all of it.
    case backupRestore = "backup-restore"
    /// The new appliance syncs as a failover backup of the old one while it serves; only the last delta is moved
    /// inside the freeze.
    case live
}

/// How clients are moved from the old appliance to the new one at the end of a migration.
public enum Cutover: Codable, Sendable, Hashable {
    /// Clients are moved by hand (`method: none`, the default).
    case none
    /// The new appliance takes over the site address (`method: shared-ip`), `HOST:PORT`.
    case sharedIP(siteAddress: String)
    /// A shell command moves the site address (`method: hook`); it runs with environment variables describing
    /// the move.
    case hook(siteAddress: String, command: String)

    /// The `HOST:PORT` clients use, for the methods that have one.
    public var siteAddress: String? {
        switch self {
        case .none: nil
        case .sharedIP(let address), .hook(let address, _): address
        }
    }
}
