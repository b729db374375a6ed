import ApplianceInventory
import Foundation
import Testing

/// Upgrade playbooks (`playbook: upgrade`): defaults, every key, and refusals with line and column.
@Suite struct PlaybookUpgradeTests {
    static func spec(_ yaml: String) throws -> UpgradeSpec {
        let playbook = try Playbook.parse(yaml, file: "upgrade.yml")
        let spec: UpgradeSpec? = if case .upgrade(let spec) = playbook.body { spec } else { nil }
        return try #require(spec, "not an upgrade playbook: \(playbook.kind)")
    }

    @Test func theDefaultsAreEveryApplicableUpdateTheBoxsOwnSourceAndAutomaticRollback() throws {
        let spec = try Self.spec("playbook: upgrade\nbox: old-box\nbackup:\n  password: BACKUP_PW\n")
        #expect(spec.box.value == "old-box")
        #expect(spec.box.line == 2)
        #expect(spec.target == nil)
        #expect(spec.repository == nil)
        #expect(spec.backupPasswordSecret == "BACKUP_PW")
        #expect(spec.includeHistory)
        #expect(spec.rollback == .automatic)
        let playbook = try Playbook.parse("playbook: upgrade\nbox: b\nbackup:\n  password: P\n", file: "u.yml")
        #expect(playbook.kind == .upgrade)
        #expect(playbook.targetNames == ["b"])
    }

    @Test func everyKeyIsRead() throws {
        let spec = try Self.spec(
            """
            playbook: upgrade
            box: old-box
            target: 24.2.0
            packages:
              repository: /srv/repo
            backup:
              password: BACKUP_PW
              include_history: false
            rollback: manual
            """
        )
        #expect(spec.target == "24.2.0")
        #expect(spec.repository == "/srv/repo")
        #expect(!spec.includeHistory)
        #expect(spec.rollback == .manual)
        #expect(try Self.spec("playbook: upgrade\nbox: b\ntarget: all\nbackup:\n  password: P\n").target == nil)
    }

    @Test(arguments: [
        ("playbook: upgrade\nbackup:\n  password: P\n", "upgrade.yml:1:1", "needs 'box: NAME'"),
        ("playbook: upgrade\nbox: b\n", "upgrade.yml:1:1", "needs 'backup:' with 'password: NAME'"),
        ("playbook: upgrade\nbox: b\ntarget: newest\nbackup:\n  password: P\n", "upgrade.yml:3:9", "'all'"),
        ("playbook: upgrade\nbox: b\nrollback: auto\nbackup:\n  password: P\n", "upgrade.yml:3:11", "automatic"),
        ("playbook: upgrade\nbox: b\nold: a\nbackup:\n  password: P\n", "upgrade.yml:3:1", "migrate playbooks"),
        ("playbook: upgrade\nbox: b\nbackup:\n  password: hunter2-secret\n", "upgrade.yml:4:13", "NAME"),
    ])
    func isRefusedWithLineAndColumn(yaml: String, location: String, says: String) throws {
        let error = try #require(throws: InventoryError.self) { try Playbook.parse(yaml, file: "upgrade.yml") }
        #expect(error.location?.description == location, "\(error)")
        #expect(error.message.contains(says), "\(error)")
    }

    static let offline = """
        playbook: upgrade
        box: b
        packages:
          mode: offline
          repository: https://packages.example.net/appliance
          vendor_key: keys/vendor.pem
        backup:
          password: P
        """

    @Test func offlinePackagesNameTheRepositoryHereAndTheVendorKey() throws {
        let spec = try Self.spec(Self.offline)
        #expect(spec.repository == "https://packages.example.net/appliance")
        #expect(spec.offline?.vendorKey.value == "keys/vendor.pem")
        #expect(spec.offline?.vendorKey.line == 6)
        let online = try Self.spec(
            Self.offline.replacingOccurrences(of: "mode: offline", with: "mode: online")
                .replacingOccurrences(of: "  vendor_key: keys/vendor.pem\n", with: "")
        )
        #expect(online.offline == nil, "mode: online is the default's explicit form")
        #expect(online.repository == "https://packages.example.net/appliance")
    }

    @Test(arguments: [
        ("  mode: offline\n", "  mode: offine\n", "upgrade.yml:4:9", "did you mean 'offline'"),
        ("  mode: offline\n", "  mode: [offline]\n", "upgrade.yml:4:9", "'mode' in 'packages'"),
        ("  repository: https://packages.example.net/appliance\n", "", "upgrade.yml:4:3", "needs 'repository: DIR"),
        ("  vendor_key: keys/vendor.pem\n", "", "upgrade.yml:4:3", "needs 'vendor_key: FILE'"),
        ("  vendor_key: keys/vendor.pem\n", "  vendor_key: https://x/k.pem\n", "upgrade.yml:6:15", "a file path"),
        ("  mode: offline\n", "  mode: online\n", "upgrade.yml:6:3", "only with 'mode: offline'"),
        ("  mode: offline\n", "  mode: offline\n  vendorkey: k.pem\n", "upgrade.yml:5:3", "vendor_key"),
        (
            "  repository: https://packages.example.net/appliance\n",
            "  repository: https://user:pw@example.net/r\n", "upgrade.yml:5:15", "secrets never go in a playbook"
        ),
    ])
    func offlinePackagesAreRefusedWithLineColumnAndWhatToWrite(
        replacing: String,
        with: String,
        location: String,
        says: String
    ) throws {
        let yaml = Self.offline.replacingOccurrences(of: replacing, with: with)
        #expect(yaml != Self.offline)
        let error = try #require(throws: InventoryError.self) { try Playbook.parse(yaml, file: "upgrade.yml") }
        #expect(error.location?.description == location, "\(error)")
        #expect(error.message.contains(says), "\(error)")
    }
}
