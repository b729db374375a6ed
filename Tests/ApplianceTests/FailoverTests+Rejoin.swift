import ApplianceAPI
import ApplianceClient
import Foundation
import Testing

extension FailoverTests {
    /// A pair broken for an upgrade is set up again although both boxes hold the site: the former backup rejoins,
    /// the primary first takes the sessions each box ended alone while they were apart (by row uid: none lost,
    /// none doubled), the backup's first sync brings it the primary's. Either box may be the primary again.
    @Test(arguments: [false, true])
    func aBrokenPairIsEstablishedAgainWithNothingLostOrDoubled(swapped: Bool) async throws {
        let pair = try await Pair(bytes: 64 * 1024)
        _ = try await pair.sync()
        let (synced, _) = try await pair.summaries()
        let _: FailoverStatus = try await pair.a.admin().call(.breakFailover)
        try await pair.a.admin().perform(
            .appendHistory,
            body: AppendHistoryRequest(rows: [MaintenanceTests.row("on-a")])
        )
        try await pair.backupAdmin().perform(
            .appendHistory,
            body: AppendHistoryRequest(rows: [MaintenanceTests.row("on-b")])
        )
        let (primary, backup) = swapped ? (pair.b, pair.a) : (pair.a, pair.b)
        let primaryAdmin = swapped ? try await pair.backupAdmin() : try await pair.a.admin()
        let status: FailoverStatus = try await primaryAdmin.call(
            .establishFailover,
            body: EstablishRequest(backup: backup.endpoint, reverse: primary.endpoint, firstSyncDelaySeconds: 3600)
        )
        #expect(status.role == "primary")
        let backupAdmin = swapped ? try await pair.a.admin() : try await pair.backupAdmin()
        let record: SyncRecord = try await backupAdmin.call(.syncNow, body: SyncNowRequest(wait: true))
        #expect(record.result == "ok")
        for admin in [primaryAdmin, backupAdmin] {
            let page: HistoryPage = try await admin.call(.listHistory, query: "?offset=0&limit=10000")
            let markers = page.rows.map(\.sessionId).filter { $0.hasPrefix("on-") }.sorted()
            #expect(markers == ["on-a", "on-b"], "\(markers)")
            #expect(page.total == synced.historyRows + 2, "rows lost or doubled: \(page.total)")
        }
    }
}
