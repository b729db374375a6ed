import Foundation
import Yams

/// Reads playbook text into a `Playbook`, with the inventory's helpers for syntax errors, structure, keys and
/// types (`InventoryDocument.Builder`) and its spelling rules (`InventoryRules`).
struct PlaybookParser {
    typealias Field = (key: Node, name: String, value: Node)

    static let commonKeys = ["playbook", "description"]
    static let migrateKeys = [
        "old", "new", "method", "backup", "certificate", "packages", "cutover", "decommission",
    ]
    static let applianceKeys = ["appliance"]
    static let backupKeys = ["password", "include_history"]
    static let certificateKeys = ["passphrase", "hostname_from_old"]
    static let packagesKeys = ["repository"]
    static let cutoverKeys = ["method", "site_address", "hook"]
    static let cutoverMethods = ["none", "shared-ip", "hook"]
    /// The section each key of a migrate playbook's sections belongs to, for a key written at the top level.
    static let migrateSections: [String: String] = {
        var sections: [String: String] = [:]
        let keys = [
            ("backup", backupKeys), ("certificate", certificateKeys), ("packages", packagesKeys),
            ("cutover", cutoverKeys),
        ]
        for (section, sectionKeys) in keys {
            for key in sectionKeys { sections[key] = section }
        }
        return sections
    }()

    /// The keys only playbooks of `kind` have.
    static func keys(of kind: PlaybookKind) -> [String] {
        switch kind {
        case .migrate: migrateKeys
        case .provision, .decommission: applianceKeys
        case .upgrade: upgradeKeys
        case .upgradeFailover: pairUpgradeKeys
        }
    }

    static let allKeys =
        commonKeys + migrateKeys + applianceKeys
        + (upgradeKeys + pairUpgradeKeys).filter { !migrateKeys.contains($0) }

    static let kindsSentence =
        "'playbook: migrate', 'playbook: provision', 'playbook: decommission', 'playbook: upgrade' or 'playbook: upgrade-failover'"

    let file: String
    let builder: InventoryDocument.Builder

    init(file: String) {
        self.file = file
        self.builder = InventoryDocument.Builder(file: file)
    }

    func parse(_ text: String) throws -> Playbook {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw InventoryDocument.syntaxError(error, text: text, file: file, document: "the playbook")
        } catch {
            throw InventoryError(
                code: .syntax,
                message: "cannot read the playbook as YAML (\(error)); fix the YAML",
                location: .init(file: file)
            )
        }
        do {
            return try playbook(root)
        } catch var error as InventoryError where error.code == .invalidInventory {
            // The inventory's helpers file their refusals under inventory rules; here they break playbook rules.
            error.code = .invalidPlaybook
            throw error
        }
    }

    // MARK: Errors

    func error(_ message: String, at node: Node) -> InventoryError {
        builder.error(.invalidPlaybook, message, at: node)
    }

    /// The node to point at for a key's value: the key itself when the value is missing (an empty scalar has
    /// the position of the next token).
    static func position(of field: Field) -> Node {
        InventoryDocument.Builder.isNull(field.value) ? field.key : field.value
    }

    static func located(_ value: String, at node: Node) -> Located<String> {
        // Nodes composed from text always have a mark.
        Located(value, line: node.mark?.line ?? 1, column: node.mark?.column ?? 1)
    }

    // MARK: Document

    func playbook(_ root: Node?) throws -> Playbook {
        let empty = "the playbook is empty; start it with \(Self.kindsSentence) (see the files in Playbooks/)"
        guard let root else { throw builder.error(.invalidPlaybook, empty, line: 1, column: 1) }
        var seen = Set<InventoryDocument.Builder.NodePosition>()
        try builder.checkStructure(root, seen: &seen)
        guard let top = try builder.pairs(root, what: "the playbook") else { throw error(empty, at: root) }

        guard let kindField = top.first(where: { $0.name == "playbook" }) else {
            if let unknown = top.first(where: { !Self.allKeys.contains($0.name) }) {
                throw builder.unknownKeyError(
                    unknown.key,
                    keyName: unknown.name,
                    scope: " at the top level",
                    allowed: Self.allKeys
                )
            }
            throw error("the playbook does not say what it does; add \(Self.kindsSentence) as its first line", at: root)
        }
        let kind = try self.kind(kindField)
        let allowed = Self.commonKeys + Self.keys(of: kind)
        for field in top where !allowed.contains(field.name) {
            let owners = PlaybookKind.allCases.filter { Self.keys(of: $0).contains(field.name) }
            if !owners.isEmpty {
                throw error(
                    "'\(field.name)' belongs to \(owners.map(\.rawValue).joined(separator: " and ")) playbooks; "
                        + "this is a \(kind.rawValue) playbook, which takes "
                        + Self.keys(of: kind).map { "'\($0)'" }.joined(separator: ", "),
                    at: field.key
                )
            }
            if kind == .migrate, let section = Self.migrateSections[field.name] {
                throw error(
                    "'\(field.name)' goes under '\(section):' (indented below it), not at the top level",
                    at: field.key
                )
            }
            throw builder.unknownKeyError(
                field.key,
                keyName: field.name,
                scope: " in a \(kind.rawValue) playbook",
                allowed: allowed
            )
        }

        let fields = Dictionary(top.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let description = try fields["description"].flatMap { try builder.string($0.value, what: "'description'") }
        let body: Playbook.Body
        switch kind {
        case .migrate:
            body = .migrate(try migration(fields, kindKey: kindField.key))
        case .provision:
            body = .provision(
                appliance: try name(
                    "appliance",
                    in: fields,
                    kindKey: kindField.key,
                    need: "a provision playbook needs 'appliance: NAME', the virtual appliance of the inventory to "
                        + "create"
                )
            )
        case .decommission:
            body = .decommission(
                appliance: try name(
                    "appliance",
                    in: fields,
                    kindKey: kindField.key,
                    need: "a decommission playbook needs 'appliance: NAME', the appliance of the inventory to "
                        + "factory-reset and shut down"
                )
            )
        case .upgrade:
            body = .upgrade(try upgrade(fields, kindKey: kindField.key))
        case .upgradeFailover:
            body = .upgradeFailover(try pairUpgrade(fields, kindKey: kindField.key))
        }
        return Playbook(file: file, description: description, body: body)
    }

    func kind(_ field: Field) throws -> PlaybookKind {
        let names = PlaybookKind.allCases.map(\.rawValue)
        let rule = "'playbook' must be migrate, provision, decommission, upgrade or upgrade-failover"
        guard let text = try builder.string(field.value, what: "'playbook'") else {
            throw error(rule, at: Self.position(of: field))
        }
        guard let kind = PlaybookKind(rawValue: text) else {
            throw error("\(rule), not '\(text)'\(Inventory.suggestion(for: text, among: names))", at: field.value)
        }
        return kind
    }

    // MARK: Values

    /// The appliance name under `key`, with its position; `need` is the message when it is missing.
    func name(_ key: String, in fields: [String: Field], kindKey: Node, need: String) throws -> Located<String> {
        guard let field = fields[key], let text = try builder.string(field.value, what: "'\(key)'") else {
            throw error(need, at: fields[key]?.key ?? kindKey)
        }
        guard InventoryRules.isValidName(text) else {
            throw error("bad appliance name '\(text)' in '\(key)': \(InventoryRules.nameRule)", at: field.value)
        }
        return Self.located(text, at: field.value)
    }

    /// The secret NAME under a key, refusing anything else: a value that is not shaped like an environment
    /// variable name is taken for the secret itself.
    func secretName(_ field: Field, what: String, holds: String, example: String) throws -> String? {
        guard let text = try builder.string(field.value, what: what) else { return nil }
        guard InventoryRules.isValidSecretName(text) else {
            throw builder.error(
                .secretInPlaybook,
                "\(what) must be the NAME of the secret that holds \(holds) (capital letters, digits and '_', such "
                    + "as \(example)), not the secret itself: secrets never go in a playbook; put it in the "
                    + "environment variable \(example) or the secrets file, and write that name here",
                at: field.value
            )
        }
        return text
    }

    func bool(_ field: Field?, what: String) throws -> Bool? {
        guard let field, !InventoryDocument.Builder.isNull(field.value) else { return nil }
        guard case .scalar = field.value, InventoryDocument.Builder.tagName(field.value) == .bool,
            let flag = field.value.bool
        else {
            throw error("\(what) must be true or false", at: field.value)
        }
        return flag
    }

    /// The fields of a section (a mapping under a top-level key), refusing unknown keys; nil when it is null.
    func section(_ field: Field, keys: [String]) throws -> [String: Field]? {
        guard let pairs = try builder.pairs(field.value, what: "'\(field.name)'") else { return nil }
        for pair in pairs where !keys.contains(pair.name) {
            throw builder.unknownKeyError(pair.key, keyName: pair.name, scope: " in '\(field.name)'", allowed: keys)
        }
        return Dictionary(pairs.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
    }

    // MARK: Migration

    func migration(_ fields: [String: Field], kindKey: Node) throws -> MigrationSpec {
        let old = try name(
            "old",
            in: fields,
            kindKey: kindKey,
            need: "a migrate playbook needs 'old: NAME', the physical appliance of the inventory to migrate from"
        )
        let new = try name(
            "new",
            in: fields,
            kindKey: kindKey,
            need: "a migrate playbook needs 'new: NAME', the appliance of the inventory to migrate to"
        )
        if let newField = fields["new"], new.value == old.value {
            throw error(
                "'new' must differ from 'old': both are '\(old.value)'; a migration moves one appliance to another",
                at: newField.value
            )
        }

        let needPassword =
            "'backup' needs 'password: NAME', the name of the secret (environment variable or secrets-file line) "
            + "that holds the backup password, such as BACKUP_PASSWORD"
        guard let backupField = fields["backup"] else {
            throw error("a migrate playbook needs 'backup:' with 'password: NAME'; \(needPassword)", at: kindKey)
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

        let certificate = try fields["certificate"].flatMap { try section($0, keys: Self.certificateKeys) } ?? [:]
        let passphrase = try certificate["passphrase"].flatMap {
            try secretName(
                $0,
                what: "'passphrase' in 'certificate'",
                holds: "the certificate passphrase",
                example: "CERTIFICATE_PASSPHRASE"
            )
        }

        let packages = try fields["packages"].flatMap { try section($0, keys: Self.packagesKeys) } ?? [:]
        let repository = try packages["repository"].flatMap { try self.repository($0) }

        return MigrationSpec(
            old: old,
            new: new,
            backupPasswordSecret: password,
            includeHistory: try bool(backup["include_history"], what: "'include_history' in 'backup'")
                ?? MigrationSpec.defaultIncludeHistory,
            certificatePassphraseSecret: passphrase,
            hostnameFromOld: try bool(certificate["hostname_from_old"], what: "'hostname_from_old' in 'certificate'")
                ?? MigrationSpec.defaultHostnameFromOld,
            repository: repository,
            cutover: try cutover(fields["cutover"]),
            decommission: try bool(fields["decommission"], what: "'decommission'") ?? MigrationSpec.defaultDecommission,
            method: try method(fields["method"])
        )
    }

    /// `method: live | backup-restore`; a cutover method written here is pointed to its section.
    func method(_ field: Field?) throws -> MigrationMethod? {
        guard let field, let text = try builder.string(field.value, what: "'method'") else { return nil }
        if let method = MigrationMethod(rawValue: text) { return method }
        if Self.cutoverMethods.contains(text) {
            throw error(
                "'method' goes under 'cutover:' (indented below it), not at the top level, when it says how clients "
                    + "move ('\(text)'); the top-level 'method' says how the data moves: live or backup-restore",
                at: field.key
            )
        }
        let names = MigrationMethod.allCases.map(\.rawValue)
        throw error(
            "'method' must be live or backup-restore, not '\(text)'\(Inventory.suggestion(for: text, among: names))",
            at: field.value
        )
    }

    func cutover(_ field: Field?) throws -> Cutover {
        guard let field, let cutover = try section(field, keys: Self.cutoverKeys) else { return .none }
        var method = "none"
        var methodNode = field.key
        if let methodField = cutover["method"],
            let text = try builder.string(methodField.value, what: "'method' in 'cutover'")
        {
            guard Self.cutoverMethods.contains(text) else {
                throw error(
                    "'method' in 'cutover' must be none, shared-ip or hook, not '\(text)'"
                        + Inventory.suggestion(for: text, among: Self.cutoverMethods),
                    at: methodField.value
                )
            }
            method = text
            methodNode = methodField.value
        }

        var siteAddress: String?
        if let siteField = cutover["site_address"],
            let text = try builder.string(siteField.value, what: "'site_address' in 'cutover'")
        {
            if method == "none" {
                throw error(
                    "'site_address' in 'cutover' is only used with 'method: shared-ip' or 'method: hook'; set the "
                        + "method or remove the line",
                    at: siteField.key
                )
            }
            if let problem = InventoryRules.addressProblem(text) {
                throw error("bad 'site_address' in 'cutover': \(problem)", at: siteField.value)
            }
            siteAddress = text
        }

        var command: String?
        if let hookField = cutover["hook"],
            let text = try builder.string(hookField.value, what: "'hook' in 'cutover'")
        {
            if method != "hook" {
                throw error(
                    "'hook' in 'cutover' is only used with 'method: hook' (this cutover's method is \(method)); "
                        + "set 'method: hook' or remove the line",
                    at: hookField.key
                )
            }
            let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.isEmpty {
                throw error(
                    "'hook' in 'cutover' is empty; write the shell command that moves the site address",
                    at: hookField.value
                )
            }
            command = trimmed
        }

        if method == "none" { return .none }
        guard let siteAddress else {
            throw error(
                "'method: \(method)' needs 'site_address: HOST:PORT' in 'cutover', the address clients use, such as "
                    + "127.0.0.12:8443",
                at: methodNode
            )
        }
        if method == "shared-ip" { return .sharedIP(siteAddress: siteAddress) }
        guard let command else {
            throw error(
                "'method: hook' needs 'hook: COMMAND' in 'cutover', the shell command that moves the site address "
                    + "(it runs with environment variables describing the move)",
                at: methodNode
            )
        }
        return .hook(siteAddress: siteAddress, command: command)
    }
}
