import ApplianceAPI
import ApplianceClient
import Foundation
import SoftwarePackages
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `upgrade-single.yml` online (P7, X4) with `appliancectl` as a process and the box as an `applianced` process:
/// an upgrade from a directory repository, a failing self-test rolled back automatically, a downgrade refused,
/// and a run killed after its install then resumed.
@Suite(.serialized) struct UpgradeTests {
    /// A box at site 24.1.0 with generated site data, a vendor repository, an inventory and an upgrade playbook.
    final class Scenario: @unchecked Sendable {
        let vendor: TestVendor
        let box: TestBox
        let work = TestSupport.temporaryDirectory("upgrade")
        var summaryBefore: SiteSummary!
        var softwareBefore: InstalledSoftware!

        var environment: [String: String] {
            [
                "APPLIANCECTL_HOME": work.appendingPathComponent("state").path,
                "BOX_PW": TestBox.adminPassword,
                "BACKUP_PW": "Backup-Password-9",
            ]
        }
        var inventory: URL { work.appendingPathComponent("inventory.yml") }
        var playbook: URL { work.appendingPathComponent("upgrade-single.yml") }

        /// `selfTest`: the site package's post-install self-test (a failing one makes the box unhealthy).
        /// `base`: a base package published too, which the site package then requires (`needsBase` alone: a
        /// requirement the repository cannot meet). `packages`: the playbook's packages section for the vendor
        /// (default: online from its repository directory); `boxEnvironment`: of the applianced process.
        init(
            target: String = "24.2.0",
            selfTest: PackageManifest.SelfTest? = nil,
            base: String? = nil,
            needsBase: String? = nil,
            rollback: String = "automatic",
            certificate: Bool = false,
            packages: ((TestVendor) -> String)? = nil,
            boxEnvironment: [String: String] = [:]
        ) async throws {
            vendor = try TestVendor()
            let requires = (needsBase ?? base).map { [PackageManifest.Requirement(name: "base", minimumVersion: $0)] }
            try vendor.publish(
                try vendor.package("site", .site, "24.2.0", requires: requires ?? [], selfTest: selfTest)
            )
            if let base { try vendor.publish(try vendor.package("base", .base, base)) }
            box = try await TestBox(arguments: ["--vendor-key", vendor.keyFile.path], environment: boxEnvironment)
            let session = try await box.admin()
            try await session.send(.generateSiteData, body: GenerateSiteDataRequest(bytes: 256 * 1024, seed: 5))
            summaryBefore = try await session.call(.siteSummary)
            let status: StatusResponse = try await session.call(.status)
            softwareBefore = status.software
            if certificate {
                // A CA-issued certificate served on the box's address, as a site has.
                let pki = try TestPKI()
                let (leaf, key) = try pki.leaf(status.hostname)
                let imported: CertificateEntry = try await session.call(
                    .importCertificate,
                    body: CertificateImportRequest(name: "site", pem: leaf + pki.intermediate + pki.root + key)
                )
                let network: NetworkResponse = try await session.call(.network)
                let entry = try #require(network.addresses.first { $0.address == box.address })
                let before = box.pin
                try await session.perform(
                    .assignCertificate,
                    parameters: ["id": "\(entry.id)"],
                    body: CertificateAssignment(certificateId: imported.id)
                )
                try await box.waitUntilKeyChanges(from: before)
            }
            try """
            appliances:
              site-box:
                physical:
                  address: \(box.endpoint)
                pin: \(box.pin!)
                password: BOX_PW
            """.write(to: inventory, atomically: true, encoding: .utf8)
            try """
            playbook: upgrade
            box: site-box
            target: \(target)
            \(packages?(vendor) ?? "packages:\n  repository: \(vendor.repository.path)")
            backup:
              password: BACKUP_PW
            rollback: \(rollback)
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

        var run: [String] { ["run", playbook.path, "--inventory", inventory.path, "--yes", "--accept-eula"] }

        func runs() async throws -> [[String: Any]] {
            let listed = try await ctl(["runs", "--json"])
            return try #require(try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]])
        }

        func runDirectory() async throws -> URL {
            let id = try #require(try await runs().first?["id"] as? String)
            return work.appendingPathComponent("state/runs/\(id)")
        }

        func software() async throws -> InstalledSoftware {
            let status: StatusResponse = try await box.admin().call(.status)
            return status.software
        }

        func summary() async throws -> SiteSummary {
            try await box.admin().call(.siteSummary)
        }

        deinit {
            box.terminate()
        }
    }

    /// The site data as a migration compares it, every item but the site version.
    static func sameData(_ a: SiteSummary, _ b: SiteSummary) -> Bool {
        var b = b
        b.siteVersion = a.siteVersion
        return a == b
    }

    @Test func anOnlineUpgradeFromADirectoryRepositoryKeepsTheSiteData() async throws {
        let scenario = try await Scenario()
        let plan = try await scenario.ctl(scenario.run + ["--dry-run"])
        #expect(plan.status == 0, "\(plan.stderr)")
        #expect(plan.stdout.contains("upgrade site-box to site 24.2.0"), "\(plan.stdout)")
        #expect(plan.stdout.contains("roll back automatically"), "\(plan.stdout)")
        #expect(try await scenario.runs().isEmpty, "a dry run journals nothing")

        let result = try await scenario.ctl(scenario.run)
        #expect(result.status == 0, "\(result.stderr)\n\(result.stdout)")
        #expect(
            result.stdout.contains("Upgraded: base 7.2.0, site 24.1.0 → base 7.2.0, site 24.2.0"),
            "\(result.stdout)"
        )
        #expect(result.stdout.contains("client installers must be regenerated"), "\(result.stdout)")
        #expect(try await scenario.software().siteVersion == "24.2.0")
        #expect(try await scenario.box.connection().health().healthy)
        let after = try await scenario.summary()
        #expect(
            Self.sameData(scenario.summaryBefore, after),
            "\(after) vs \(String(describing: scenario.summaryBefore))"
        )

        let runs = try await scenario.runs()
        #expect(runs.first?["kind"] as? String == "upgrade", "\(runs)")
        #expect(runs.first?["state"] as? String == "finished", "\(runs)")
        let backup = try await scenario.runDirectory().appendingPathComponent("pre-upgrade.backup")
        let mode = try FileManager.default.attributesOfItem(atPath: backup.path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        let report = try String(
            contentsOf: try await scenario.runDirectory().appendingPathComponent("report.md"),
            encoding: .utf8
        )
        #expect(report.contains("site data as before"), "\(report)")
    }

    @Test func aFailingSelfTestIsRolledBackAutomaticallyAndProven() async throws {
        let scenario = try await Scenario(selfTest: .init(command: "echo 'site check failed' >&2; exit 1"))
        let result = try await scenario.ctl(scenario.run)
        #expect(result.status == 1, "failed but rolled back: \(result.stderr)\n\(result.stdout)")
        #expect(result.stderr.contains("the self-test of site 24.2.0 failed"), "\(result.stderr)")
        #expect(
            result.stderr.contains("rolled back automatically from base 7.2.0, site 24.2.0 to base 7.2.0, site 24.1.0"),
            "\(result.stderr)"
        )
        #expect(result.stderr.contains("health 200"), "\(result.stderr)")
        #expect(result.stdout.contains("Rolled back automatically"), "\(result.stdout)")

        #expect(try await scenario.box.connection().health().healthy)
        #expect(try await scenario.software() == scenario.softwareBefore)
        #expect(try await scenario.summary() == scenario.summaryBefore)
        let runs = try await scenario.runs()
        #expect(runs.first?["state"] as? String == "failed", "\(runs)")
        let report = try String(
            contentsOf: try await scenario.runDirectory().appendingPathComponent("report.md"),
            encoding: .utf8
        )
        #expect(report.contains("## Automatic rollback"), "\(report)")
        #expect(report.contains("self-test"), "\(report)")
    }

    /// Killed before and after the rollback request: the resumed run ends rolled back and proven all the same
    /// (after the request it installs the package again, which fails again, and rolls back again).
    @Test(arguments: ["rollback:intent", "rollback:acted"])
    func aRollbackInterruptedByAKillEndsRolledBackOnResume(crash: String) async throws {
        let scenario = try await Scenario(selfTest: .init(command: "exit 1"))
        let killed = try await scenario.ctl(scenario.run, crash: crash)
        #expect(killed.status == SIGKILL, "killed at \(crash): \(killed.stderr)")
        #expect(!killed.stdout.contains("Report:"), "no report: killed before the run ended")
        // Before the request the box still runs the failed package; after it, the software it ran before.
        let unhealthy = try await !scenario.box.connection().health().healthy
        #expect(unhealthy == (crash == "rollback:intent"))
        let id = try #require(try await scenario.runs().first?["id"] as? String)
        let resumed = try await scenario.ctl(["resume", id, "--yes", "--accept-eula"])
        #expect(resumed.status == 1, "\(crash): \(resumed.stderr)")
        #expect(resumed.stderr.contains("was rolled back automatically"), "\(resumed.stderr)")
        #expect(try await scenario.box.connection().health().healthy)
        #expect(try await scenario.software() == scenario.softwareBefore)
        #expect(try await scenario.summary() == scenario.summaryBefore)
    }

    /// Site data written after the backup (here while the run was stopped) is not the pre-upgrade site: the
    /// rollback restores the pre-upgrade backup, and proves the summary equal to the snapshot again.
    @Test func aRollbackRestoresThePreUpgradeBackupWhenTheSiteDataChanged() async throws {
        let scenario = try await Scenario(selfTest: .init(command: "exit 1"))
        let killed = try await scenario.ctl(scenario.run, crash: "rollback:intent")
        #expect(killed.status == SIGKILL, "\(killed.stderr)")
        try await scenario.box.admin().perform(
            .appendHistory,
            body: AppendHistoryRequest(rows: [MaintenanceTests.row("written-after-the-backup")])
        )
        #expect(try await scenario.summary().historyRows == scenario.summaryBefore.historyRows + 1)
        let id = try #require(try await scenario.runs().first?["id"] as? String)
        let resumed = try await scenario.ctl(["resume", id, "--yes", "--accept-eula"])
        #expect(resumed.status == 1, "\(resumed.stderr)")
        #expect(resumed.stderr.contains("restored from pre-upgrade.backup"), "\(resumed.stderr)")
        #expect(try await scenario.box.connection().health().healthy)
        #expect(try await scenario.software() == scenario.softwareBefore)
        #expect(try await scenario.summary() == scenario.summaryBefore)
    }

    @Test func withManualRollbackTheFailedBoxIsLeftAsItIsWithWhatToDo() async throws {
        let scenario = try await Scenario(selfTest: .init(command: "exit 1"), rollback: "manual")
        let result = try await scenario.ctl(scenario.run)
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.contains("(rollback: manual)"), "\(result.stderr)")
        #expect(result.stderr.contains("appliancectl updates rollback \(scenario.box.endpoint)"), "\(result.stderr)")
        #expect(result.stderr.contains("`appliancectl resume "), "\(result.stderr)")
        #expect(!result.stderr.contains("the old appliance serves as before"), "\(result.stderr)")
        #expect(try await scenario.software().siteVersion == "24.2.0")
        #expect(try await scenario.box.connection().health().health.status == "self_test_failed")
    }

    /// The manual's preparation: the served certificate with its key and chain is kept with the run (0600),
    /// encrypted under the backup password, and opens with it.
    @Test func theServedCertificateIsExportedWithItsKeyBeforeTheInstall() async throws {
        let scenario = try await Scenario(certificate: true)
        let result = try await scenario.ctl(scenario.run)
        #expect(result.status == 0, "\(result.stderr)\n\(result.stdout)")
        let file = try await scenario.runDirectory().appendingPathComponent("pre-upgrade-certificate.pem")
        let mode = try FileManager.default.attributesOfItem(atPath: file.path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        let pem = try String(contentsOf: file, encoding: .utf8)
        #expect(pem.contains("BEGIN ENCRYPTED PRIVATE KEY"), "\(pem.prefix(200))")
        #expect(pem.components(separatedBy: "BEGIN CERTIFICATE").count - 1 >= 2, "leaf and chain")
        // openssl opens the key with the backup password, and it is the key of the certificate in the file.
        let key = try await TestSupport.run(
            "openssl",
            ["pkey", "-in", file.path, "-passin", "env:BACKUP_PW", "-pubout"],
            environment: scenario.environment
        )
        #expect(key.status == 0, "\(key.stderr)")
        let certificate = try await TestSupport.run("openssl", ["x509", "-in", file.path, "-noout", "-pubkey"])
        #expect(certificate.stdout == key.stdout && !key.stdout.isEmpty)
        let wrong = try await TestSupport.run(
            "openssl",
            ["pkey", "-in", file.path, "-passin", "pass:not-the-password", "-noout"]
        )
        #expect(wrong.status != 0)
    }

    @Test func aDowngradeTargetIsRefusedBeforeAnythingChanges() async throws {
        let scenario = try await Scenario(target: "24.0.0")
        let result = try await scenario.ctl(scenario.run)
        #expect(result.status == 3, "refused by a safety rule: \(result.stderr)")
        #expect(result.stderr.contains("a downgrade is refused and nothing was changed"), "\(result.stderr)")
        #expect(result.stderr.contains("give a newer target"), "\(result.stderr)")
        #expect(try await scenario.software() == scenario.softwareBefore)
        #expect(try await scenario.summary() == scenario.summaryBefore)
        let slots = try await scenario.box.admin().softwareSlots()
        #expect(slots.previous == nil, "nothing was installed")
        let backup = try await scenario.runDirectory().appendingPathComponent("pre-upgrade.backup")
        #expect(!FileManager.default.fileExists(atPath: backup.path), "no backup was taken")

        let id = try #require(try await scenario.runs().first?["id"] as? String)
        let aborted = try await scenario.ctl(["abort", id])
        #expect(aborted.status == 0, "\(aborted.stderr)")
        #expect(aborted.stderr.contains("site-box is left as it was"), "\(aborted.stderr)")
        #expect(try await scenario.runs().first?["state"] as? String == "aborted")
    }

    @Test func everyApplicableUpdateIsInstalledDependenciesFirst() async throws {
        let scenario = try await Scenario(target: "all", base: "7.3.0")
        let result = try await scenario.ctl(scenario.run)
        #expect(result.status == 0, "\(result.stderr)\n\(result.stdout)")
        #expect(result.stdout.contains("→ base 7.3.0, site 24.2.0"), "\(result.stdout)")
        let order = result.stderr.components(separatedBy: "\n").filter { $0.contains("installed ") }
        #expect(
            order.map { $0.trimmingCharacters(in: .whitespaces) } == [
                "installed base 7.3.0 on site-box", "installed site 24.2.0 on site-box",
            ]
        )
        let software = try await scenario.software()
        #expect(software.baseVersion == "7.3.0" && software.siteVersion == "24.2.0")
    }

    @Test func anUnknownTargetOrAMissingDependencyIsRefusedBeforeAnythingChanges() async throws {
        for (scenario, says) in [
            (try await Scenario(target: "24.9.0"), "site version 24.9.0 is unknown to"),
            (try await Scenario(needsBase: "8.0.0"), "add the missing dependency"),
        ] {
            let result = try await scenario.ctl(scenario.run)
            #expect(result.status == 3, "refused by a safety rule: \(result.stderr)")
            #expect(result.stderr.contains(says), "\(result.stderr)")
            #expect(result.stderr.contains("nothing was changed"), "\(result.stderr)")
            #expect(result.stderr.contains("the one change: the update source is now"), "\(result.stderr)")
            #expect(try await scenario.software() == scenario.softwareBefore)
            #expect(try await scenario.box.admin().softwareSlots().previous == nil, "nothing was installed")
        }
    }

    /// Killed with SIGKILL at the start (intent journaled) and at the end (acted, not journaled) of every step,
    /// then resumed: the run finishes with the box upgraded and its data as before.
    @Test(arguments: [
        "preflight:intent", "preflight:acted", "backup:intent", "backup:acted", "install:intent", "install:acted",
        "verify:intent", "verify:acted",
    ])
    func killedAtAStepTheResumedRunReconcilesFromTheBox(crash: String) async throws {
        let scenario = try await Scenario()
        let killed = try await scenario.ctl(scenario.run, crash: crash)
        #expect(killed.status != 0)
        #expect(try await scenario.runs().first?["state"] as? String == "interrupted")
        if crash == "install:acted" {
            #expect(try await scenario.software().siteVersion == "24.2.0", "the install happened before the kill")
        }
        let id = try #require(try await scenario.runs().first?["id"] as? String)
        let resumed = try await scenario.ctl(["resume", id, "--yes", "--accept-eula"])
        #expect(resumed.status == 0, "\(crash): \(resumed.stderr)")
        if crash == "install:acted" {
            #expect(resumed.stderr.contains("install was already done before the interruption"), "\(resumed.stderr)")
        }
        if crash == "backup:acted" {
            #expect(
                resumed.stderr.contains("backup was already done before the interruption"),
                "\(resumed.stderr)"
            )
        }
        #expect(try await scenario.runs().first?["state"] as? String == "finished")
        #expect(try await scenario.software().siteVersion == "24.2.0")
        #expect(Self.sameData(scenario.summaryBefore, try await scenario.summary()))
    }
}
