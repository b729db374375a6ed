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
}
