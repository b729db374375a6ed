import ApplianceAPI
import ApplianceClient
import ApplianceCrypto
import Foundation
import SoftwarePackages
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The migration (P4–P6, X1, X2) with `appliancectl` as a process and both boxes as `applianced` processes:
/// end to end, and killed with SIGKILL at each step and inside each transfer, then resumed.
@Suite(.serialized) struct MigrationTests {
    /// Two boxes, a vendor repository, an inventory and a playbook; the old box holds a site with a CA-issued
    /// certificate, site version 24.2.0, generated data, and a second (site) address for the shared-IP cutover.
    final class Scenario: @unchecked Sendable {
        let vendor: TestVendor
        let old: TestBox
        let new: TestBox
        let siteAddress: String
        let work = TestSupport.temporaryDirectory("migration")
        var oldSummary: SiteSummary!
        var oldId = ""

        var environment: [String: String] {
            [
                "APPLIANCECTL_HOME": work.appendingPathComponent("state").path,
                "OLD_PW": TestBox.adminPassword,
                "NEW_PW": "New-Box-Password-7",
                "BACKUP_PW": "Backup-Password-9",
            ]
        }
        var inventory: URL { work.appendingPathComponent("inventory.yml") }
        var playbook: URL { work.appendingPathComponent("migrate.yml") }

        /// `newDataDir` puts the new box's data somewhere of the test's choosing (a small file system).
        init(bytes: Int64, newDataDir: URL? = nil) async throws {
            vendor = try TestVendor()
            try vendor.publish(try vendor.package("site", .site, "24.2.0"))
            old = try await TestBox(arguments: ["--vendor-key", vendor.keyFile.path])
            new = try await TestBox(dataDir: newDataDir, arguments: ["--vendor-key", vendor.keyFile.path])
            siteAddress = TestSupport.nextAddress()
            let admin = try await old.admin()
            try await admin.perform(.setUpdateSource, body: UpdateSourceRequest(repository: vendor.repository.path))
            _ = try await admin.call(
                .installUpdate,
                body: InstallRequest(name: "site", version: "24.2.0", acceptEula: true),
                as: InstallResponse.self
            )
            let session = try await old.admin()
            try await session.send(.generateSiteData, body: GenerateSiteDataRequest(bytes: bytes, seed: 7))
            let status: StatusResponse = try await session.call(.status)
            oldId = status.applianceId
            let pki = try TestPKI()
            let (certificate, key) = try pki.leaf(status.hostname)
            let imported: CertificateEntry = try await session.call(
                .importCertificate,
                body: CertificateImportRequest(
                    name: "site",
                    pem: certificate + pki.intermediate + pki.root + key
                )
            )
            let added: AddressChangeResponse = try await session.call(
                .addAddress,
                body: AddressInput(
                    enabled: true,
                    port: "eth0",
                    address: siteAddress,
                    subnetMask: "255.0.0.0",
                    access: .both
                )
            )
            let network: NetworkResponse = try await session.call(.network)
            // The address we talk over last: its next handshake presents the new key.
            let entries = network.addresses.filter { $0.id == added.address?.id || $0.address == old.address }
            for entry in entries.sorted(by: { a, _ in a.address != old.address }) {
                try await session.perform(
                    .assignCertificate,
                    parameters: ["id": "\(entry.id)"],
                    body: CertificateAssignment(certificateId: imported.id)
                )
            }
            // Served from the next handshake: wait for it, then record the pin of the site certificate.
            try await old.waitUntilServing(try PublicKeyPin.sha256(certificatePEM: certificate))
            try await old.waitUntilHealthy()
            oldSummary = try await old.admin().call(.siteSummary)

            try """
            appliances:
              old-box:
                physical:
                  address: \(old.endpoint)
                pin: \(old.pin!)
                password: OLD_PW
              new-box:
                physical:
                  address: \(new.endpoint)
                password: NEW_PW
            """.write(to: inventory, atomically: true, encoding: .utf8)
            try """
            playbook: migrate
            old: old-box
            new: new-box
            method: backup-restore
            backup:
              password: BACKUP_PW
            packages:
              repository: \(vendor.repository.path)
            cutover:
              method: shared-ip
              site_address: \(siteAddress):\(TestBox.port)
            decommission: true
            """.write(to: playbook, atomically: true, encoding: .utf8)
        }

        /// Runs appliancectl; `crash` sets the point where it kills itself.
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

        func runId() async throws -> String {
            let listed = try await ctl(["runs", "--json"])
            let runs = try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]]
            return try #require(runs?.first?["id"] as? String)
        }

        /// The old box still holds its whole site and its own password: it was not reset.
        func oldUntouched() async throws {
            let session = try await old.admin()
            let summary: SiteSummary = try await session.call(.siteSummary)
            #expect(summary == oldSummary)
        }

        /// The new box, reached with the old box's password (the restored site's), holds the old site.
        func newSummary() async throws -> SiteSummary {
            let (pin, _) = try await PinnedHTTPClient.fetchPeerCertificate(host: new.address, port: TestBox.port)
            let connection = ApplianceConnection(host: new.address, port: TestBox.port, pin: pin)
            let login = try await connection.login(username: "admin", password: TestBox.adminPassword)
            return try await connection.authenticated(login.token).call(.siteSummary)
        }

        func report() async throws -> [String: Any] {
            let file = work.appendingPathComponent("state/runs/\(try await runId())/report.json")
            return try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: file)) as? [String: Any])
        }

        func journalOrder() async throws -> [String] {
            let result = try await TestSupport.run(
                "sqlite3",
                [
                    work.appendingPathComponent("state/journal.sqlite").path,
                    "SELECT step || ':' || phase FROM entry ORDER BY sequence",
                ]
            )
            return result.stdout.split(separator: "\n").map(String.init)
        }

        deinit {
            old.terminate()
            new.terminate()
        }
    }

    @Test func dryRunPrintsThePlanAndChangesNothing() async throws {
        let scenario = try await Scenario(bytes: 256 * 1024)
        let result = try await scenario.ctl([
            "run", scenario.playbook.path, "--inventory", scenario.inventory.path, "--dry-run",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("6 Restore the backup"))
        #expect(result.stdout.contains("[asks first unless --yes]"))
        let runs = try await scenario.ctl(["runs", "--json"])
        #expect(runs.status == 0, "\(runs.stderr)")
        let listed = try JSONSerialization.jsonObject(with: Data(runs.stdout.utf8)) as? [Any]
        #expect(listed?.isEmpty == true, "a dry run journals no run: \(runs.stdout)")
        #expect(!FileManager.default.fileExists(atPath: scenario.work.appendingPathComponent("state/runs").path))
        try await scenario.oldUntouched()
        #expect(
            try await scenario.new.connection().login(username: "admin", password: "password").passwordChangeRequired
        )
    }

    @Test func aMalformedPlaybookOrUnknownNameIsRefusedBeforeAnythingRuns() async throws {
        let scenario = try await Scenario(bytes: 128 * 1024)
        let bad = scenario.work.appendingPathComponent("bad.yml")
        try "playbook: migrate\nold: old-box\nnew: no-such-box\nbackup:\n  password: BACKUP_PW\n".write(
            to: bad,
            atomically: true,
            encoding: .utf8
        )
        let result = try await scenario.ctl(["run", bad.path, "--inventory", scenario.inventory.path, "--yes"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("Error: \(bad.path):3:"), "\(result.stderr)")
        #expect(result.stderr.contains("no-such-box"), "\(result.stderr)")
        #expect(!result.stderr.contains("Usage:"))
        #expect(
            !FileManager.default.fileExists(atPath: scenario.work.appendingPathComponent("state/journal.sqlite").path)
        )
        try await scenario.oldUntouched()
    }

    @Test func decommissionWithoutEvidenceIsRefused() async throws {
        let scenario = try await Scenario(bytes: 128 * 1024)
        let book = scenario.work.appendingPathComponent("decommission.yml")
        try "playbook: decommission\nappliance: old-box\n".write(to: book, atomically: true, encoding: .utf8)
        let refused = try await scenario.ctl(["run", book.path, "--inventory", scenario.inventory.path, "--yes"])
        #expect(refused.status == 3, "refused by a safety rule: \(refused.stderr)")
        #expect(refused.stderr.contains("no verified migration or verified backup"), "\(refused.stderr)")
        let wrongName = try await scenario.ctl([
            "run", book.path, "--inventory", scenario.inventory.path, "--yes", "--force", "--confirm-name", "old",
        ])
        #expect(wrongName.status == 3, "--force needs the right name typed back: \(wrongName.stderr)")
        #expect(wrongName.stderr.contains("--force --confirm-name old-box"), "\(wrongName.stderr)")
        try await scenario.oldUntouched()
    }

    /// Kills appliancectl at the start (intent journaled, nothing done) of every step, and inside every
    /// transfer, resuming each time; then checks the new box equals the old one and the old one was only reset
    /// after verification.
    @Test(arguments: [
        [
            "preflight:intent", "install:intent", "freeze:intent", "backup:bytes=300000", "backup:intent",
            "certificate:intent",
            "address:intent", "package:intent", "restore:bytes=300000", "restore:intent", "transfer:bytes=400000",
            "transfer:intent", "verify:intent", "cutover:intent", "decommission:intent",
        ],
        [
            "preflight:acted", "install:acted", "freeze:acted", "backup:acted", "certificate:acted", "address:acted",
            "package:acted", "restore:acted", "transfer:bytes=1500000", "transfer:acted", "verify:acted",
            "cutover:released", "cutover:acted", "decommission:reset",
        ],
    ])
    func killedAtEveryStepAndResumed(_ crashes: [String]) async throws {
        let scenario = try await Scenario(bytes: 6 * 1024 * 1024)
        var first = true
        for crash in crashes {
            let arguments =
                first
                ? ["run", scenario.playbook.path, "--inventory", scenario.inventory.path, "--yes"]
                : ["resume", try await scenario.runId(), "--yes"]
            first = false
            let result = try await scenario.ctl(arguments, crash: crash)
            #expect(result.status == SIGKILL || result.status == 128 + SIGKILL, "\(crash): \(result.stderr)")
            let order = try await scenario.journalOrder()
            if !order.contains("verify:done") {
                try await scenario.oldUntouched()
            }
        }
        let final = try await scenario.ctl(["resume", try await scenario.runId(), "--yes"])
        #expect(final.status == 0, "\(final.stderr)")
        let report = try await scenario.report()
        #expect(report["allMatched"] as? Bool == true)
        #expect(report["state"] as? String == "finished")

        // The new box holds what the old one held: counts and checksums, files and recordings included.
        #expect(try await scenario.newSummary() == scenario.oldSummary)
        // The site address answers from the new box.
        let probe = ApplianceConnection(host: scenario.siteAddress, port: TestBox.port, pin: nil)
        let (_, health, _) = try await probe.health()
        #expect(health.applianceId != scenario.oldId)
        // The old box was reset only after the new one was verified, and is shut down.
        let order = try await scenario.journalOrder()
        let verified = try #require(order.firstIndex(of: "verify:done"))
        let reset = try #require(order.firstIndex(of: "decommission:intent"))
        #expect(verified < reset)
        #expect(await scenario.old.waitForExit() == 0, "the old box shuts down cleanly")
    }

    /// A cutover hook that fails stops the run before the old box is touched beyond letting go of the site
    /// address; once the hook is fixed, resume swings the site address (a socat NAT, the lab hook in Playbooks/)
    /// to the new box and finishes.
    @Test func aFailingCutoverHookStopsTheRunAndResumeFinishesOnceFixed() async throws {
        let scenario = try await Scenario(bytes: 256 * 1024)
        let hooks = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Playbooks/hooks/loopback-nat-swing.sh")
        let fixed = scenario.work.appendingPathComponent("hook-fixed")
        let pidFile = scenario.work.appendingPathComponent("nat.pid")
        let dump = scenario.work.appendingPathComponent("hook-env")
        let text = try String(contentsOf: scenario.playbook, encoding: .utf8)
            .replacingOccurrences(
                of: "method: shared-ip",
                with:
                    "method: hook\n  hook: env > \(dump.path); echo trying; test -e \(fixed.path) && bash \(hooks.path)"
            )
        try text.write(to: scenario.playbook, atomically: true, encoding: .utf8)
        defer {
            if let pid = try? String(contentsOf: pidFile, encoding: .utf8), let id = pid_t(pid.filter(\.isNumber)) {
                kill(id, SIGTERM)
            }
        }
        var environment = scenario.environment
        environment["CUTOVER_NAT_PIDFILE"] = pidFile.path
        environment["APPLIANCE_PASSWORD"] = "Ambient-Password-3"
        environment["CUTOVER_DNS_TOKEN"] = "Hook-Token-4"
        let ctl = TestSupport.binary("appliancectl").path
        let arguments = ["run", scenario.playbook.path, "--inventory", scenario.inventory.path, "--yes"]
        let failed = try await TestSupport.run(ctl, arguments, environment: environment)
        #expect(failed.status == 1, "\(failed.stderr)")
        #expect(failed.stderr.contains("the cutover hook exited with status 1"), "\(failed.stderr)")
        #expect((failed.stdout + failed.stderr).contains("hook: trying"), "\(failed.stderr)")
        let order = try await scenario.journalOrder()
        #expect(order.contains("cutover:intent"), "the cutover ran: \(order)")
        #expect(order.contains("cutover:failed"), "\(order)")
        #expect(!order.contains("cutover:done"), "\(order)")
        #expect(!order.contains("decommission:intent"))
        // The hook saw the documented variables and none of the passwords appliancectl holds.
        let seen = try String(contentsOf: dump, encoding: .utf8)
        #expect(seen.contains("APPLIANCE_SITE_ADDRESS=\(scenario.siteAddress):\(TestBox.port)"), "\(seen)")
        #expect(seen.contains("CUTOVER_NAT_PIDFILE=\(pidFile.path)"), "\(seen)")
        for secret in [
            TestBox.adminPassword, "New-Box-Password-7", "Backup-Password-9", "Ambient-Password-3", "Hook-Token-4",
        ] {
            #expect(!seen.contains(secret), "a secret reached the cutover hook")
        }
        for name in ["OLD_PW", "NEW_PW", "BACKUP_PW", "APPLIANCE_PASSWORD", "CUTOVER_DNS_TOKEN"] {
            #expect(!seen.contains("\(name)="), "\(name) reached the cutover hook")
        }
        // Not reset: the old box still holds its site and its password.
        try await scenario.oldUntouched()

        try Data().write(to: fixed)
        let resumed = try await TestSupport.run(
            ctl,
            ["resume", try await scenario.runId(), "--yes"],
            environment: environment
        )
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stderr.contains("now forwards to"), "\(resumed.stderr)")
        let report = try await scenario.report()
        #expect(report["allMatched"] as? Bool == true)
        #expect(report["state"] as? String == "finished")
        let probe = ApplianceConnection(host: scenario.siteAddress, port: TestBox.port, pin: nil)
        let (_, health, _) = try await probe.health()
        #expect(health.applianceId != scenario.oldId)
        #expect(try await scenario.newSummary() == scenario.oldSummary)
    }

    /// Step 5 from a repository served over HTTP (`python3 -m http.server` on loopback): the new box is pointed at
    /// it and installs the site package itself, as a box with a network path to the vendor's repository would.
    @Test func stepFiveFromAnHTTPRepository() async throws {
        let scenario = try await Scenario(bytes: 256 * 1024)
        let port = 21_000 + Int(getpid()) % 20_000
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        server.arguments = [
            "python3", "-m", "http.server", "\(port)", "--bind", "127.0.0.1", "--directory",
            scenario.vendor.repository.path,
        ]
        server.standardOutput = FileHandle.nullDevice
        server.standardError = FileHandle.nullDevice
        try server.run()
        defer { server.terminate() }
        let url = "http://127.0.0.1:\(port)"
        // Fetched by a python3 client: Foundation's Data(contentsOf:) does not speak http on Linux.
        try await TestSupport.poll("the HTTP repository at \(url)", every: .milliseconds(200)) {
            let fetch = try await TestSupport.run(
                "python3",
                [
                    "-c", "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)",
                    "\(url)/index.json",
                ]
            )
            return fetch.status == 0
        }
        let text = try String(contentsOf: scenario.playbook, encoding: .utf8)
            .replacingOccurrences(of: "repository: \(scenario.vendor.repository.path)", with: "repository: \(url)")
        try text.write(to: scenario.playbook, atomically: true, encoding: .utf8)
        let result = try await scenario.ctl([
            "run", scenario.playbook.path, "--inventory", scenario.inventory.path, "--yes",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let report = try await scenario.report()
        #expect(report["allMatched"] as? Bool == true)
        let steps = try #require(report["steps"] as? [[String: Any]])
        let package = try #require(steps.first { $0["step"] as? String == "package" }?["detail"] as? [String: String])
        #expect(package["siteVersion"] == "24.2.0")
        #expect(package["from"] == nil, "the directory path was taken: \(package)")
        #expect(try await scenario.newSummary() == scenario.oldSummary)
    }

    /// A target whose data file system cannot take the old site stops the run at step 1, before the backup, with
    /// what to do; the old box is untouched. The new box's data lives on a 48 MiB tmpfs (mounting needs root).
    @Test(.enabled(if: getuid() == 0, "mounts a tmpfs"))
    func aTargetTooSmallForTheSiteStopsBeforeTheBackup() async throws {
        let small = TestSupport.temporaryDirectory("small")
        let mount = try await TestSupport.run("mount", ["-t", "tmpfs", "-o", "size=48m", "tmpfs", small.path])
        try #require(mount.status == 0, "\(mount.stderr)")
        // Lazy, so it needs no waiting for: the mount goes once nothing uses it.
        defer { _ = try? Process.run(URL(fileURLWithPath: "/usr/bin/umount"), arguments: ["-l", small.path]) }
        let scenario = try await Scenario(bytes: 256 * 1024, newDataDir: small.appendingPathComponent("data"))
        defer { scenario.new.terminate() }
        let result = try await scenario.ctl([
            "run", scenario.playbook.path, "--inventory", scenario.inventory.path, "--yes",
        ])
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.contains("MiB free for site data"), "\(result.stderr)")
        #expect(result.stderr.contains("free space on it or choose another target"), "\(result.stderr)")
        let order = try await scenario.journalOrder()
        #expect(order.contains("install:failed"), "\(order)")
        #expect(!order.contains { $0.hasPrefix("backup:") }, "\(order)")
        try await scenario.oldUntouched()
    }
}
