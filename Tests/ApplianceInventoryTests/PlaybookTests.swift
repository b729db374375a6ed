import ApplianceInventory
import Foundation
import Testing

/// Playbooks: the shipped ones, each kind, defaults, refusals with the playbook's line and column, and checks
/// against an inventory.
@Suite struct PlaybookTests {
    static let playbooks = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Playbooks")

    static func exampleInventory() throws -> Inventory {
        try Inventory.load(from: playbooks.appendingPathComponent("inventory.example.yml"))
    }

    static let migrate = """
        playbook: migrate
        old: old-box
        new: new-vm
        backup:
          password: BACKUP_PASSWORD

        """

    static func migrate(_ playbook: Playbook) throws -> MigrationSpec {
        let spec: MigrationSpec? = if case .migrate(let spec) = playbook.body { spec } else { nil }
        return try #require(spec, "not a migrate playbook: \(playbook.kind)")
    }

    // MARK: Reading

    @Test func theShippedPlaybooksLoadAndValidateAgainstTheExampleInventory() throws {
        let inventory = try Self.exampleInventory()
        let files = [
            "migrate-physical-to-virtual.yml": PlaybookKind.migrate,
            "provision-test-appliance.yml": .provision,
            "decommission.yml": .decommission,
            "upgrade-single.yml": .upgrade,
            "upgrade-failover-sync.yml": .upgradeFailover,
            "upgrade-failover-async.yml": .upgradeFailover,
        ]
        for (name, kind) in files {
            let playbook = try Playbook.load(from: Self.playbooks.appendingPathComponent(name))
            #expect(playbook.kind == kind, "\(name)")
            #expect(playbook.file.hasSuffix("Playbooks/\(name)"))
            try playbook.validate(against: inventory)
        }

        let migration = try Self.migrate(
            try Playbook.load(from: Self.playbooks.appendingPathComponent("migrate-physical-to-virtual.yml"))
        )
        #expect(migration.old.value == "old-box" && migration.new.value == "new-vm")
        #expect(migration.backupPasswordSecret == "BACKUP_PASSWORD")
        #expect(migration.cutover == .none)
        #expect(migration.decommission)
        let provision = try Playbook.load(from: Self.playbooks.appendingPathComponent("provision-test-appliance.yml"))
        #expect(provision.targetNames == ["test-vm"])
        let decommission = try Playbook.load(from: Self.playbooks.appendingPathComponent("decommission.yml"))
        #expect(decommission.targetNames == ["old-box"])
    }

    @Test func aMigrationReadsEveryKey() throws {
        let playbook = try Playbook.parse(
            """
            # comment
            playbook: migrate
            description: "free text"
            old: old-box
            new: new-vm
            backup:
              password: BACKUP_PASSWORD
              include_history: false
            certificate:
              passphrase: CERTIFICATE_PASSPHRASE
              hostname_from_old: false
            packages:
              repository: https://packages.example.net/appliance
            cutover:
              method: hook
              site_address: "[fd00::12]:8443"
              hook: "scripts/nat-swing.sh"
            decommission: true
            """,
            file: "migrate.yml"
        )
        #expect(playbook.kind == .migrate)
        #expect(playbook.file == "migrate.yml")
        #expect(playbook.description == "free text")
        #expect(playbook.targetNames == ["old-box", "new-vm"])
        let spec = try Self.migrate(playbook)
        #expect(spec.old == Located("old-box", line: 4, column: 6))
        #expect(spec.new == Located("new-vm", line: 5, column: 6))
        #expect(spec.backupPasswordSecret == "BACKUP_PASSWORD")
        #expect(!spec.includeHistory)
        #expect(spec.certificatePassphraseSecret == "CERTIFICATE_PASSPHRASE")
        #expect(!spec.hostnameFromOld)
        #expect(spec.repository == "https://packages.example.net/appliance")
        #expect(spec.cutover == .hook(siteAddress: "[fd00::12]:8443", command: "scripts/nat-swing.sh"))
        #expect(spec.cutover.siteAddress == "[fd00::12]:8443")
        #expect(spec.decommission)
    }

    @Test func optionalKeysTakeTheirDefaults() throws {
        let spec = try Self.migrate(try Playbook.parse(Self.migrate, file: "migrate.yml"))
        #expect(spec.includeHistory)
        #expect(spec.certificatePassphraseSecret == nil)
        #expect(spec.hostnameFromOld)
        #expect(spec.repository == nil)
        #expect(spec.cutover == .none)
        #expect(!spec.decommission)
        #expect(spec.method == nil, "no method: the run chooses")
        #expect(
            try Self.migrate(try Playbook.parse(Self.migrate + "method: backup-restore\n", file: "m.yml")).method
                == .backupRestore
        )
        #expect(try Self.migrate(try Playbook.parse(Self.migrate + "method: live\n", file: "m.yml")).method == .live)

        let empty = try Self.migrate(
            try Playbook.parse(Self.migrate + "certificate:\npackages:\ncutover:\ndecommission:\n", file: "m.yml")
        )
        #expect(empty == spec)
        #expect(try Playbook.parse(Self.migrate, file: "m.yml").description == nil)
    }

    @Test func sharedIPAndADirectoryRepositoryAreRead() throws {
        let spec = try Self.migrate(
            try Playbook.parse(
                Self.migrate
                    + "packages:\n  repository: /srv/vendor-repository\n"
                    + "cutover:\n  method: shared-ip\n  site_address: 127.0.0.12:8443\n",
                file: "migrate.yml"
            )
        )
        #expect(spec.repository == "/srv/vendor-repository")
        #expect(spec.cutover == .sharedIP(siteAddress: "127.0.0.12:8443"))
    }

    @Test func provisionAndDecommissionNameOneAppliance() throws {
        let provision = try Playbook.parse("playbook: provision\nappliance: test-vm\n", file: "p.yml")
        #expect(provision.kind == .provision)
        #expect(provision.body == .provision(appliance: Located("test-vm", line: 2, column: 12)))
        #expect(provision.targetNames == ["test-vm"])

        let decommission = try Playbook.parse(
            "description: retire it\nplaybook: decommission\nappliance: 'old-box'\n",
            file: "d.yml"
        )
        #expect(decommission.kind == .decommission)
        #expect(decommission.description == "retire it")
        #expect(decommission.body == .decommission(appliance: Located("old-box", line: 3, column: 12)))
    }

    @Test func aMissingFileSaysWhatToDo() throws {
        let missing = URL(fileURLWithPath: "/nonexistent/migrate.yml")
        let error = try #require(throws: InventoryError.self) { try Playbook.load(from: missing) }
        #expect(error.code == .io)
        #expect(error.description.contains("the playbook /nonexistent/migrate.yml does not exist"))
    }

    // MARK: Refusals

    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var yaml: String
        var location: String
        var code: InventoryError.Code = .invalidPlaybook
        var says: String
        /// Text that must not appear in the message (a secret value).
        var neverSays: String? = nil

        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(
            name: "unknown key with a suggestion",
            yaml: migrate + "decomission: true\n",
            location: "playbook.yml:6:1",
            says: "unknown key 'decomission' in a migrate playbook; did you mean 'decommission'?"
        ),
        Case(
            name: "unknown key in a section",
            yaml: "playbook: migrate\nold: a\nnew: b\nbackup:\n  password: P\n  include_histroy: true\n",
            location: "playbook.yml:6:3",
            says: "unknown key 'include_histroy' in 'backup'; did you mean 'include_history'?"
        ),
        Case(
            name: "unknown key before the kind is known",
            yaml: "playbok: migrate\n",
            location: "playbook.yml:1:1",
            says: "unknown key 'playbok' at the top level; did you mean 'playbook'?"
        ),
        Case(
            name: "section key at the top level",
            yaml: migrate + "method: shared-ip\n",
            location: "playbook.yml:6:1",
            says: "'method' goes under 'cutover:' (indented below it), not at the top level"
        ),
        Case(
            name: "key of another kind",
            yaml: "playbook: decommission\nappliance: old-box\nold: old-box\n",
            location: "playbook.yml:3:1",
            says: "'old' belongs to migrate playbooks; this is a decommission playbook"
        ),
        Case(
            name: "appliance in a migration",
            yaml: migrate + "appliance: new-vm\n",
            location: "playbook.yml:6:1",
            says: "'appliance' belongs to provision and decommission playbooks; this is a migrate playbook"
        ),
        Case(
            name: "no kind",
            yaml: "old: old-box\n",
            location: "playbook.yml:1:1",
            says: "the playbook does not say what it does; add 'playbook: migrate'"
        ),
        Case(
            name: "bad kind",
            yaml: "playbook: migrat\n",
            location: "playbook.yml:1:11",
            says:
                "'playbook' must be migrate, provision, decommission, upgrade or upgrade-failover, not 'migrat' (did you mean 'migrate'?)"
        ),
        Case(
            name: "empty playbook",
            yaml: "# nothing yet\n",
            location: "playbook.yml:1:1",
            says: "the playbook is empty"
        ),
        Case(
            name: "missing old",
            yaml: "playbook: migrate\nnew: new-vm\nbackup:\n  password: BACKUP_PASSWORD\n",
            location: "playbook.yml:1:1",
            says: "a migrate playbook needs 'old: NAME'"
        ),
        Case(
            name: "empty new",
            yaml: "playbook: migrate\nold: old-box\nnew:\nbackup:\n  password: BACKUP_PASSWORD\n",
            location: "playbook.yml:3:1",
            says: "a migrate playbook needs 'new: NAME'"
        ),
        Case(
            name: "missing backup",
            yaml: "playbook: migrate\nold: old-box\nnew: new-vm\n",
            location: "playbook.yml:1:1",
            says: "a migrate playbook needs 'backup:' with 'password: NAME'"
        ),
        Case(
            name: "missing backup password",
            yaml: "playbook: migrate\nold: old-box\nnew: new-vm\nbackup:\n  include_history: true\n",
            location: "playbook.yml:4:1",
            says: "'backup' needs 'password: NAME'"
        ),
        Case(
            name: "missing appliance",
            yaml: "playbook: provision\ndescription: x\n",
            location: "playbook.yml:1:1",
            says: "a provision playbook needs 'appliance: NAME'"
        ),
        Case(
            name: "bad appliance name",
            yaml: "playbook: decommission\nappliance: Old_Box\n",
            location: "playbook.yml:2:12",
            says: "bad appliance name 'Old_Box' in 'appliance': names are 1 to 63 lower-case letters"
        ),
        Case(
            name: "old equals new",
            yaml: "playbook: migrate\nold: old-box\nnew: old-box\nbackup:\n  password: BACKUP_PASSWORD\n",
            location: "playbook.yml:3:6",
            says: "'new' must differ from 'old': both are 'old-box'"
        ),
        Case(
            name: "bad method",
            yaml: migrate + "cutover:\n  method: shared_ip\n  site_address: 127.0.0.12:8443\n",
            location: "playbook.yml:7:11",
            says: "'method' in 'cutover' must be none, shared-ip or hook, not 'shared_ip' (did you mean 'shared-ip'?)"
        ),
        Case(
            name: "hook without command",
            yaml: migrate + "cutover:\n  method: hook\n  site_address: 127.0.0.12:8443\n",
            location: "playbook.yml:7:11",
            says: "'method: hook' needs 'hook: COMMAND' in 'cutover'"
        ),
        Case(
            name: "empty hook command",
            yaml: migrate + "cutover:\n  method: hook\n  site_address: 127.0.0.12:8443\n  hook: '  '\n",
            location: "playbook.yml:9:9",
            says: "'hook' in 'cutover' is empty"
        ),
        Case(
            name: "hook with another method",
            yaml: migrate + "cutover:\n  method: shared-ip\n  site_address: 127.0.0.12:8443\n  hook: swing.sh\n",
            location: "playbook.yml:9:3",
            says: "'hook' in 'cutover' is only used with 'method: hook' (this cutover's method is shared-ip)"
        ),
        Case(
            name: "shared-ip without site address",
            yaml: migrate + "cutover:\n  method: shared-ip\n",
            location: "playbook.yml:7:11",
            says: "'method: shared-ip' needs 'site_address: HOST:PORT' in 'cutover'"
        ),
        Case(
            name: "site address without a method",
            yaml: migrate + "cutover:\n  site_address: 127.0.0.12:8443\n",
            location: "playbook.yml:7:3",
            says: "'site_address' in 'cutover' is only used with 'method: shared-ip' or 'method: hook'"
        ),
        Case(
            name: "bad site address",
            yaml: migrate + "cutover:\n  method: shared-ip\n  site_address: 127.0.0.12:99999\n",
            location: "playbook.yml:8:17",
            says: "bad 'site_address' in 'cutover': the port must be a number from 1 to 65535"
        ),
        Case(
            name: "unbracketed IPv6 site address",
            yaml: migrate + "cutover:\n  method: shared-ip\n  site_address: 'fd00::12:8443'\n",
            location: "playbook.yml:8:17",
            says: "IPv6 addresses go in brackets"
        ),
        Case(
            name: "secret value for the backup password",
            yaml: "playbook: migrate\nold: old-box\nnew: new-vm\nbackup:\n  password: hunter2-Secret!\n",
            location: "playbook.yml:5:13",
            code: .secretInPlaybook,
            says: "'password' in 'backup' must be the NAME of the secret that holds the backup password",
            neverSays: "hunter2-Secret!"
        ),
        Case(
            name: "secret value for the certificate passphrase",
            yaml: migrate + "certificate:\n  passphrase: \"correct horse battery staple\"\n",
            location: "playbook.yml:7:15",
            code: .secretInPlaybook,
            says: "secrets never go in a playbook",
            neverSays: "correct horse"
        ),
        Case(
            name: "password in a repository URL",
            yaml: migrate + "packages:\n  repository: https://me:s3cr3t@packages.example.net/\n",
            location: "playbook.yml:7:15",
            code: .secretInPlaybook,
            says: "holds a password",
            neverSays: "s3cr3t"
        ),
        Case(
            name: "repository with another scheme",
            yaml: migrate + "packages:\n  repository: ftp://packages.example.net/\n",
            location: "playbook.yml:7:15",
            says: "must be a directory path or an http:// or https:// URL"
        ),
        Case(
            name: "flag that is not a boolean",
            yaml: migrate + "decommission: 'yes please'\n",
            location: "playbook.yml:6:15",
            says: "'decommission' must be true or false"
        ),
        Case(
            name: "unknown migration method",
            yaml: migrate + "method: lve\n",
            location: "playbook.yml:6:9",
            says: "'method' must be live or backup-restore, not 'lve' (did you mean 'live'?)"
        ),
        Case(
            name: "section that is not a mapping",
            yaml: migrate + "cutover: shared-ip\n",
            location: "playbook.yml:6:10",
            says: "'cutover' must be a mapping of keys"
        ),
        Case(
            name: "duplicate key",
            yaml: migrate + "old: other-box\n",
            location: "playbook.yml:6:1",
            code: .syntax,
            says: "duplicate key 'old'"
        ),
        Case(
            name: "YAML syntax error",
            yaml: "playbook: migrate\nold: [old-box\n",
            location: "playbook.yml:3:1",
            code: .syntax,
            says: "YAML syntax error"
        ),
    ]

    @Test(arguments: cases)
    func isRefusedWithLineAndColumn(_ example: Case) throws {
        let error = try #require(throws: InventoryError.self) {
            try Playbook.parse(example.yaml, file: "playbook.yml")
        }
        #expect(error.code == example.code, "\(error)")
        #expect(error.location?.description == example.location, "\(error)")
        #expect(error.message.contains(example.says), "\(error)")
        if let secret = example.neverSays {
            #expect(!error.description.contains(secret))
            #expect(!String(describing: error.cause as Any).contains(secret))
        }
    }

    // MARK: Against an inventory

    struct Mismatch: Sendable, CustomTestStringConvertible {
        var name: String
        var yaml: String
        var location: String
        var code: InventoryError.Code
        var says: String

        var testDescription: String { name }
    }

    static let mismatches: [Mismatch] = [
        Mismatch(
            name: "unknown new",
            yaml: "playbook: migrate\nold: old-box\nnew: nwe-vm\nbackup:\n  password: BACKUP_PASSWORD\n",
            location: "playbook.yml:3:6",
            code: .unknownAppliance,
            says: "no appliance 'nwe-vm' in "
        ),
        Mismatch(
            name: "unknown old",
            yaml: "playbook: migrate\nold: \"older-box\"\nnew: new-vm\nbackup:\n  password: BACKUP_PASSWORD\n",
            location: "playbook.yml:2:6",
            code: .unknownAppliance,
            says: "no appliance 'older-box'"
        ),
        Mismatch(
            name: "unknown appliance to decommission",
            yaml: "playbook: decommission\n\nappliance:   gone-box\n",
            location: "playbook.yml:3:14",
            code: .unknownAppliance,
            says: "known appliances: old-box, new-vm, edge-vm, test-vm, site-a, site-b"
        ),
        Mismatch(
            name: "virtual old",
            yaml: "playbook: migrate\nold: edge-vm\nnew: new-vm\nbackup:\n  password: BACKUP_PASSWORD\n",
            location: "playbook.yml:2:6",
            code: .invalidPlaybook,
            says: "'old' must be a physical appliance: 'edge-vm' is virtual in "
        ),
        Mismatch(
            name: "provision of a physical appliance",
            yaml: "playbook: provision\nappliance: old-box\n",
            location: "playbook.yml:2:12",
            code: .invalidPlaybook,
            says: "'appliance' must be a virtual appliance: 'old-box' is physical in "
        ),
    ]

    @Test(arguments: mismatches)
    func isRefusedByTheInventoryAtThePlaybooksLineAndColumn(_ example: Mismatch) throws {
        let inventory = try Self.exampleInventory()
        let playbook = try Playbook.parse(example.yaml, file: "playbook.yml")
        let error = try #require(throws: InventoryError.self) { try playbook.validate(against: inventory) }
        #expect(error.code == example.code, "\(error)")
        #expect(error.location?.description == example.location, "\(error)")
        #expect(error.message.contains(example.says), "\(error)")
    }

    @Test func refusalsSuggestAndListTheInventorysNames() throws {
        let inventory = try Self.exampleInventory()
        let unknown = try Playbook.parse(
            "playbook: migrate\nold: old-box\nnew: nwe-vm\nbackup:\n  password: BACKUP_PASSWORD\n",
            file: "playbook.yml"
        )
        let error = try #require(throws: InventoryError.self) { try unknown.validate(against: inventory) }
        #expect(error.message.contains("(did you mean 'new-vm'?)"), "\(error)")
        #expect(
            error.message.contains("known appliances: old-box, new-vm, edge-vm, test-vm, site-a, site-b"),
            "\(error)"
        )

        let physical = try Playbook.parse("playbook: provision\nappliance: old-box\n", file: "playbook.yml")
        let kindError = try #require(throws: InventoryError.self) { try physical.validate(against: inventory) }
        #expect(kindError.message.contains("virtual appliances: new-vm, edge-vm, test-vm"), "\(kindError)")
    }

    @Test func aNewPhysicalApplianceAndAnyDecommissionAreAccepted() throws {
        let inventory = try Inventory.parse(
            """
            appliances:
              box-a:
                physical: {address: 10.0.0.1:443}
              box-b:
                physical: {address: 10.0.0.2:443}
            """,
            file: "inventory.yml"
        )
        try Playbook.parse(
            "playbook: migrate\nold: box-a\nnew: box-b\nbackup:\n  password: BACKUP_PASSWORD\n",
            file: "playbook.yml"
        ).validate(against: inventory)
        try Playbook.parse("playbook: decommission\nappliance: box-b\n", file: "playbook.yml")
            .validate(against: inventory)
    }
}
