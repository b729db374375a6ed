import ApplianceAPI
import ApplianceClient
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `method: live` (issue 13, X5): the new box syncs as a failover backup of the old one while the old one serves;
/// only the last delta moves inside the freeze.
extension MigrationTests {
    /// A writer appends a history row and stores a file through the site address every 100 ms until the cutover.
    /// The run is killed inside the sync step, the old box serves on meanwhile, `resume` finishes: every row and
    /// file the old box accepted is on the new box, the relationship is gone, the run's key was never journaled,
    /// and the report gives the downtime.
    @Test func aBoxInUseMigratesLiveWithNothingLost() async throws {
        let scenario = try await Scenario(bytes: 2 * 1024 * 1024)
        try scenario.useLiveMethod()
        let writer = SiteWriter(
            host: scenario.siteAddress,
            port: TestBox.port,
            interval: .milliseconds(100),
            files: true
        )
        let writing = Task { try await writer.run() }
        defer { writing.cancel() }
        try await writer.waitUntilAccepted(3)

        let killed = try await scenario.ctl(
            ["run", scenario.playbook.path, "--inventory", scenario.inventory.path, "--yes"],
            crash: "sync:round"
        )
        #expect(killed.status != 0)
        let runId = try await scenario.runId()
        let keyFile = scenario.work.appendingPathComponent("state/runs/\(runId)/failover.key")
        let key = try String(contentsOf: keyFile, encoding: .utf8)
        let mode = try FileManager.default.attributesOfItem(atPath: keyFile.path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        // Killed inside the sync: the old box was never frozen and takes writes as before.
        let accepted = writer.accepted.count
        try await writer.waitUntilAccepted(accepted + 3)
        let oldStatus: FailoverStatus = try await scenario.old.admin().call(.failoverStatus)
        #expect(oldStatus.role == "primary", "the relationship is kept for resume")

        let result = try await scenario.ctl(["resume", runId, "--yes"])
        #expect(result.status == 0, "\(result.stderr)")
        let order = try await scenario.journalOrder()
        for step in ["sync", "freeze", "final-sync", "verify", "promote", "cutover", "unlink", "decommission"] {
            #expect(order.contains("\(step):done"), "\(step) not done: \(order)")
        }
        #expect(!order.contains("restore:intent") && !order.contains("transfer:intent"), "\(order)")
        // The site answers from the new box: the writer gets through to it.
        try await writer.waitUntilAccepted(writer.accepted.count + 2)
        writing.cancel()
        _ = try? await writing.value

        let onNew = try await scenario.newHistory()
        let missing = writer.accepted.filter { !onNew.contains($0) }
        #expect(missing.isEmpty, "rows the old box accepted are missing on the new box: \(missing)")
        let filesOnNew = Set(try await scenario.newFiles())
        let missingFiles = writer.acceptedFiles.filter { !filesOnNew.contains($0) }
        #expect(!writer.acceptedFiles.isEmpty)
        #expect(missingFiles.isEmpty, "files the old box accepted are missing on the new box: \(missingFiles)")
        #expect(writer.refusals.allSatisfy { $0.contains("moving to a new appliance") }, "\(writer.refusals)")

        let newStatus: FailoverStatus = try await scenario.newAdmin().call(.failoverStatus)
        #expect(newStatus.role == "standalone")
        #expect(!FileManager.default.fileExists(atPath: keyFile.path), "the run's key outlived the relationship")
        let journal = try Data(contentsOf: scenario.work.appendingPathComponent("state/journal.sqlite"))
        #expect(journal.range(of: Data(key.utf8)) == nil, "the failover key is in the journal")
        #expect(!(killed.stdout + killed.stderr + result.stdout + result.stderr).contains(key))

        let report = try await scenario.report()
        #expect(report["allMatched"] as? Bool == true)
        let downtime = try #require(report["downtimeSeconds"] as? Double)
        #expect(downtime > 0 && downtime < 10, "downtime \(downtime) s")
        #expect(result.stdout.contains("Downtime:"), "\(result.stdout)")
        print(
            "live migration: downtime \(String(format: "%.2f", downtime)) s; the writer's rows accepted "
                + "\(writer.accepted.count), files \(writer.acceptedFiles.count), refusals \(writer.refusals.count)"
        )
    }

    /// A failure after the promotion, before the cutover (a failing hook): the old box is primary again and
    /// serves, out of maintenance. `abort` breaks the temporary relationship: both boxes are standalone and the
    /// old one holds exactly what it held.
    @Test func aFailedLiveRunLeavesTheOldBoxServingAndAbortUnlinks() async throws {
        let scenario = try await Scenario(bytes: 256 * 1024)
        try scenario.useLiveMethod()
        let text = try String(contentsOf: scenario.playbook, encoding: .utf8)
            .replacingOccurrences(of: "method: shared-ip", with: "method: hook\n  hook: exit 7")
        try text.write(to: scenario.playbook, atomically: true, encoding: .utf8)
        let failed = try await scenario.ctl([
            "run", scenario.playbook.path, "--inventory", scenario.inventory.path, "--yes",
        ])
        #expect(failed.status != 0)
        #expect(failed.stderr.contains("the cutover hook exited with status 7"), "\(failed.stderr)")
        let order = try await scenario.journalOrder()
        #expect(order.contains("promote:done") && order.contains("freeze:reverted"), "\(order)")

        let session = try await scenario.old.admin()
        let maintenance: MaintenanceStatus = try await session.call(.maintenance)
        #expect(!maintenance.enabled)
        let oldStatus: FailoverStatus = try await session.call(.failoverStatus)
        #expect(oldStatus.role == "primary", "the old box took the primary role back")
        let probe = ApplianceConnection(host: scenario.siteAddress, port: TestBox.port, pin: nil)
        let (_, health, _) = try await probe.health()
        #expect(health.applianceId == scenario.oldId)
        try await scenario.oldUntouched()

        let aborted = try await scenario.ctl(["abort", try await scenario.runId()])
        #expect(aborted.status == 0, "\(aborted.stderr)")
        #expect(aborted.stderr.contains("failover relationship"), "\(aborted.stderr)")
        let oldAfter: FailoverStatus = try await scenario.old.admin().call(.failoverStatus)
        let newAfter: FailoverStatus = try await scenario.newAdmin().call(.failoverStatus)
        #expect(oldAfter.role == "standalone" && newAfter.role == "standalone")
        let after: MaintenanceStatus = try await scenario.old.admin().call(.maintenance)
        #expect(!after.enabled)
        try await scenario.oldUntouched()
    }
}

extension MigrationTests {
    /// The live method killed with SIGKILL at the start of every step, inside the sync (after the relationship
    /// is established, after a sync round) and after every step's action, resuming each time: the new box ends
    /// equal to the old one, the old one untouched until the verification, no relationship left.
    @Test(arguments: [
        [
            "preflight:intent", "install:intent", "backup:intent", "certificate:intent", "address:intent",
            "package:intent", "sync:intent", "sync:established", "sync:round", "freeze:intent", "final-sync:intent",
            "verify:intent", "promote:intent", "cutover:intent", "unlink:intent", "decommission:intent",
        ],
        [
            "backup:acted", "package:acted", "sync:acted", "freeze:acted", "final-sync:acted", "verify:acted",
            "promote:acted", "cutover:released", "cutover:acted", "unlink:acted", "decommission:reset",
        ],
    ])
    func aLiveRunKilledAtEveryStepAndResumed(_ crashes: [String]) async throws {
        let scenario = try await Scenario(bytes: 4 * 1024 * 1024)
        try scenario.useLiveMethod()
        var first = true
        var frozenBy: Date?
        for crash in crashes {
            let arguments =
                first
                ? ["run", scenario.playbook.path, "--inventory", scenario.inventory.path, "--yes"]
                : ["resume", try await scenario.runId(), "--yes"]
            first = false
            let result = try await scenario.ctl(arguments, crash: crash)
            #expect(result.status == SIGKILL || result.status == 128 + SIGKILL, "\(crash): \(result.stderr)")
            if crash == "freeze:acted" { frozenBy = Date() }
            if !(try await scenario.journalOrder()).contains("verify:done") {
                try await scenario.oldUntouched()
            }
        }
        let final = try await scenario.ctl(["resume", try await scenario.runId(), "--yes"])
        #expect(final.status == 0, "\(final.stderr)")
        let report = try await scenario.report()
        #expect(report["allMatched"] as? Bool == true)
        #expect(report["state"] as? String == "finished")
        if let frozenBy {
            // The freeze done again by the resume keeps the time the old box was first frozen.
            let frozenAt = try #require((report["frozenAt"] as? String).flatMap(APICoding.parseDate))
            #expect(frozenAt <= frozenBy, "the downtime counts from the resume, not from the first freeze")
        }
        #expect(try await scenario.newSummary() == scenario.oldSummary)
        let newStatus: FailoverStatus = try await scenario.newAdmin().call(.failoverStatus)
        #expect(newStatus.role == "standalone")
        let order = try await scenario.journalOrder()
        let verified = try #require(order.firstIndex(of: "verify:done"))
        let reset = try #require(order.firstIndex(of: "decommission:intent"))
        #expect(verified < reset)
        #expect(await scenario.old.waitForExit() == 0, "the old box shuts down cleanly")
    }
}

extension MigrationTests {
    /// A playbook that names no method: between two boxes that both support failover sync the run chooses the
    /// live method, says so in the dry run and in the run, and journals the choice with the run.
    @Test func withoutAMethodTheRunChoosesLiveWhereBothBoxesSync() async throws {
        let scenario = try await Scenario(bytes: 256 * 1024)
        let text = try String(contentsOf: scenario.playbook, encoding: .utf8)
        try text.replacingOccurrences(of: "method: backup-restore\n", with: "")
            .write(to: scenario.playbook, atomically: true, encoding: .utf8)
        let chosen = "Method: live (no 'method' in the playbook: both boxes support failover sync)"
        let dry = try await scenario.ctl([
            "run", scenario.playbook.path, "--inventory", scenario.inventory.path, "--dry-run",
        ])
        #expect(dry.status == 0, "\(dry.stderr)")
        #expect(dry.stdout.contains(chosen), "\(dry.stdout)")
        let result = try await scenario.ctl([
            "run", scenario.playbook.path, "--inventory", scenario.inventory.path, "--yes",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        #expect((result.stdout + result.stderr).contains(chosen), "\(result.stdout)")
        let order = try await scenario.journalOrder()
        #expect(order.contains("sync:done") && order.contains("final-sync:done"), "\(order)")
        #expect(!order.contains("restore:intent"), "\(order)")
        #expect(try await scenario.newSummary() == scenario.oldSummary)
    }
}

extension MigrationTests.Scenario {
    /// The playbook with `method: live`.
    func useLiveMethod() throws {
        let text = try String(contentsOf: playbook, encoding: .utf8)
        try text.replacingOccurrences(of: "method: backup-restore\n", with: "method: live\n")
            .write(to: playbook, atomically: true, encoding: .utf8)
    }

    /// The new box's admin, with the old box's password (the synced users') or its own.
    func newAdmin() async throws -> ApplianceConnection {
        let (pin, _) = try await PinnedHTTPClient.fetchPeerCertificate(host: new.address, port: TestBox.port)
        let connection = ApplianceConnection(host: new.address, port: TestBox.port, pin: pin)
        for password in [TestBox.adminPassword, environment["NEW_PW"] ?? ""] {
            if let login = try? await connection.login(username: "admin", password: password) {
                return connection.authenticated(login.token)
            }
        }
        throw TestFailure("cannot log in to the new box")
    }

    func newFiles() async throws -> [String] {
        let files: [StoredFileInfo] = try await newAdmin().call(.listFiles)
        return files.map(\.name)
    }
}
