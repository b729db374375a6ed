import ApplianceAPI
import ApplianceClient
import Foundation
import Testing

/// A7 split brain: both appliances primary is detected and shown on both; the history digest compares content.
@Suite(.serialized) struct FailoverConflictTests {
    @Test func bothPrimaryIsShownAsAConflictOnBothBoxes() async throws {
        let pair = try await FailoverTests.Pair(bytes: 128 * 1024)
        _ = try await pair.sync()
        // The link is down (the primary is gone) and the backup is forced to primary; then the old one returns.
        await pair.a.kill()
        let forced: FailoverStatus = try await pair.backupAdmin().call(
            .becomePrimary,
            body: BecomePrimaryRequest(force: true)
        )
        #expect(forced.role == "primary" && forced.conflict == nil)
        try await pair.a.start()
        let deadline = Date().addingTimeInterval(60)
        var seen: (FailoverStatus, FailoverStatus)?
        while Date() < deadline {
            let a: FailoverStatus = try await pair.a.admin().call(.failoverStatus)
            let b: FailoverStatus = try await pair.backupAdmin().call(.failoverStatus)
            if a.conflict != nil && b.conflict != nil {
                seen = (a, b)
                break
            }
            try await Task.sleep(for: .milliseconds(500))
        }
        let (a, b) = try #require(seen, "no conflict shown on both boxes within 60 s")
        #expect(a.role == "primary" && b.role == "primary")
        for status in [a, b] {
            #expect(status.conflict?.contains("both appliances are primary") == true)
            #expect(status.conflict?.contains("appliancectl failover fix") == true)
        }
    }

    @Test func aPrimaryWithItsBackupShowsNoConflict() async throws {
        let pair = try await FailoverTests.Pair(bytes: 64 * 1024)
        _ = try await pair.sync()
        // Two check periods pass; the pair is healthy, so nothing is shown.
        try await Task.sleep(for: .seconds(11))
        let a: FailoverStatus = try await pair.a.admin().call(.failoverStatus)
        let b: FailoverStatus = try await pair.backupAdmin().call(.failoverStatus)
        #expect(a.conflict == nil && b.conflict == nil)
    }

    @Test func theHistoryDigestIgnoresLocalRowOrder() async throws {
        let one = try await TestBox()
        let two = try await TestBox()
        defer {
            one.terminate()
            two.terminate()
        }
        let rows = (1...5).map { MaintenanceTests.row("order-\($0)") }
        try await one.admin().perform(.appendHistory, body: AppendHistoryRequest(rows: rows))
        try await two.admin().perform(.appendHistory, body: AppendHistoryRequest(rows: Array(rows.reversed())))
        let first: SiteSummary = try await one.admin().call(.siteSummary)
        let second: SiteSummary = try await two.admin().call(.siteSummary)
        #expect(first.historyRows == 5 && first.historyRows == second.historyRows)
        #expect(first.historyDigest == second.historyDigest)
    }
}
