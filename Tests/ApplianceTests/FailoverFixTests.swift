import ApplianceAPI
import ApplianceClient
import Foundation
import Testing

/// A7 fixing a split brain: both boxes primary and both serving, then `failover fix` keeps one (by the documented
/// rule) and merges what the other accepted meanwhile, so that after the next sync every row is there once.
@Suite(.serialized) struct FailoverFixTests {
    /// A link cut through a TCP proxy while sessions end on both boxes, both serving; reconnect; fix on the loser.
    @Test func aLinkCutWithBothServingEndsWithEveryRowOnceOnBoth() async throws {
        let pair = try await FailoverTests.Pair(bytes: 128 * 1024, establish: false)
        let toA = try await TestProxy(to: pair.a)
        let toB = try await TestProxy(to: pair.b)
        let established: FailoverStatus = try await pair.a.admin().call(
            .establishFailover,
            body: EstablishRequest(backup: toB.endpoint, reverse: toA.endpoint, firstSyncDelaySeconds: 3600)
        )
        #expect(established.role == "primary" && established.peer == toB.endpoint)
        try await pair.a.admin().perform(.appendHistory, body: AppendHistoryRequest(rows: Self.rows("before-cut", 3)))
        #expect(try await pair.sync().result == "ok")

        try await toA.stop()
        try await toB.stop()
        let forced: FailoverStatus = try await pair.backupAdmin().call(
            .becomePrimary,
            body: BecomePrimaryRequest(force: true)
        )
        #expect(forced.role == "primary")
        let cut: FailoverStatus = try await pair.a.admin().call(.failoverStatus)
        #expect(cut.role == "primary", "the cut link kept A from being told: both are primary now")
        // Sessions end on both sides, both serving: A first, B last, so B holds the newest data.
        try await pair.a.admin().perform(.appendHistory, body: AppendHistoryRequest(rows: Self.rows("split-a", 5)))
        try await Self.putFile(pair.a.admin(), "split-a.bin", byte: 1)
        try await pair.backupAdmin().perform(
            .appendHistory,
            body: AppendHistoryRequest(rows: Self.rows("split-b", 4))
        )
        try await toA.start()
        try await toB.start()

        let idA = try await Self.applianceId(pair.a)
        let idB = try await Self.applianceId(pair.b)
        let fixed: FailoverFixResult = try await pair.a.admin().call(.fixFailover, body: FailoverFixRequest())
        #expect(!fixed.dryRun && fixed.rule == "newest-data", "\(fixed.reason)")
        #expect(fixed.winner.applianceId == idB && fixed.loser.applianceId == idA)
        #expect(fixed.winner.address == toB.endpoint && fixed.loser.address == toA.endpoint)
        #expect(fixed.merged == FixCounts(historyRows: 5, files: 1, recordings: 0), "\(fixed.merged)")
        #expect(fixed.loserReceives.historyRows == 4, "\(fixed.loserReceives)")

        let a: FailoverStatus = try await pair.a.admin().call(.failoverStatus)
        let b: FailoverStatus = try await pair.backupAdmin().call(.failoverStatus)
        #expect(a.role == "backup" && b.role == "primary" && a.conflict == nil)
        let synced: SyncRecord = try await pair.a.admin().call(.syncNow, body: SyncNowRequest(wait: true))
        #expect(synced.result == "ok", "\(synced.error ?? "")")
        try await Self.expectEveryRowOnce(pair, ["before-cut": 3, "split-a": 5, "split-b": 4])
        let (primary, backup) = try await pair.summaries()
        #expect(primary == backup)
        #expect(primary.fileCount == backup.fileCount)

        // Done is done: a second fix finds no conflict and changes nothing.
        let again = await failoverRefusal {
            try await pair.a.admin().perform(.fixFailover, body: FailoverFixRequest())
        }
        #expect(again?.apiStatus == 409 && again?.message.contains("no conflict") == true)
    }

    /// Rule 1 beats rule 2: the box that holds the enabled shared address wins even with older data. The dry run
    /// says so and changes nothing; a --winner that contradicts the rule, or names neither box, is refused.
    @Test func theBoxHoldingTheSharedAddressWinsAndADryRunChangesNothing() async throws {
        let pair = try await FailoverTests.Pair(bytes: 64 * 1024)
        let shared = TestSupport.nextAddress()
        try await Self.bothPrimary(pair) {
            let _: AddressChangeResponse = try await pair.backupAdmin().call(
                .addAddress,
                body: AddressInput(
                    enabled: false,
                    port: "eth1",
                    address: shared,
                    subnetMask: "255.0.0.0",
                    access: .both
                )
            )
        }
        let _: AddressChangeResponse = try await pair.a.admin().call(
            .addAddress,
            body: AddressInput(enabled: true, port: "eth1", address: shared, subnetMask: "255.0.0.0", access: .both)
        )
        try await pair.backupAdmin().perform(.appendHistory, body: AppendHistoryRequest(rows: Self.rows("b-newer", 3)))
        let idA = try await Self.applianceId(pair.a)
        let idB = try await Self.applianceId(pair.b)
        let before = try await pair.summaries()

        let plan: FailoverFixResult = try await pair.backupAdmin().call(
            .fixFailover,
            body: FailoverFixRequest(dryRun: true)
        )
        #expect(plan.dryRun && plan.rule == "shared-address", "\(plan.reason)")
        #expect(plan.reason.contains(shared))
        #expect(plan.winner.applianceId == idA && plan.winner.becomes == "primary")
        #expect(plan.loser.applianceId == idB && plan.loser.becomes == "backup")
        #expect(plan.winner.holdsSharedAddresses == [shared] && plan.loser.holdsSharedAddresses.isEmpty)
        #expect(plan.merged.historyRows == 3 && plan.loserReceives.historyRows == 0, "\(plan)")
        #expect(plan.next.contains("nothing was changed"))

        let contradicting = await failoverRefusal {
            try await pair.a.admin().perform(.fixFailover, body: FailoverFixRequest(winner: pair.b.address))
        }
        #expect(contradicting?.apiCode == "failover_fix_winner_contradicts", "\(String(describing: contradicting))")
        let nobody = await failoverRefusal {
            try await pair.a.admin().perform(.fixFailover, body: FailoverFixRequest(winner: "no-such-box"))
        }
        #expect(nobody?.apiStatus == 400 && nobody?.message.contains("names neither box") == true)
        try await Self.expectUnchanged(pair, before)

        let fixed: FailoverFixResult = try await pair.a.admin().call(.fixFailover, body: FailoverFixRequest())
        #expect(!fixed.dryRun && fixed.winner.applianceId == idA && fixed.merged.historyRows == 3)
        let b: FailoverStatus = try await pair.backupAdmin().call(.failoverStatus)
        #expect(b.role == "backup")
        #expect(try await pair.sync().result == "ok")
        try await Self.expectEveryRowOnce(pair, ["b-newer": 3])
        let (primary, backup) = try await pair.summaries()
        #expect(primary == backup)
    }

    /// Rule 3: neither a shared address nor newer data decides, so the operator names the winner (here through
    /// appliancectl); without a name the fix is refused and nothing changes.
    @Test func whenNothingDecidesTheOperatorNamesTheWinner() async throws {
        let pair = try await FailoverTests.Pair(bytes: 64 * 1024)
        try await Self.bothPrimary(pair) {}
        let before = try await pair.summaries()
        let home = TestSupport.temporaryDirectory("failover-fix-cli")
        func ctl(_ arguments: [String]) async throws -> (status: Int32, stdout: String, stderr: String) {
            try await TestSupport.run(
                TestSupport.binary("appliancectl").path,
                ["failover", "fix", pair.a.endpoint] + arguments,
                environment: ["APPLIANCECTL_HOME": home.path, "APPLIANCE_PASSWORD": TestBox.adminPassword]
            )
        }
        let refused = try await ctl([])
        #expect(refused.status != 0 && refused.stderr.contains("--winner"), "\(refused.stderr)")
        let usage = try await ctl(["--winner", " "])
        #expect(usage.status == 64, "\(usage.stderr)")
        try await Self.expectUnchanged(pair, before)

        let dry = try await ctl(["--dry-run", "--winner", pair.b.address, "--json"])
        #expect(dry.status == 0, "\(dry.stderr)")
        let plan = try APICoding.decoder().decode(FailoverFixResult.self, from: Data(dry.stdout.utf8))
        let idB = try await Self.applianceId(pair.b)
        #expect(plan.dryRun && plan.rule == "operator" && plan.winner.applianceId == idB)
        #expect(plan.merged == FixCounts() && plan.loserReceives == FixCounts(), "\(plan)")
        try await Self.expectUnchanged(pair, before)

        let fixed = try await ctl(["--winner", pair.b.address])
        #expect(fixed.status == 0 && fixed.stdout.contains("Fixed."), "\(fixed.stderr)")
        #expect(fixed.stdout.contains("backup"), "\(fixed.stdout)")
        let a: FailoverStatus = try await pair.a.admin().call(.failoverStatus)
        #expect(a.role == "backup")
    }

    /// The winner crashes in the middle of the merge: the loser stays quiesced and loses nothing, and running the
    /// fix again completes it, with every row once.
    @Test func aFixInterruptedByACrashCompletesWhenRunAgain() async throws {
        let pair = try await FailoverTests.Pair(bytes: 64 * 1024)
        try await Self.bothPrimary(pair, crashAt: "fix:rows") {}
        try await pair.backupAdmin().perform(.appendHistory, body: AppendHistoryRequest(rows: Self.rows("b-split", 4)))
        try await pair.a.admin().perform(.appendHistory, body: AppendHistoryRequest(rows: Self.rows("a-split", 2)))
        let crashed = await failoverRefusal {
            try await pair.backupAdmin().perform(.fixFailover, body: FailoverFixRequest())
        }
        #expect(crashed?.message.contains("run the fix again") == true, "\(String(describing: crashed))")
        #expect(await pair.a.waitForExit() != nil, "the winner was to crash after merging the rows")
        let quiesced = await failoverRefusal {
            try await pair.backupAdmin().perform(
                .appendHistory,
                body: AppendHistoryRequest(rows: Self.rows("refused", 1))
            )
        }
        #expect(quiesced?.apiStatus == 503, "the loser takes no writes until the fix is done")

        pair.a.environment = [:]
        try await pair.a.start()
        let fixed: FailoverFixResult = try await pair.backupAdmin().call(.fixFailover, body: FailoverFixRequest())
        let idA = try await Self.applianceId(pair.a)
        #expect(fixed.winner.applianceId == idA)
        #expect(fixed.merged.historyRows == 0, "the rows came over before the crash and are not copied twice")
        #expect(try await pair.sync().result == "ok")
        try await Self.expectEveryRowOnce(pair, ["b-split": 4, "a-split": 2, "refused": 0])
        let (primary, backup) = try await pair.summaries()
        #expect(primary == backup)
    }

    // MARK: Helpers

    /// After a first sync the primary (A) goes away, the backup is forced to primary, `whileDown` runs, and A
    /// comes back (with `crashAt` as its debug crash point): both are primary and serve.
    static func bothPrimary(
        _ pair: FailoverTests.Pair,
        crashAt: String? = nil,
        whileDown: () async throws -> Void
    ) async throws {
        #expect(try await pair.sync().result == "ok")
        await pair.a.kill()
        let forced: FailoverStatus = try await pair.backupAdmin().call(
            .becomePrimary,
            body: BecomePrimaryRequest(force: true)
        )
        #expect(forced.role == "primary")
        try await whileDown()
        if let crashAt { pair.a.environment = ["APPLIANCED_CRASH_AT": crashAt] }
        try await pair.a.start()
    }

    static func rows(_ marker: String, _ count: Int) -> [HistoryRow] {
        (1...count).map { _ in MaintenanceTests.row(marker) }
    }

    static func putFile(_ admin: ApplianceConnection, _ name: String, byte: UInt8) async throws {
        let result = try await admin.client.send(
            method: "PUT",
            path: Endpoint.putFile.path(["name": name]),
            headers: admin.authHeaders,
            body: Array(repeating: byte, count: 10_000)
        )
        #expect(result.isSuccess, "PUT \(name) answered \(result.status)")
    }

    static func applianceId(_ box: TestBox) async throws -> String {
        let status: StatusResponse = try await box.admin().call(.status)
        return status.applianceId
    }

    /// Both boxes hold each marked row exactly `count` times, and the same number of rows.
    static func expectEveryRowOnce(_ pair: FailoverTests.Pair, _ expected: [String: Int]) async throws {
        let a: HistoryPage = try await pair.a.admin().call(.listHistory, query: "?limit=10000")
        let b: HistoryPage = try await pair.backupAdmin().call(.listHistory, query: "?limit=10000")
        #expect(a.total == b.total)
        for (name, page) in [("A", a), ("B", b)] {
            for (marker, count) in expected {
                let found = page.rows.filter { $0.summary == marker }.count
                #expect(found == count, "\(name) holds \(found) rows \(marker), not \(count)")
            }
        }
    }

    /// Both boxes are still primary with the same site as `before`.
    static func expectUnchanged(_ pair: FailoverTests.Pair, _ before: (SiteSummary, SiteSummary)) async throws {
        let after = try await pair.summaries()
        #expect(after.0 == before.0 && after.1 == before.1, "a refused or dry-run fix changed a site")
        let a: FailoverStatus = try await pair.a.admin().call(.failoverStatus)
        let b: FailoverStatus = try await pair.backupAdmin().call(.failoverStatus)
        #expect(a.role == "primary" && b.role == "primary")
        let maintenance: MaintenanceStatus = try await pair.backupAdmin().call(.maintenance)
        #expect(!maintenance.enabled)
    }
}
