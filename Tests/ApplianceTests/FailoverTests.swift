import ApplianceAPI
import ApplianceClient
import ApplianceCrypto
import Foundation
import Testing

/// A7 failover between two real `applianced` processes on loopback addresses: key, establish, incremental
/// syncs, roles, become-primary and break.
@Suite(.serialized) struct FailoverTests {
    static let key = "failover-test-key-0123456789abcdef0123456789abcdef"

    /// A primary and a backup with the same key; the primary holds a generated site.
    final class Pair: @unchecked Sendable {
        let a: TestBox
        let b: TestBox

        init(bytes: Int64 = 0, establish: Bool = true) async throws {
            a = try await TestBox()
            b = try await TestBox()
            for box in [a, b] {
                let admin = try await box.admin()
                let _: FailoverKeyStatus = try await admin.call(
                    .setFailoverKey,
                    body: FailoverKeyRequest(key: FailoverTests.key)
                )
            }
            if bytes > 0 {
                try await a.admin().send(.generateSiteData, body: GenerateSiteDataRequest(bytes: bytes, seed: 11))
            }
            if establish {
                let status: FailoverStatus = try await a.admin().call(
                    .establishFailover,
                    body: EstablishRequest(backup: b.endpoint, reverse: a.endpoint, firstSyncDelaySeconds: 3600)
                )
                #expect(status.role == "primary")
            }
        }

        /// The backup's admin: after the first sync its users are the primary's.
        func backupAdmin() async throws -> ApplianceConnection {
            let connection = b.connection()
            do {
                return connection.authenticated(
                    try await connection.login(username: "admin", password: TestBox.adminPassword).token
                )
            } catch {
                return try await b.admin()
            }
        }

        func sync() async throws -> SyncRecord {
            try await backupAdmin().call(.syncNow, body: SyncNowRequest(wait: true))
        }

        func summaries() async throws -> (SiteSummary, SiteSummary) {
            (try await a.admin().call(.siteSummary), try await backupAdmin().call(.siteSummary))
        }

        deinit {
            a.terminate()
            b.terminate()
        }
    }

    @Test func establishAndTheFirstSyncCarryThePopulatedSite() async throws {
        let pair = try await Pair(bytes: 3 * 1024 * 1024)
        let backupStatus: FailoverStatus = try await pair.backupAdmin().call(.failoverStatus)
        #expect(backupStatus.role == "backup" && backupStatus.peer == pair.a.endpoint)
        #expect(backupStatus.key.fingerprint == Self.fingerprint)
        let first = try await pair.sync()
        #expect(first.result == "ok", "\(first.error ?? "")")
        #expect(first.historyRows > 0 && first.files > 0 && first.recordings > 0)
        let (primary, backup) = try await pair.summaries()
        #expect(primary == backup)

        // Incremental: an unchanged site moves no rows and no files; a change moves exactly that change.
        let idle = try await pair.sync()
        #expect(idle.historyRows == 0 && idle.files == 0 && idle.recordings == 0 && !idle.configChanged)
        #expect(idle.bytes < first.bytes / 100, "an idle sync moved \(idle.bytes) bytes")
        let admin = try await pair.a.admin()
        try await admin.perform(
            .appendHistory,
            body: AppendHistoryRequest(rows: (1...10).map { MaintenanceTests.row("incremental-\($0)") })
        )
        _ = try await admin.client.send(
            method: "PUT",
            path: Endpoint.putFile.path(["name": "added.bin"]),
            headers: admin.authHeaders,
            body: Array(repeating: 7, count: 100_000)
        )
        let delta = try await pair.sync()
        #expect(delta.historyRows == 10 && delta.files == 1 && delta.recordings == 0, "\(delta)")
        let (primaryAfter, backupAfter) = try await pair.summaries()
        #expect(primaryAfter == backupAfter)

        // Health and status show the role.
        let status: StatusResponse = try await pair.backupAdmin().call(.status)
        #expect(status.failoverRole == "backup")
        let history: FailoverStatus = try await pair.backupAdmin().call(.failoverStatus)
        #expect(history.history.count == 3 && history.lastSync?.historyRows == 10 && history.lastSync?.result == "ok")
        #expect((history.lagSeconds ?? 99) < 30)
        let (_, health, _) = try await pair.b.connection().health()
        #expect(health.failover?.role == "backup" && health.failover?.peer == pair.a.endpoint)
        #expect(health.failover?.lastSyncResult == "ok" && health.failover?.lastSyncAt != nil)
    }

    static var fingerprint: String {
        // What the security page shows of the key: never the key.
        let digest = SHA256Hasher.hash(Array(key.utf8)).hexString
        return "sha256:" + digest.prefix(16)
    }

    @Test func theBackupRefusesSiteWritesAndBecomesPrimaryOnRequest() async throws {
        let pair = try await Pair(bytes: 512 * 1024)
        _ = try await pair.sync()
        let backup = try await pair.backupAdmin()
        let refused = await failoverRefusal {
            try await backup.perform(.appendHistory, body: AppendHistoryRequest(rows: [MaintenanceTests.row("x")]))
        }
        #expect(refused?.apiStatus == 409)
        #expect(refused?.message.contains("this appliance is the backup of \(pair.a.endpoint)") == true)

        // A row written on the primary just before the swap arrives with the final sync.
        try await pair.a.admin().perform(
            .appendHistory,
            body: AppendHistoryRequest(rows: [MaintenanceTests.row("last-before-swap")])
        )
        let swapped: FailoverStatus = try await backup.call(
            .becomePrimary,
            body: BecomePrimaryRequest(syncFirst: true)
        )
        #expect(swapped.role == "primary")
        let old: FailoverStatus = try await pair.a.admin().call(.failoverStatus)
        #expect(old.role == "backup")
        let (a, b) = try await pair.summaries()
        #expect(a == b, "the final sync carried everything")
        // Roles swapped: the new primary takes writes, the old one refuses them.
        try await pair.backupAdmin().perform(
            .appendHistory,
            body: AppendHistoryRequest(rows: [MaintenanceTests.row("on-new-primary")])
        )
        let onOld = await failoverRefusal {
            try await pair.a.admin().perform(
                .appendHistory,
                body: AppendHistoryRequest(rows: [MaintenanceTests.row("y")])
            )
        }
        #expect(onOld?.apiStatus == 409)
        // The old primary, now backup, pulls from the new one.
        let back: SyncRecord = try await pair.a.admin().call(.syncNow, body: SyncNowRequest(wait: true))
        #expect(back.result == "ok")
        let (a2, b2) = try await pair.summaries()
        #expect(a2 == b2)
    }

    @Test func becomePrimaryWithThePeerDownNeedsForce() async throws {
        let pair = try await Pair(bytes: 256 * 1024)
        _ = try await pair.sync()
        await pair.a.kill()
        let backup = try await pair.backupAdmin()
        let refused = await failoverRefusal {
            try await backup.perform(.becomePrimary, body: BecomePrimaryRequest())
        }
        #expect(refused?.apiStatus == 409)
        #expect(refused?.message.contains("force") == true)
        let forced: FailoverStatus = try await backup.call(.becomePrimary, body: BecomePrimaryRequest(force: true))
        #expect(forced.role == "primary")
        try await backup.perform(.appendHistory, body: AppendHistoryRequest(rows: [MaintenanceTests.row("forced")]))
    }

    @Test func breakLosesNothingButTheRelationship() async throws {
        let pair = try await Pair(bytes: 256 * 1024)
        _ = try await pair.sync()
        let (before, _) = try await pair.summaries()
        let broken: FailoverStatus = try await pair.a.admin().call(.breakFailover)
        #expect(broken.role == "standalone")
        let backupStatus: FailoverStatus = try await pair.backupAdmin().call(.failoverStatus)
        #expect(backupStatus.role == "standalone")
        let (a, b) = try await pair.summaries()
        #expect(a == before && b == before)
        // Both serve on their own again.
        try await pair.backupAdmin().perform(
            .appendHistory,
            body: AppendHistoryRequest(rows: [MaintenanceTests.row("b")])
        )
    }

    @Test func establishRefusalsChangeNothing() async throws {
        let pair = try await Pair(establish: false)
        let admin = try await pair.a.admin()
        func refused(_ request: EstablishRequest) async -> ApplianceClientError? {
            await failoverRefusal { try await admin.perform(.establishFailover, body: request) }
        }
        // The shared hostname for either field.
        let status: StatusResponse = try await admin.call(.status)
        let shared = await refused(EstablishRequest(backup: "\(status.hostname):8443", reverse: pair.a.endpoint))
        #expect(shared?.message.contains("shared site hostname") == true, "\(String(describing: shared))")
        // Nobody there.
        let unreachable = await refused(
            EstablishRequest(backup: "\(TestSupport.nextAddress()):\(TestBox.port)", reverse: pair.a.endpoint)
        )
        #expect(unreachable?.apiCode == "failover_peer_unreachable", "\(String(describing: unreachable))")
        // A different key on the backup.
        let _: FailoverKeyStatus = try await pair.b.admin().call(
            .setFailoverKey,
            body: FailoverKeyRequest(key: String(repeating: "z", count: 40))
        )
        let mismatch = await refused(EstablishRequest(backup: pair.b.endpoint, reverse: pair.a.endpoint))
        #expect(mismatch?.apiCode == "failover_key_mismatch", "\(String(describing: mismatch))")
        let _: FailoverKeyStatus = try await pair.b.admin().call(
            .setFailoverKey,
            body: FailoverKeyRequest(key: Self.key)
        )
        // A backup that holds a site of its own.
        try await pair.b.admin().perform(.appendHistory, body: AppendHistoryRequest(rows: [MaintenanceTests.row("b")]))
        let occupied = await refused(EstablishRequest(backup: pair.b.endpoint, reverse: pair.a.endpoint))
        #expect(occupied?.message.contains("holds site data of its own") == true, "\(String(describing: occupied))")
        // A bad reverse address: the backup cannot reach the primary back.
        let fresh = try await TestBox()
        defer { fresh.terminate() }
        let _: FailoverKeyStatus = try await fresh.admin().call(
            .setFailoverKey,
            body: FailoverKeyRequest(key: Self.key)
        )
        let noWayBack = await refused(
            EstablishRequest(backup: fresh.endpoint, reverse: "\(TestSupport.nextAddress()):\(TestBox.port)")
        )
        #expect(
            noWayBack?.message.contains("cannot reach the primary back") == true,
            "\(String(describing: noWayBack))"
        )
        // Nothing changed anywhere.
        for box in [pair.a, pair.b, fresh] {
            let failover: FailoverStatus = try await box.admin().call(.failoverStatus)
            #expect(failover.role == "standalone")
        }
        // A peer already in a relationship, and a peer on another site version.
        let _: FailoverStatus = try await fresh.admin().call(
            .establishFailover,
            body: EstablishRequest(backup: pair.a.endpoint, reverse: fresh.endpoint, firstSyncDelaySeconds: 3600)
        )
        let other = try await TestBox(arguments: ["--factory-site-version", "24.0.5"])
        defer { other.terminate() }
        let otherAdmin = try await other.admin()
        let _: FailoverKeyStatus = try await otherAdmin.call(.setFailoverKey, body: FailoverKeyRequest(key: Self.key))
        let busy = await failoverRefusal {
            try await otherAdmin.perform(
                .establishFailover,
                body: EstablishRequest(backup: fresh.endpoint, reverse: other.endpoint)
            )
        }
        #expect(busy?.message.contains("already") == true, "\(String(describing: busy))")
        let version = await failoverRefusal {
            try await otherAdmin.perform(
                .establishFailover,
                body: EstablishRequest(backup: pair.b.endpoint, reverse: other.endpoint)
            )
        }
        #expect(version?.message.contains("install site version 24.0.5 on the backup first") == true)
    }
}

func failoverRefusal(_ body: () async throws -> Void) async -> ApplianceClientError? {
    do {
        try await body()
        return nil
    } catch let error as ApplianceClientError {
        return error
    } catch {
        return ApplianceClientError(code: .protocolError, message: "\(error)")
    }
}

/// The failover commands of appliancectl, as an administrator types them.
@Suite(.serialized) struct FailoverCommandLineTests {
    @Test func keyEstablishSyncStatusBecomePrimaryAndBreakFromTheCommandLine() async throws {
        let pair = try await FailoverTests.Pair(establish: false)
        let home = TestSupport.temporaryDirectory("failover-cli")
        let environment = [
            "APPLIANCECTL_HOME": home.path, "APPLIANCE_PASSWORD": TestBox.adminPassword,
            "FAILOVER_KEY": "cli-" + FailoverTests.key,
        ]
        func ctl(_ arguments: [String]) async throws -> (status: Int32, stdout: String, stderr: String) {
            try await TestSupport.run(
                TestSupport.binary("appliancectl").path,
                arguments,
                environment: environment
            )
        }
        for box in [pair.a, pair.b] {
            let set = try await ctl(["failover", "key", "set", box.endpoint])
            #expect(set.status == 0, "\(set.stderr)")
            #expect(!set.stdout.contains(environment["FAILOVER_KEY"]!), "the key itself is never printed")
        }
        let shownA = try await ctl(["failover", "key", "show", pair.a.endpoint])
        let shownB = try await ctl(["failover", "key", "show", pair.b.endpoint])
        #expect(shownA.stdout.contains("fingerprint sha256:"))
        #expect(shownA.stdout.split(separator: " ").last == shownB.stdout.split(separator: " ").last)
        try await pair.a.admin().perform(
            .appendHistory,
            body: AppendHistoryRequest(rows: [MaintenanceTests.row("from-the-cli")])
        )
        let established = try await ctl([
            "failover", "establish", pair.a.endpoint, "--backup", pair.b.endpoint, "--reverse", pair.a.endpoint,
            "--first-sync-delay", "3600",
        ])
        #expect(established.status == 0, "\(established.stderr)")
        let synced = try await ctl(["failover", "sync", pair.b.endpoint, "--wait"])
        #expect(synced.status == 0, "\(synced.stderr)")
        #expect(synced.stdout.contains("sync ok") && synced.stdout.contains("1 history rows"), "\(synced.stdout)")
        let status = try await ctl(["failover", "status", pair.b.endpoint, "--json"])
        let decoded = try APICoding.decoder().decode(FailoverStatus.self, from: Data(status.stdout.utf8))
        #expect(decoded.role == "backup" && decoded.lastSync?.historyRows == 1)
        let swapped = try await ctl(["failover", "become-primary", pair.b.endpoint, "--sync-first"])
        #expect(swapped.status == 0 && swapped.stdout.contains("is now primary"), "\(swapped.stderr)")
        let broken = try await ctl(["failover", "break", pair.b.endpoint])
        #expect(broken.status == 0 && broken.stdout.contains("standalone"), "\(broken.stderr)")
        let missingKey = try await ctl(["failover", "key", "set", pair.a.endpoint, "--key-env", "NO_SUCH_VARIABLE"])
        #expect(missingKey.status != 0 && missingKey.stderr.contains("NO_SUCH_VARIABLE"), "\(missingKey.stderr)")
    }
}
