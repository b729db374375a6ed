import ApplianceAPI
import ApplianceClient
import Foundation
import SoftwarePackages
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `upgrade-failover-sync.yml` and `upgrade-failover-async.yml` (P8, X4) with `appliancectl` as a process and a
/// failover pair of `applianced` processes: a writer ends sessions on the site throughout; afterwards both boxes
/// run the target, are paired with the right primary, and every row the writer got accepted is on the primary
/// once. A failing package is rolled back and the pair set up as it was; refusals change nothing.
@Suite(.serialized) struct PairUpgradeTests {
    /// A pair at site 24.1.0 (A primary with generated data, B its synced backup), a vendor repository with site
    /// 24.2.0, an inventory and a pair playbook.
    final class Scenario: @unchecked Sendable {
        let vendor: TestVendor
        let a: TestBox
        let b: TestBox
        let mode: String
        /// The address clients use: async a second address of A that moves to B; sync A's own.
        let siteHost: String
        let work = TestSupport.temporaryDirectory("pair-upgrade")
        var softwareBefore: InstalledSoftware!

        var environment: [String: String] {
            [
                "APPLIANCECTL_HOME": work.appendingPathComponent("state").path,
                "A_PW": TestBox.adminPassword,
                "B_PW": TestBox.adminPassword,
                "BACKUP_PW": "Backup-Password-9",
            ]
        }
        var inventory: URL { work.appendingPathComponent("inventory.yml") }
        var playbook: URL { work.appendingPathComponent("upgrade-failover-\(mode).yml") }
        var run: [String] { ["run", playbook.path, "--inventory", inventory.path, "--yes", "--accept-eula"] }

        init(
            mode: String,
            target: String = "24.2.0",
            selfTest: PackageManifest.SelfTest? = nil,
            establish: Bool = true
        ) async throws {
            self.mode = mode
            vendor = try TestVendor()
            try vendor.publish(try vendor.package("site", .site, "24.2.0", selfTest: selfTest))
            a = try await TestBox(arguments: ["--vendor-key", vendor.keyFile.path])
            b = try await TestBox(arguments: ["--vendor-key", vendor.keyFile.path])
            for box in [a, b] {
                let _: FailoverKeyStatus = try await box.admin().call(
                    .setFailoverKey,
                    body: FailoverKeyRequest(key: FailoverTests.key)
                )
            }
            let admin = try await a.admin()
            try await admin.send(.generateSiteData, body: GenerateSiteDataRequest(bytes: 128 * 1024, seed: 3))
            let status: StatusResponse = try await admin.call(.status)
            softwareBefore = status.software
            if mode == "async" {
                siteHost = TestSupport.nextAddress()
                let _: AddressChangeResponse = try await admin.call(
                    .addAddress,
                    body: AddressInput(
                        enabled: true,
                        port: "eth0",
                        address: siteHost,
                        subnetMask: "255.0.0.0",
                        access: .both
                    )
                )
            } else {
                siteHost = a.address
            }
            if establish {
                let _: FailoverStatus = try await admin.call(
                    .establishFailover,
                    body: EstablishRequest(backup: b.endpoint, reverse: a.endpoint, firstSyncDelaySeconds: 3600)
                )
                let first: SyncRecord = try await b.admin().call(.syncNow, body: SyncNowRequest(wait: true))
                #expect(first.result == "ok")
            }
            try """
            appliances:
              site-a:
                physical:
                  address: \(a.endpoint)
                pin: \(a.pin!)
                password: A_PW
              site-b:
                physical:
                  address: \(b.endpoint)
                pin: \(b.pin!)
                password: B_PW
            """.write(to: inventory, atomically: true, encoding: .utf8)
            let cutover =
                mode == "async" ? "cutover:\n  method: shared-ip\n  site_address: \(siteHost):\(TestBox.port)\n" : ""
            try """
            playbook: upgrade-failover
            mode: \(mode)
            a: site-a
            b: site-b
            target: \(target)
            packages:
              repository: \(vendor.repository.path)
            backup:
              password: BACKUP_PW
            \(cutover)rollback: automatic
            """.write(to: playbook, atomically: true, encoding: .utf8)
        }

        func ctl(
            _ arguments: [String],
            crash: String? = nil
        ) async throws -> (status: Int32, stdout: String, stderr: String) {
            var environment = environment
            if let crash { environment["APPLIANCECTL_CRASH_AT"] = crash }
            return try await TestSupport.run(
                TestSupport.binary("appliancectl").path,
                arguments,
                environment: environment
            )
        }

        func runs() async throws -> [[String: Any]] {
            let listed = try await ctl(["runs", "--json"])
            return try #require(try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]])
        }

        func status(_ box: TestBox) async throws -> (failover: FailoverStatus, software: InstalledSoftware) {
            let session = try await box.admin()
            let status: StatusResponse = try await session.call(.status)
            return (try await session.call(.failoverStatus), status.software)
        }

        /// Every history row's session id on `box`, with how often it is there.
        func history(_ box: TestBox) async throws -> [String: Int] {
            let session = try await box.admin()
            var counts: [String: Int] = [:]
            var offset = 0
            while true {
                let page: HistoryPage = try await session.call(.listHistory, query: "?offset=\(offset)&limit=10000")
                for row in page.rows { counts[row.sessionId, default: 0] += 1 }
                offset += page.rows.count
                if page.rows.isEmpty || offset >= page.total { return counts }
            }
        }

        /// Both boxes healthy, on `software`, paired with `primary` primary and its backup's last sync ok.
        func expectPaired(primary: TestBox, backup: TestBox, site: String) async throws {
            for box in [primary, backup] {
                try await box.waitUntilHealthy()
                #expect(try await status(box).software.siteVersion == site)
            }
            let (p, q) = (try await status(primary).failover, try await status(backup).failover)
            #expect(p.role == "primary" && q.role == "backup", "\(p.role)/\(q.role)")
            #expect(q.lastSync?.result == "ok", "\(String(describing: q.lastSync))")
        }

        deinit {
            a.terminate()
            b.terminate()
        }
    }

    /// A full run with a writer on the site: both boxes on 24.2.0, paired with the right primary, every accepted
    /// row on the primary exactly once; the downtime the run measured is in its --json report.
    /// Serialized: the two runs' downtimes are compared (async against sync), so they do not share the machine.
    @Test(.serialized, arguments: ["sync", "async"])
    func aPairInUseIsUpgradedWithNothingLostOrDoubled(mode: String) async throws {
        let scenario = try await Scenario(mode: mode)
        let plan = try await scenario.ctl(scenario.run + ["--dry-run"])
        #expect(plan.status == 0, "\(plan.stderr)")
        #expect(plan.stdout.components(separatedBy: "gate:").count - 1 == (mode == "sync" ? 9 : 10), "\(plan.stdout)")
        #expect(try await scenario.runs().isEmpty, "a dry run journals nothing")

        let writer = SiteWriter(host: scenario.siteHost, port: TestBox.port, interval: .milliseconds(100))
        let writing = Task { try await writer.run() }
        defer { writing.cancel() }
        try await writer.waitUntilAccepted(3)
        let started = ContinuousClock.now
        let result = try await scenario.ctl(scenario.run + ["--json"])
        let seconds = ContinuousClock.now - started
        #expect(result.status == 0, "\(result.stderr)\n\(result.stdout)")
        try await writer.waitUntilAccepted(writer.accepted.count + 3)
        writing.cancel()
        _ = try? await writing.value

        let (primary, backup) = mode == "sync" ? (scenario.a, scenario.b) : (scenario.b, scenario.a)
        try await scenario.expectPaired(primary: primary, backup: backup, site: "24.2.0")
        let rows = try await scenario.history(primary)
        let missing = writer.accepted.filter { rows[$0] == nil }
        let doubled = writer.accepted.filter { (rows[$0] ?? 0) > 1 }
        #expect(missing.isEmpty, "accepted rows missing on the primary: \(missing)")
        #expect(doubled.isEmpty, "rows doubled on the primary: \(doubled)")
        // The writer wrote on after the run's first sync: one more sync brings the backup every row.
        let sync: SyncRecord = try await backup.admin().call(.syncNow, body: SyncNowRequest(wait: true))
        #expect(sync.result == "ok")
        let onBackup = try await scenario.history(backup)
        #expect(writer.accepted.filter { onBackup[$0] != 1 }.isEmpty, "the backup holds every row once")

        let report = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let downtime = try #require(report["downtimeSeconds"] as? Double, "\(report.keys)")
        #expect(report["state"] as? String == "finished", "\(report)")
        let difference = try #require(report["difference"] as? [String], "\(report.keys)")
        for name in ["site-a", "site-b"] {
            #expect(difference.contains { $0.hasPrefix("\(name): software:") }, "\(difference)")
        }
        #expect((report["before"] as? [Any])?.count == 2 && (report["after"] as? [Any])?.count == 2)
        #expect(downtime > 0 && downtime < seconds / .seconds(1), "downtime \(downtime) s")
        print(
            "pair upgrade (\(mode)): downtime \(String(format: "%.2f", downtime)) s of a run of "
                + "\(String(format: "%.1f", seconds / .seconds(1))) s; the writer's rows accepted "
                + "\(writer.accepted.count), refusals \(writer.refusals.count)"
        )
    }
}

extension PairUpgradeTests {
    /// A failing self-test on the box upgraded first (sync A, async B) is rolled back automatically and proven;
    /// the other box was never touched, and the pair is established again as it was (A primary, first sync done).
    @Test(arguments: ["sync", "async"])
    func aFailingFirstBoxIsRolledBackAndThePairSetUpAsItWas(mode: String) async throws {
        let scenario = try await Scenario(mode: mode, selfTest: .init(command: "echo 'site check failed' >&2; exit 1"))
        let result = try await scenario.ctl(scenario.run)
        #expect(result.status == 1, "failed but rolled back: \(result.stderr)\n\(result.stdout)")
        let failed = mode == "sync" ? "site-a" : "site-b"
        #expect(result.stderr.contains("the self-test of site 24.2.0 failed"), "\(result.stderr)")
        #expect(result.stderr.contains("\(failed) was rolled back automatically"), "\(result.stderr)")
        #expect(result.stderr.contains("The pair is established again as it was"), "\(result.stderr)")
        #expect(result.stdout.contains("Rolled back automatically"), "\(result.stdout)")
        try await scenario.expectPaired(primary: scenario.a, backup: scenario.b, site: "24.1.0")
        let untouched = mode == "sync" ? scenario.b : scenario.a
        #expect(try await untouched.admin().softwareSlots().previous == nil, "the other box was never touched")
        #expect(try await scenario.status(scenario.a).software == scenario.softwareBefore)
        let state = try await scenario.runs().first?["state"] as? String
        #expect(state == "failed")
        if mode == "async" {
            // Never swung: the site address still answers from A.
            let answer = try await ApplianceConnection(host: scenario.siteHost, port: TestBox.port, pin: nil).health()
            let aId: StatusResponse = try await scenario.a.admin().call(.status)
            #expect(answer.health.applianceId == aId.applianceId)
        }
    }

    /// Refused before anything changes, with what to do: the pair on different versions, the peer unreachable,
    /// no shared key, a downgrade. The pair stands as it was.
    @Test(arguments: ["versions", "unreachable", "key", "downgrade"])
    func aRunIsRefusedBeforeAnythingChanges(problem: String) async throws {
        let scenario = try await Scenario(mode: "sync", target: problem == "downgrade" ? "24.0.0" : "24.2.0")
        var says: String
        switch problem {
        case "versions":
            let admin = try await scenario.b.admin()
            try await admin.perform(
                .setUpdateSource,
                body: UpdateSourceRequest(repository: scenario.vendor.repository.path)
            )
            let _: InstallResponse = try await admin.call(
                .installUpdate,
                body: InstallRequest(name: "site", version: "24.2.0", acceptEula: true)
            )
            says = "the pair runs different versions"
        case "unreachable":
            scenario.b.terminate()
            says = "site-b (B) does not answer"
        case "key":
            let _: FailoverKeyStatus = try await scenario.b.admin().call(
                .setFailoverKey,
                body: FailoverKeyRequest(key: "another-key-0123456789abcdef0123456789abcdef")
            )
            says = "do not share an inter-appliance key"
        default:
            says = "a downgrade is refused"
        }
        let result = try await scenario.ctl(scenario.run)
        #expect(result.status == 3, "refused by a safety rule: \(result.stderr)")
        #expect(result.stderr.contains(says), "\(result.stderr)")
        #expect(result.stderr.contains("nothing was changed"), "\(result.stderr)")
        let a = try await scenario.status(scenario.a)
        #expect(a.software == scenario.softwareBefore)
        #expect(a.failover.role == "primary", "the pair was not broken")
        #expect(try await scenario.a.admin().softwareSlots().previous == nil, "nothing was installed on A")
    }
}
