import Foundation
import Yams

/// What a failover pair upgrade playbook says: the pair, the manual's method, and what every upgrade says.
public struct PairUpgradeSpec: Sendable, Hashable {
    /// `mode: sync` (A first, A stays primary) or `mode: async` (B first, B takes over the site).
    public enum Mode: String, Sendable, Hashable, CaseIterable {
        case sync, async
    }

    public let mode: Mode
    /// The primary, the box the site address resolves to (`a:`), and its backup (`b:`).
    public let a: Located<String>
    public let b: Located<String>
    public let target: String?
    public let repository: String?
    public let backupPasswordSecret: String
    public let includeHistory: Bool
    public let rollback: UpgradeRollback
    /// How the site address moves to B (async: required); sync uses its address to measure the downtime.
    public let cutover: Cutover
}

extension PlaybookParser {
    static let pairUpgradeKeys = ["mode", "a", "b", "target", "packages", "backup", "rollback", "cutover"]

    func pairUpgrade(_ fields: [String: Field], kindKey: Node) throws -> PairUpgradeSpec {
        let modes = PairUpgradeSpec.Mode.allCases.map(\.rawValue)
        guard let modeField = fields["mode"], let text = try builder.string(modeField.value, what: "'mode'") else {
            throw error(
                "an upgrade-failover playbook needs 'mode: sync' (A first, A stays primary, the site is down while A "
                    + "upgrades) or 'mode: async' (B first, B takes over the site: minimal downtime)",
                at: fields["mode"]?.key ?? kindKey
            )
        }
        guard let mode = PairUpgradeSpec.Mode(rawValue: text) else {
            throw error(
                "'mode' must be sync or async, not '\(text)'" + Inventory.suggestion(for: text, among: modes),
                at: modeField.value
            )
        }
        let a = try name(
            "a",
            in: fields,
            kindKey: kindKey,
            need: "an upgrade-failover playbook needs 'a: NAME', the primary of the pair (the box the site address "
                + "resolves to)"
        )
        let b = try name(
            "b",
            in: fields,
            kindKey: kindKey,
            need: "an upgrade-failover playbook needs 'b: NAME', the backup of the pair"
        )
        guard a.value != b.value else {
            throw error("'a' and 'b' must be two appliances, not both '\(a.value)'", at: fields["b"]!.value)
        }
        let cutover = try cutover(fields["cutover"])
        if mode == .async, cutover.siteAddress == nil {
            throw error(
                "mode: async moves the site address to B: give 'cutover:' with 'method: shared-ip' (or 'hook') and "
                    + "'site_address: HOST:PORT'",
                at: fields["cutover"]?.key ?? modeField.key
            )
        }
        let parts = try upgradeParts(fields, kindKey: kindKey)
        if parts.offline != nil, let packages = fields["packages"] {
            throw error(
                "a failover pair upgrades online: both boxes read 'packages.repository' (or their own update "
                    + "source); remove 'mode: offline', or upgrade each box with upgrade-single.yml offline",
                at: packages.key
            )
        }
        return PairUpgradeSpec(
            mode: mode,
            a: a,
            b: b,
            target: parts.target,
            repository: parts.repository,
            backupPasswordSecret: parts.backupPasswordSecret,
            includeHistory: parts.includeHistory,
            rollback: parts.rollback,
            cutover: cutover
        )
    }
}
