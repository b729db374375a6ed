import ApplianceInventory
import Foundation
import Testing

/// Failover pair upgrade playbooks (`playbook: upgrade-failover`): both shipped files, every key, refusals.
@Suite struct PlaybookPairUpgradeTests {
    static func spec(_ yaml: String) throws -> PairUpgradeSpec {
        let playbook = try Playbook.parse(yaml, file: "pair.yml")
        let spec: PairUpgradeSpec? = if case .upgradeFailover(let spec) = playbook.body { spec } else { nil }
        return try #require(spec, "not a pair upgrade playbook: \(playbook.kind)")
    }

    static let minimal = "playbook: upgrade-failover\nmode: sync\na: site-a\nb: site-b\nbackup:\n  password: P\n"

    @Test func theShippedPlaybooksParse() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Playbooks")
        let sync = try Playbook.load(from: root.appendingPathComponent("upgrade-failover-sync.yml"))
        let async = try Playbook.load(from: root.appendingPathComponent("upgrade-failover-async.yml"))
        guard case .upgradeFailover(let s) = sync.body, case .upgradeFailover(let a) = async.body else {
            Issue.record("not pair upgrades: \(sync.kind), \(async.kind)")
            return
        }
        #expect(s.mode == .sync && a.mode == .async)
        #expect(sync.targetNames == ["site-a", "site-b"])
        #expect(a.cutover == .sharedIP(siteAddress: "192.0.2.50:443"))
        #expect(s.target == "24.2.0" && s.backupPasswordSecret == "BACKUP_PASSWORD" && s.rollback == .automatic)
    }

    @Test func theDefaultsAreEveryUpdateAutomaticRollbackAndNoCutover() throws {
        let spec = try Self.spec(Self.minimal)
        #expect(spec.a.value == "site-a" && spec.a.line == 3)
        #expect(spec.b.value == "site-b")
        #expect(spec.target == nil && spec.repository == nil)
        #expect(spec.includeHistory && spec.rollback == .automatic)
        #expect(spec.cutover == .none)
    }

    @Test func everyKeyIsRead() throws {
        let spec = try Self.spec(
            """
            playbook: upgrade-failover
            mode: async
            a: site-a
            b: site-b
            target: 24.2.0
            packages:
              repository: /srv/repo
            backup:
              password: BACKUP_PW
              include_history: false
            cutover:
              method: hook
              site_address: 10.0.0.5:443
              hook: ./swing.sh
            rollback: manual
            """
        )
        #expect(spec.mode == .async)
        #expect(spec.repository == "/srv/repo" && !spec.includeHistory && spec.rollback == .manual)
        #expect(spec.cutover == .hook(siteAddress: "10.0.0.5:443", command: "./swing.sh"))
    }

    @Test(arguments: [
        ("playbook: upgrade-failover\na: x\nb: y\nbackup:\n  password: P\n", "pair.yml:1:1", "needs 'mode: sync'"),
        (
            "playbook: upgrade-failover\nmode: fast\na: x\nb: y\nbackup:\n  password: P\n", "pair.yml:2:7",
            "sync or async"
        ),
        ("playbook: upgrade-failover\nmode: sync\nb: y\nbackup:\n  password: P\n", "pair.yml:1:1", "needs 'a: NAME'"),
        (
            "playbook: upgrade-failover\nmode: sync\na: x\nb: x\nbackup:\n  password: P\n", "pair.yml:4:4",
            "two appliances"
        ),
        (
            "playbook: upgrade-failover\nmode: async\na: x\nb: y\nbackup:\n  password: P\n", "pair.yml:2:1",
            "site_address"
        ),
        ("playbook: upgrade-failover\nmode: sync\na: x\nb: y\n", "pair.yml:1:1", "needs 'backup:'"),
        ("playbook: upgrade-failover\nmode: sync\na: x\nb: y\nbox: z\nbackup:\n  password: P\n", "pair.yml:5:1", "box"),
    ])
    func isRefusedWithLineAndColumn(yaml: String, location: String, says: String) throws {
        let error = try #require(throws: InventoryError.self) { try Playbook.parse(yaml, file: "pair.yml") }
        #expect(error.location?.description == location, "\(error)")
        #expect(error.message.contains(says), "\(error)")
    }
}
