import Foundation
import Yams

/// What an upgrade playbook says: which appliance, to what, with which backup secret, and what to do when the
/// upgrade fails.
public struct UpgradeSpec: Sendable, Hashable {
    /// The appliance to upgrade (`box:`).
    public let box: Located<String>
    /// The site version to reach (`target: 24.2.0`); nil for every applicable update (`target: all`, the default).
    public let target: String?
    /// A directory path or http(s) URL of a package repository (`packages.repository:`); nil: the box's own
    /// update source.
    public let repository: String?
    /// The NAME of the secret holding the backup password (`backup.password:`).
    public let backupPasswordSecret: String
    /// Whether the backup carries the history (`backup.include_history:`, default true).
    public let includeHistory: Bool
    /// What happens when an install or the verification after it fails (`rollback:`, default automatic).
    public let rollback: UpgradeRollback
    /// Offline (`packages.mode: offline`): the packages come from a repository on this machine, uploaded to the
    /// box; `repository` is then that repository. nil: online, the box reads its update source itself.
    public let offline: OfflinePackages?

    public init(
        box: Located<String>,
        target: String?,
        repository: String?,
        backupPasswordSecret: String,
        includeHistory: Bool,
        rollback: UpgradeRollback,
        offline: OfflinePackages? = nil
    ) {
        self.box = box
        self.target = target
        self.repository = repository
        self.backupPasswordSecret = backupPasswordSecret
        self.includeHistory = includeHistory
        self.rollback = rollback
        self.offline = offline
    }
}

/// An offline upgrade's packages (`packages: {mode: offline, repository: …, vendor_key: …}`): this machine turns
/// the box's download key into package files from `repository` (a directory here, or an http(s) URL), verifies them
/// with the vendor key and uploads them (manual install).
public struct OfflinePackages: Sendable, Hashable {
    /// The vendor's public key (PEM file on this machine) the fetched packages are verified with before upload.
    public let vendorKey: Located<String>

    public init(vendorKey: Located<String>) {
        self.vendorKey = vendorKey
    }
}

/// The parts of an upgrade playbook that do not name boxes.
struct UpgradeParts {
    var target: String?
    var repository: String?
    var backupPasswordSecret: String
    var includeHistory: Bool
    var rollback: UpgradeRollback
    var offline: OfflinePackages?
}

/// What an upgrade run does when an install or the verification after it fails (`rollback:`).
public enum UpgradeRollback: String, Codable, Sendable, Hashable, CaseIterable {
    /// The box goes back to its previous software slot, and the run proves it (the default).
    case automatic
    /// The run stops and leaves the box as the failure left it; the report says how to roll back by hand.
    case manual
}

extension PlaybookParser {
    static let upgradeKeys = ["box", "target", "packages", "backup", "rollback"]
    static let upgradePackagesKeys = ["mode", "repository", "vendor_key"]

    func upgrade(_ fields: [String: Field], kindKey: Node) throws -> UpgradeSpec {
        let box = try name(
            "box",
            in: fields,
            kindKey: kindKey,
            need: "an upgrade playbook needs 'box: NAME', the appliance of the inventory to upgrade"
        )
        let parts = try upgradeParts(fields, kindKey: kindKey)
        return UpgradeSpec(
            box: box,
            target: parts.target,
            repository: parts.repository,
            backupPasswordSecret: parts.backupPasswordSecret,
            includeHistory: parts.includeHistory,
            rollback: parts.rollback,
            offline: parts.offline
        )
    }

    /// What every upgrade playbook says besides its boxes: the target, the repository, the backup's secret and
    /// history, the rollback.
    func upgradeParts(_ fields: [String: Field], kindKey: Node) throws -> UpgradeParts {
        var target: String?
        if let field = fields["target"], let text = try builder.string(field.value, what: "'target'"), text != "all" {
            guard Self.isVersion(text) else {
                throw error(
                    "'target' must be a site version such as 24.2.0, or 'all' for every applicable update, not "
                        + "'\(text)'",
                    at: field.value
                )
            }
            target = text
        }
        let needPassword =
            "'backup' needs 'password: NAME', the name of the secret (environment variable or secrets-file line) "
            + "that holds the backup password, such as BACKUP_PASSWORD"
        guard let backupField = fields["backup"] else {
            throw error("an upgrade playbook needs 'backup:' with 'password: NAME'; \(needPassword)", at: kindKey)
        }
        let backup = try section(backupField, keys: Self.backupKeys) ?? [:]
        guard let passwordField = backup["password"],
            let password = try secretName(
                passwordField,
                what: "'password' in 'backup'",
                holds: "the backup password",
                example: "BACKUP_PASSWORD"
            )
        else {
            throw error(needPassword, at: backup["password"]?.key ?? backupField.key)
        }
        let packages = try fields["packages"].flatMap { try section($0, keys: Self.upgradePackagesKeys) } ?? [:]
        let offline = try offlinePackages(packages, section: fields["packages"])
        var rollback = UpgradeRollback.automatic
        if let field = fields["rollback"], let text = try builder.string(field.value, what: "'rollback'") {
            guard let parsed = UpgradeRollback(rawValue: text) else {
                let names = UpgradeRollback.allCases.map(\.rawValue)
                throw error(
                    "'rollback' must be automatic or manual, not '\(text)'"
                        + Inventory.suggestion(for: text, among: names),
                    at: field.value
                )
            }
            rollback = parsed
        }
        return UpgradeParts(
            target: target,
            repository: try packages["repository"].flatMap { try repository($0) },
            backupPasswordSecret: password,
            includeHistory: try bool(backup["include_history"], what: "'include_history' in 'backup'") ?? true,
            rollback: rollback,
            offline: offline
        )
    }

    /// `packages.mode` (online, the default, or offline) and what offline needs: a repository this machine reads
    /// and the vendor key to verify the packages with.
    func offlinePackages(_ packages: [String: Field], section: Field?) throws -> OfflinePackages? {
        var offline = false
        if let field = packages["mode"], let text = try builder.string(field.value, what: "'mode' in 'packages'") {
            guard text == "online" || text == "offline" else {
                throw error(
                    "'mode' in 'packages' must be online (the box reads its update source) or offline (this machine "
                        + "fetches the packages with the box's download key and uploads them), not '\(text)'"
                        + Inventory.suggestion(for: text, among: ["online", "offline"]),
                    at: field.value
                )
            }
            offline = text == "offline"
        }
        let keyField = packages["vendor_key"]
        guard offline, let section else {
            if let keyField {
                throw error(
                    "'vendor_key' in 'packages' is read only with 'mode: offline' (online, the box verifies the "
                        + "packages with its own vendor key); remove it, or write 'mode: offline'",
                    at: keyField.key
                )
            }
            return nil
        }
        guard packages["repository"] != nil else {
            throw error(
                "'packages' with 'mode: offline' needs 'repository: DIR or URL', where this machine reads the "
                    + "package files (a directory here, or an http(s) URL serving index.json and the packages)",
                at: packages["mode"]?.key ?? section.key
            )
        }
        let need =
            "'packages' with 'mode: offline' needs 'vendor_key: FILE', the vendor's public key (PEM) on this machine "
            + "that the fetched packages are verified with before they are uploaded"
        guard let keyField, let path = try builder.string(keyField.value, what: "'vendor_key' in 'packages'") else {
            throw error(need, at: keyField?.value ?? packages["mode"]?.key ?? section.key)
        }
        guard !path.contains("://"), !path.isEmpty else {
            throw error("'vendor_key' in 'packages' is a file path on this machine, not '\(path)'", at: keyField.value)
        }
        return OfflinePackages(vendorKey: Self.located(path, at: keyField.value))
    }

    /// Two to four dot-separated numbers, as package versions are written.
    static func isVersion(_ text: String) -> Bool {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        return (2...4).contains(parts.count)
            && parts.allSatisfy { !$0.isEmpty && $0.allSatisfy(\.isASCII) && Int($0) != nil }
    }
}
