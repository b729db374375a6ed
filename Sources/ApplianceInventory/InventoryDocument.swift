import Foundation
import Yams

/// An inventory file's text, its YAML tree with positions, and the validated model built from it.
///
/// Parsing keeps the tree so that recording (`Inventory.record`) can edit the text in place: every node carries
/// the line and column where it starts.
struct InventoryDocument {
    let text: String
    let file: String
    let inventory: Inventory
    /// Each appliance's key and value nodes, by name.
    let applianceNodes: [String: (key: Node, value: Node)]

    init(text: String, file: String) throws {
        self.text = text
        self.file = file
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw Self.syntaxError(error, text: text, file: file)
        } catch {
            throw InventoryError(
                code: .syntax,
                message: "cannot read the inventory as YAML (\(error)); fix the YAML",
                location: .init(file: file)
            )
        }
        var builder = Builder(file: file)
        guard let root else {
            throw builder.error(
                .invalidInventory,
                "the inventory is empty; add 'appliances:' (see Playbooks/inventory.example.yml)",
                line: 1,
                column: 1
            )
        }
        var seen = Set<Builder.NodePosition>()
        try builder.checkStructure(root, seen: &seen)
        self.inventory = try builder.build(root)
        self.applianceNodes = builder.applianceNodes
    }

    // MARK: Syntax errors

    /// Turns a Yams error into an `InventoryError` with a position, leaving out the text of the line: the line
    /// could hold a secret someone pasted by mistake. For the same reason the Yams error (whose description
    /// quotes the YAML) is not kept as the cause. `document` names the file's role in messages.
    static func syntaxError(
        _ error: YamlError,
        text: String,
        file: String,
        document: String = "the inventory"
    ) -> InventoryError {
        func located(_ problem: String, _ mark: Mark, _ context: YamlError.Context?) -> InventoryError {
            var message = "YAML syntax error: \(problem)"
            if let context {
                message += " (\(context.text) that starts at line \(context.mark.line), column \(context.mark.column))"
            }
            let lines = TextLines.split(text)
            let indentedWithTab =
                lines.indices.contains(mark.line - 1)
                && lines[mark.line - 1].prefix { $0 == " " || $0 == "\t" }.contains("\t")
            if indentedWithTab {
                message += "; indent with spaces, not tabs"
            } else {
                message +=
                    "; fix the YAML (values that start with '[', '{', '*', '&', '!', '%', '@' or '`' need quotes)"
            }
            return InventoryError(
                code: .syntax,
                message: message,
                location: .init(file: file, line: mark.line, column: mark.column)
            )
        }
        switch error {
        case .scanner(let context, let problem, let mark, _),
            .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            return located(problem, mark, context)
        case .reader(let problem, let offset, _, _):
            var location = InventoryError.Location(file: file)
            if let offset {
                let before = TextLines.split(String(text.prefix(offset)))
                location.line = before.count
                location.column = (before.last?.unicodeScalars.count ?? 0) + 1
            }
            return InventoryError(
                code: .syntax,
                message: "cannot read \(document): \(problem); save it as UTF-8 text",
                location: location
            )
        case .duplicatedKeysInMapping(let duplicates, let context):
            let key = duplicates.first ?? "?"
            let first = context.mark
            if let second = secondOccurrence(of: key, after: first, in: text) {
                return InventoryError(
                    code: .syntax,
                    message: "duplicate key '\(key)' (already at line \(first.line)); keep only one of them",
                    location: .init(file: file, line: second.line, column: second.column)
                )
            }
            return InventoryError(
                code: .syntax,
                message: "key '\(key)' appears more than once in this mapping; keep only one of them",
                location: .init(file: file, line: first.line, column: first.column)
            )
        default:
            return InventoryError(
                code: .syntax,
                message: "cannot read \(document) as YAML (\(error)); fix the YAML",
                location: .init(file: file)
            )
        }
    }

    /// Finds the repeated key that Yams reports only by its first position: the next line of the same block
    /// (same indentation) that starts with the same key.
    static func secondOccurrence(of key: String, after first: Mark, in text: String) -> (line: Int, column: Int)? {
        let lines = TextLines.split(text)
        let indent = first.column - 1
        for index in first.line..<lines.count {
            let line = lines[index]
            guard !TextLines.isBlankOrComment(line) else { continue }
            let lineIndent = TextLines.indentation(of: line)
            if lineIndent < indent { return nil }
            guard lineIndent == indent else { continue }
            let content = line.dropFirst(indent)
            for spelling in [key, "\"\(key)\"", "'\(key)'"] where content.hasPrefix(spelling) {
                let rest = content.dropFirst(spelling.count)
                if rest.drop(while: { $0 == " " }).first == ":" { return (index + 1, indent + 1) }
            }
        }
        return nil
    }
}

// MARK: - Building the model

extension InventoryDocument {
    /// Walks the YAML tree, validating as it goes, and builds the model. Playbooks reuse its helpers for errors,
    /// keys, types and structure.
    struct Builder {
        let file: String
        var applianceNodes: [String: (key: Node, value: Node)] = [:]

        static let topLevelKeys = ["hypervisors", "appliances"]
        static let hypervisorKeys = ["uri", "pool", "network"]
        static let applianceKeys = ["physical", "virtual", "address", "id", "pin", "password"]
        static let physicalKeys = ["address"]
        static let virtualKeys = ["hypervisor", "memory_mib", "vcpus", "disk_gib"]

        init(file: String) {
            self.file = file
        }

        // MARK: Errors

        func error(_ code: InventoryError.Code, _ message: String, line: Int, column: Int) -> InventoryError {
            InventoryError(code: code, message: message, location: .init(file: file, line: line, column: column))
        }

        func error(_ code: InventoryError.Code, _ message: String, at node: Node) -> InventoryError {
            guard let mark = node.mark else {
                return InventoryError(code: code, message: message, location: .init(file: file))
            }
            return error(code, message, line: mark.line, column: mark.column)
        }

        /// The error for a key that names secret material.
        func secretKeyError(_ key: Node, keyName: String, scope: String, secretName: String) -> InventoryError {
            error(
                .secretInInventory,
                "'\(keyName)'\(scope) looks like a secret: secrets never go in the inventory; put it in the "
                    + "environment variable \(secretName) or the secrets file, and remove this line",
                at: key
            )
        }

        func unknownKeyError(_ key: Node, keyName: String, scope: String, allowed: [String]) -> InventoryError {
            var message = "unknown key '\(keyName)'\(scope)"
            if let close = Spelling.closest(to: keyName, among: allowed) {
                message += "; did you mean '\(close)'?"
            } else {
                message += "; allowed keys: \(allowed.joined(separator: ", "))"
            }
            return error(.invalidInventory, message, at: key)
        }

        // MARK: Structure

        /// Identifies a node by kind and position: an alias yields the anchored node again, at the same position.
        struct NodePosition: Hashable {
            var kind: Int
            var line: Int
            var column: Int
        }

        /// Refuses non-scalar keys, duplicate keys (including ones Yams lets through, like `1` and `"1"`) and
        /// aliases, which would make one line of text feed several entries.
        func checkStructure(_ node: Node, seen: inout Set<NodePosition>) throws {
            let kind: Int
            switch node {
            case .scalar(let scalar):
                // Empty scalars have no text of their own; their position is that of the next token.
                if scalar.string.isEmpty && scalar.style == .plain { return }
                kind = 0
            case .mapping: kind = 1
            case .sequence: kind = 2
            case .alias: kind = 3
            }
            if let mark = node.mark,
                !seen.insert(NodePosition(kind: kind, line: mark.line, column: mark.column)).inserted
            {
                throw error(
                    .invalidInventory,
                    "this value is reused elsewhere through an anchor and alias (&name, *name); write each value out",
                    at: node
                )
            }
            switch node {
            case .mapping(let mapping):
                var keys: [String: Node] = [:]
                for (key, value) in mapping {
                    guard case .scalar(let scalar) = key else {
                        throw error(.invalidInventory, "keys must be plain names, not lists or mappings", at: key)
                    }
                    if let earlier = keys[scalar.string] {
                        let line = earlier.mark.map { " (already at line \($0.line))" } ?? ""
                        throw error(
                            .syntax,
                            "duplicate key '\(scalar.string)'\(line); keep only one of them",
                            at: key
                        )
                    }
                    keys[scalar.string] = key
                    try checkStructure(key, seen: &seen)
                    try checkStructure(value, seen: &seen)
                }
            case .sequence(let sequence):
                for element in sequence { try checkStructure(element, seen: &seen) }
            case .scalar, .alias:
                break
            }
        }

        // MARK: Values

        /// The resolved tag of a node (`Tag.name` is not public).
        static func tagName(_ node: Node) -> Tag.Name {
            Tag.Name(rawValue: node.tag.description)
        }

        static func isNull(_ node: Node) -> Bool {
            if case .scalar = node { return tagName(node) == .null }
            return false
        }

        /// The pairs of a mapping value; nil for a null value; an error for anything else.
        func pairs(_ node: Node, what: String) throws -> [(key: Node, name: String, value: Node)]? {
            if Self.isNull(node) { return nil }
            guard case .mapping(let mapping) = node else {
                throw error(
                    .invalidInventory,
                    "\(what) must be a mapping of keys (one 'key: value' per line)",
                    at: node
                )
            }
            return mapping.map { (key: $0.key, name: $0.key.string ?? "", value: $0.value) }
        }

        /// A scalar's text; nil for null; an error for lists and mappings.
        func string(_ value: Node, what: String) throws -> String? {
            if Self.isNull(value) { return nil }
            guard case .scalar(let scalar) = value else {
                throw error(.invalidInventory, "\(what) must be a single value, not a list or mapping", at: value)
            }
            return scalar.string
        }

        func integer(_ value: Node, what: String, range: ClosedRange<Int>) throws -> Int? {
            if Self.isNull(value) { return nil }
            let rule = "\(what) must be a whole number from \(range.lowerBound) to \(range.upperBound)"
            guard case .scalar = value, Self.tagName(value) == .int, let number = value.int else {
                throw error(.invalidInventory, rule, at: value)
            }
            guard range.contains(number) else {
                throw error(.invalidInventory, "\(rule), not \(number)", at: value)
            }
            return number
        }

        // MARK: Document

        mutating func build(_ root: Node) throws -> Inventory {
            guard let top = try pairs(root, what: "the inventory") else {
                throw error(
                    .invalidInventory,
                    "the inventory is empty; add 'appliances:' (see Playbooks/inventory.example.yml)",
                    at: root
                )
            }
            var hypervisorsNode: (key: Node, value: Node)?
            var appliancesNode: (key: Node, value: Node)?
            for (key, name, value) in top {
                switch name {
                case "hypervisors": hypervisorsNode = (key, value)
                case "appliances": appliancesNode = (key, value)
                case _ where InventoryRules.looksLikeSecretKey(name):
                    throw secretKeyError(key, keyName: name, scope: "", secretName: InventoryRules.secretName(name))
                default:
                    throw unknownKeyError(key, keyName: name, scope: " at the top level", allowed: Self.topLevelKeys)
                }
            }
            var inventory = Inventory(file: file)
            if let hypervisorsNode {
                for (key, name, value) in try pairs(hypervisorsNode.value, what: "'hypervisors'") ?? [] {
                    inventory.hypervisors.append(try hypervisor(key: key, name: name, value: value))
                }
            }
            if let appliancesNode {
                for (key, name, value) in try pairs(appliancesNode.value, what: "'appliances'") ?? [] {
                    let entry = try appliance(key: key, name: name, value: value, hypervisors: inventory.hypervisors)
                    inventory.appliances.append(entry)
                    applianceNodes[name] = (key, value)
                }
            }
            return inventory
        }

        // MARK: Hypervisors

        func hypervisor(key: Node, name: String, value: Node) throws -> Hypervisor {
            guard InventoryRules.isValidName(name) else {
                throw error(.invalidInventory, "bad hypervisor name '\(name)': \(InventoryRules.nameRule)", at: key)
            }
            var hypervisor = Hypervisor(name: name)
            let scope = " in hypervisor '\(name)'"
            for (fieldKey, field, fieldValue) in try pairs(value, what: "hypervisor '\(name)'") ?? [] {
                switch field {
                case "uri":
                    guard let uri = try string(fieldValue, what: "'uri'\(scope)") else { continue }
                    if uri == "session" {
                        hypervisor.uri = .session
                        continue
                    }
                    if InventoryRules.uriHasPassword(uri) {
                        throw error(
                            .secretInInventory,
                            "the libvirt URI\(scope) holds a password: secrets never go in the inventory; "
                                + "use an SSH key (qemu+ssh://user@host/system) or libvirt's auth.conf",
                            at: fieldValue
                        )
                    }
                    guard InventoryRules.isPlausibleLibvirtURI(uri) else {
                        throw error(
                            .invalidInventory,
                            "'uri'\(scope) must be 'session' or a libvirt URI such as qemu+ssh://host/system "
                                + "or qemu:///system",
                            at: fieldValue
                        )
                    }
                    hypervisor.uri = .uri(uri)
                case "pool":
                    guard let pool = try string(fieldValue, what: "'pool'\(scope)") else { continue }
                    guard InventoryRules.isValidLibvirtName(pool) else {
                        throw error(
                            .invalidInventory,
                            "bad storage pool name '\(pool)'\(scope): use 1 to 64 letters, digits, '.', '_', '+' "
                                + "or '-' (default '\(Hypervisor.defaultPool)')",
                            at: fieldValue
                        )
                    }
                    hypervisor.pool = pool
                case "network":
                    guard let network = try string(fieldValue, what: "'network'\(scope)") else { continue }
                    if network == "user" {
                        hypervisor.network = .user
                        continue
                    }
                    guard InventoryRules.isValidLibvirtName(network) else {
                        throw error(
                            .invalidInventory,
                            "bad network '\(network)'\(scope): use 'user' (QEMU user networking) or the name of a "
                                + "libvirt network (1 to 64 letters, digits, '.', '_', '+' or '-')",
                            at: fieldValue
                        )
                    }
                    hypervisor.network = .libvirt(network)
                case _ where InventoryRules.looksLikeSecretKey(field):
                    throw secretKeyError(
                        fieldKey,
                        keyName: field,
                        scope: scope,
                        secretName: InventoryRules.secretName("hypervisor", name, field)
                    )
                default:
                    throw unknownKeyError(fieldKey, keyName: field, scope: scope, allowed: Self.hypervisorKeys)
                }
            }
            return hypervisor
        }

        // MARK: Appliances

        func appliance(key: Node, name: String, value: Node, hypervisors: [Hypervisor]) throws -> ApplianceEntry {
            guard InventoryRules.isValidName(name) else {
                throw error(.invalidInventory, "bad appliance name '\(name)': \(InventoryRules.nameRule)", at: key)
            }
            let scope = " in appliance '\(name)'"
            guard let fields = try pairs(value, what: "appliance '\(name)'") else {
                throw error(
                    .invalidInventory,
                    "appliance '\(name)' is empty; give it 'physical:' with an address or 'virtual:' with a hypervisor",
                    at: key
                )
            }
            // The password secret's name first: messages about misplaced secrets point at it.
            var passwordSecret = ApplianceEntry.defaultPasswordSecret(for: name)
            if let passwordValue = fields.first(where: { $0.name == "password" })?.value,
                let secretName = try string(passwordValue, what: "'password'\(scope)")
            {
                guard InventoryRules.isValidSecretName(secretName) else {
                    throw error(
                        .secretInInventory,
                        "'password'\(scope) must be the NAME of the secret that holds the admin password "
                            + "(capital letters, digits and '_', such as \(passwordSecret)), not the password: "
                            + "secrets never go in the inventory; put it in the environment variable "
                            + "\(passwordSecret) or the secrets file",
                        at: passwordValue
                    )
                }
                passwordSecret = secretName
            }

            var kind: (key: Node, kind: ApplianceKind)?
            var address: String?
            var addressNode: Node?
            var id: String?
            var pin: String?
            for (fieldKey, field, fieldValue) in fields {
                switch field {
                case "physical", "virtual":
                    if let earlier = kind?.key {
                        throw error(
                            .invalidInventory,
                            "appliance '\(name)' is both physical and virtual (see line \(earlier.mark?.line ?? 0)); "
                                + "keep one of 'physical:' and 'virtual:'",
                            at: fieldKey
                        )
                    }
                    let parsed =
                        field == "physical"
                        ? try physical(
                            key: fieldKey,
                            value: fieldValue,
                            appliance: name,
                            passwordSecret: passwordSecret
                        )
                        : try virtual(
                            key: fieldKey,
                            value: fieldValue,
                            appliance: name,
                            passwordSecret: passwordSecret,
                            hypervisors: hypervisors
                        )
                    kind = (fieldKey, parsed)
                case "address":
                    address = try string(fieldValue, what: "'address'\(scope)")
                    addressNode = fieldKey
                    if let address, let problem = InventoryRules.addressProblem(address) {
                        throw error(.invalidInventory, "bad address\(scope): \(problem)", at: fieldValue)
                    }
                case "id":
                    id = try opaque(fieldValue, what: "'id'\(scope)", recordedBy: "provisioning")
                case "pin":
                    pin = try opaque(fieldValue, what: "'pin'\(scope)", recordedBy: "the first contact")
                case "password":
                    continue  // read above
                case _ where InventoryRules.looksLikeSecretKey(field):
                    let secretName =
                        field.lowercased().contains("pass")
                        ? passwordSecret : InventoryRules.secretName("appliance", name, field)
                    throw secretKeyError(fieldKey, keyName: field, scope: scope, secretName: secretName)
                default:
                    throw unknownKeyError(fieldKey, keyName: field, scope: scope, allowed: Self.applianceKeys)
                }
            }
            guard let applianceKind = kind?.kind else {
                throw error(
                    .invalidInventory,
                    "appliance '\(name)' is neither physical nor virtual; add 'physical:' with an address or "
                        + "'virtual:' with a hypervisor",
                    at: key
                )
            }
            if case .physical = applianceKind, address != nil, let addressNode {
                throw error(
                    .invalidInventory,
                    "the address of a physical appliance goes under 'physical:'; move this line there",
                    at: addressNode
                )
            }
            return ApplianceEntry(
                name: name,
                kind: applianceKind,
                address: address,
                id: id,
                pin: pin,
                passwordSecret: passwordSecret
            )
        }

        func opaque(_ value: Node, what: String, recordedBy: String) throws -> String? {
            guard let text = try string(value, what: what) else { return nil }
            if let problem = InventoryRules.opaqueValueProblem(text) {
                throw error(
                    .invalidInventory,
                    "\(what) is not usable: \(problem); write null (or remove the line) to have it recorded "
                        + "again by \(recordedBy)",
                    at: value
                )
            }
            return text
        }

        func physical(key: Node, value: Node, appliance name: String, passwordSecret: String) throws -> ApplianceKind {
            let scope = " in 'physical' of appliance '\(name)'"
            var address: String?
            for (fieldKey, field, fieldValue) in try pairs(value, what: "'physical' of appliance '\(name)'") ?? [] {
                switch field {
                case "address":
                    address = try string(fieldValue, what: "'address'\(scope)")
                    if let address, let problem = InventoryRules.addressProblem(address) {
                        throw error(.invalidInventory, "bad address\(scope): \(problem)", at: fieldValue)
                    }
                case _ where InventoryRules.looksLikeSecretKey(field):
                    let secretName =
                        field.lowercased().contains("pass")
                        ? passwordSecret : InventoryRules.secretName("appliance", name, field)
                    throw secretKeyError(fieldKey, keyName: field, scope: scope, secretName: secretName)
                default:
                    throw unknownKeyError(fieldKey, keyName: field, scope: scope, allowed: Self.physicalKeys)
                }
            }
            guard let address else {
                throw error(
                    .invalidInventory,
                    "physical appliance '\(name)' needs 'address: HOST:PORT' under 'physical:'",
                    at: key
                )
            }
            return .physical(address: address)
        }

        func virtual(
            key: Node,
            value: Node,
            appliance name: String,
            passwordSecret: String,
            hypervisors: [Hypervisor]
        ) throws -> ApplianceKind {
            let scope = " in 'virtual' of appliance '\(name)'"
            var hypervisor: String?
            var spec = VirtualSpec(hypervisor: "")
            for (fieldKey, field, fieldValue) in try pairs(value, what: "'virtual' of appliance '\(name)'") ?? [] {
                switch field {
                case "hypervisor":
                    guard let reference = try string(fieldValue, what: "'hypervisor'\(scope)") else { continue }
                    guard hypervisors.contains(where: { $0.name == reference }) else {
                        let names = hypervisors.map(\.name)
                        throw error(
                            .unknownHypervisor,
                            "unknown hypervisor '\(reference)'\(scope)"
                                + Inventory.suggestion(for: reference, among: names)
                                + "; \(Inventory.known("hypervisors", names)) — declare it under 'hypervisors:'",
                            at: fieldValue
                        )
                    }
                    hypervisor = reference
                case "memory_mib":
                    let what = "'memory_mib'\(scope)"
                    spec.memoryMiB =
                        try integer(fieldValue, what: what, range: VirtualSpec.memoryMiBRange)
                        ?? VirtualSpec.defaultMemoryMiB
                case "vcpus":
                    spec.vcpus =
                        try integer(fieldValue, what: "'vcpus'\(scope)", range: VirtualSpec.vcpusRange)
                        ?? VirtualSpec.defaultVCPUs
                case "disk_gib":
                    let what = "'disk_gib'\(scope)"
                    spec.diskGiB =
                        try integer(fieldValue, what: what, range: VirtualSpec.diskGiBRange)
                        ?? VirtualSpec.defaultDiskGiB
                case _ where InventoryRules.looksLikeSecretKey(field):
                    let secretName =
                        field.lowercased().contains("pass")
                        ? passwordSecret : InventoryRules.secretName("appliance", name, field)
                    throw secretKeyError(fieldKey, keyName: field, scope: scope, secretName: secretName)
                default:
                    throw unknownKeyError(fieldKey, keyName: field, scope: scope, allowed: Self.virtualKeys)
                }
            }
            guard let hypervisor else {
                let names = hypervisors.map(\.name)
                throw error(
                    .invalidInventory,
                    "virtual appliance '\(name)' needs 'hypervisor: NAME' under 'virtual:' ("
                        + Inventory.known("hypervisors", names) + ")",
                    at: key
                )
            }
            spec.hypervisor = hypervisor
            return .virtual(spec)
        }
    }
}
