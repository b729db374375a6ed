import ApplianceAPI
import ApplianceClient
import Foundation
import Synchronization
import Testing

/// The migration of a box in use (issue 11): the freeze, its lifting on failure, abort, and the downtime.
extension MigrationTests {
    /// Issues 11 and 13: a site is never idle. A writer appends a history row and stores a file through the site
    /// address every 100 ms while the migration (`method: backup-restore`) runs; the old box is frozen before the
    /// backup, so every row and file it accepted is on the new box afterwards, the writer is told why it is
    /// refused meanwhile, and the report gives the downtime.
    @Test func aBoxInUseMigratesWithNothingLost() async throws {
        let scenario = try await Scenario(bytes: 2 * 1024 * 1024)
        let writer = SiteWriter(
            host: scenario.siteAddress,
            port: TestBox.port,
            interval: .milliseconds(100),
            files: true
        )
        let writing = Task { try await writer.run() }
        defer { writing.cancel() }
        try await writer.waitUntilAccepted(3)
        let result = try await scenario.ctlOffPool([
            "run", scenario.playbook.path, "--inventory", scenario.inventory.path, "--yes",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        // The site answers from the new box again: the writer gets through to it.
        let accepted = writer.accepted.count
        try await writer.waitUntilAccepted(accepted + 2)
        writing.cancel()
        _ = try? await writing.value
        let refusals = writer.refusals
        #expect(!refusals.isEmpty, "the writer was never refused during the freeze")
        #expect(refusals.allSatisfy { $0.contains("moving to a new appliance") }, "\(refusals)")
        let onNew = try await scenario.newHistory()
        let missing = writer.accepted.filter { !onNew.contains($0) }
        #expect(missing.isEmpty, "rows the site accepted are missing on the new box: \(missing)")
        let filesOnNew = Set(try await scenario.newFiles())
        #expect(!writer.acceptedFiles.isEmpty)
        let missingFiles = writer.acceptedFiles.filter { !filesOnNew.contains($0) }
        #expect(missingFiles.isEmpty, "files the site accepted are missing on the new box: \(missingFiles)")
        let report = try await scenario.report()
        #expect(report["allMatched"] as? Bool == true)
        let downtime = try #require(report["downtimeSeconds"] as? Double)
        #expect(downtime > 0 && downtime < 120, "\(downtime)")
        #expect(result.stdout.contains("Downtime:"), "\(result.stdout)")
    }

    /// A failed run before the cutover lifts the freeze: the old box takes writes again; abort ends the run.
    @Test func aFailedRunThawsTheOldBoxAndAbortEndsIt() async throws {
        let scenario = try await Scenario(bytes: 256 * 1024)
        let text = try String(contentsOf: scenario.playbook, encoding: .utf8)
            .replacingOccurrences(of: "method: shared-ip", with: "method: hook\n  hook: exit 7")
        try text.write(to: scenario.playbook, atomically: true, encoding: .utf8)
        let failed = try await scenario.ctlOffPool([
            "run", scenario.playbook.path, "--inventory", scenario.inventory.path, "--yes",
        ])
        #expect(failed.status != 0)
        #expect(failed.stderr.contains("the cutover hook exited with status 7"), "\(failed.stderr)")
        #expect(failed.stderr.contains("appliancectl abort"), "\(failed.stderr)")
        let order = try await scenario.journalOrder()
        #expect(order.contains("freeze:done") && order.contains("freeze:reverted"), "\(order)")
        // The old box serves exactly as before: out of maintenance, writes accepted, its site address answering.
        let session = try await scenario.old.admin()
        let maintenance: MaintenanceStatus = try await session.call(.maintenance)
        #expect(!maintenance.enabled)
        let probe = ApplianceConnection(host: scenario.siteAddress, port: TestBox.port, pin: nil)
        let (_, health, _) = try await probe.health()
        #expect(health.applianceId == scenario.oldId)
        try await scenario.oldUntouched()

        let aborted = try await scenario.ctlOffPool(["abort", try await scenario.runId()])
        #expect(aborted.status == 0, "\(aborted.stderr)")
        let listed = try await scenario.ctlOffPool(["runs"])
        #expect(listed.stdout.contains("aborted"), "\(listed.stdout)")
        let resumed = try await scenario.ctlOffPool(["resume", try await scenario.runId(), "--yes"])
        #expect(resumed.status != 0)
        #expect(resumed.stderr.contains("aborted"), "\(resumed.stderr)")
        try await scenario.oldUntouched()
    }
}

/// A client of the site: appends one history row every `interval` (and, with `files`, stores one small file
/// after it) through the site address, logging in again when its session ends, and remembers which rows and
/// files were accepted and why others were refused.
final class SiteWriter: Sendable {
    let host: String
    let port: Int
    let interval: Duration
    let files: Bool
    private let state = Mutex<(accepted: [String], refusals: [String], files: [String])>(([], [], []))

    init(host: String, port: Int, interval: Duration = .milliseconds(200), files: Bool = false) {
        self.host = host
        self.port = port
        self.interval = interval
        self.files = files
    }

    var accepted: [String] { state.withLock { $0.accepted } }
    var refusals: [String] { state.withLock { $0.refusals } }
    var acceptedFiles: [String] { state.withLock { $0.files } }

    func run() async throws {
        var session: ApplianceConnection?
        var n = 0
        while !Task.isCancelled {
            do {
                if session == nil {
                    let (pin, _) = try await PinnedHTTPClient.fetchPeerCertificate(host: host, port: port)
                    let connection = ApplianceConnection(host: host, port: port, pin: pin, requestTimeout: .seconds(10))
                    session = connection.authenticated(
                        try await connection.login(username: "admin", password: TestBox.adminPassword).token
                    )
                }
                n += 1
                let marker = "writer-\(n)"
                try await session?.perform(
                    .appendHistory,
                    body: AppendHistoryRequest(rows: [MaintenanceTests.row(marker)])
                )
                state.withLock { $0.accepted.append(marker) }
                if files, let session {
                    let name = "\(marker).txt"
                    let stored = try await session.client.send(
                        method: "PUT",
                        path: Endpoint.putFile.path(["name": name]),
                        headers: session.authHeaders,
                        body: Array("written by \(marker)".utf8)
                    )
                    if stored.isSuccess { state.withLock { $0.files.append(name) } }
                }
            } catch let error as ApplianceClientError where error.apiStatus == 503 {
                state.withLock { $0.refusals.append(error.message) }
            } catch {
                session = nil  // logged out, or the site address is moving: connect again
            }
            try? await Task.sleep(for: interval)
        }
    }

    func waitUntilAccepted(_ count: Int, timeout: Duration = .seconds(60)) async throws {
        let deadline = ContinuousClock.now + timeout
        while accepted.count < count {
            guard ContinuousClock.now < deadline else {
                throw TestFailure("the site accepted only \(accepted.count) of \(count) writes; refusals: \(refusals)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }
}

extension MigrationTests.Scenario {
    /// Runs appliancectl on a thread of its own, so the cooperative pool stays free for the test's other tasks.
    func ctlOffPool(_ arguments: [String]) async throws -> (status: Int32, stdout: String, stderr: String) {
        let environment = environment
        return try await TestSupport.run(
            TestSupport.binary("appliancectl").path,
            arguments,
            environment: environment
        )
    }

    /// The session ids of every history row on the new box.
    func newHistory() async throws -> Set<String> {
        let (pin, _) = try await PinnedHTTPClient.fetchPeerCertificate(host: new.address, port: TestBox.port)
        let connection = ApplianceConnection(host: new.address, port: TestBox.port, pin: pin)
        let session = connection.authenticated(
            try await connection.login(username: "admin", password: TestBox.adminPassword).token
        )
        var ids = Set<String>()
        var offset = 0
        while true {
            let page: HistoryPage = try await session.call(.listHistory, query: "?offset=\(offset)&limit=10000")
            ids.formUnion(page.rows.map(\.sessionId))
            offset += page.rows.count
            if page.rows.isEmpty || offset >= page.total { return ids }
        }
    }
}
