import ApplianceAPI
import ApplianceClient
import Foundation
import Synchronization
import Testing

/// A7 failover under faults and load: a crash of either box inside a sync leaves the backup at the previous or
/// the new sync point, and a site written to during syncs loses nothing.
@Suite(.serialized) struct FailoverFaultTests {
    /// Adds history rows, a file and a recording on the primary.
    static func change(_ pair: FailoverTests.Pair, _ tag: String, recordingBytes: Int = 200_000) async throws {
        let admin = try await pair.a.admin()
        try await admin.perform(
            .appendHistory,
            body: AppendHistoryRequest(rows: (1...25).map { MaintenanceTests.row("\(tag)-\($0)") })
        )
        for (endpoint, size) in [(Endpoint.putFile, 150_000), (Endpoint.putRecording, recordingBytes)] {
            let result = try await admin.client.send(
                method: "PUT",
                path: endpoint.path(["name": "\(tag).bin"]),
                headers: admin.authHeaders,
                body: (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ tag.utf8.count) }
            )
            #expect(result.isSuccess, "PUT \(tag).bin answered \(result.status)")
        }
    }

    /// Polls until `condition` holds, failing after `timeout`.
    static func waitFor(
        _ what: String,
        timeout: Duration = .seconds(60),
        _ condition: () async throws -> Bool
    ) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestFailure("timed out waiting for \(what)")
    }

    @Test(arguments: ["sync:fetched", "sync:decided", "sync:moved", "sync:site-applied"])
    func aBackupCrashInsideASyncKeepsOneSyncPoint(point: String) async throws {
        let pair = try await FailoverTests.Pair(bytes: 3 * 1024 * 1024)
        let first = try await pair.sync()
        #expect(first.result == "ok" && first.recordings > 0)
        let (before, _) = try await pair.summaries()

        pair.b.environment["APPLIANCED_CRASH_AT"] = point
        await pair.b.stop()
        try await pair.b.start()
        try await Self.change(pair, "crash-\(point.dropFirst(5))")
        let (after, _) = try await pair.summaries()
        #expect(after != before)
        let failed = await failoverRefusal { _ = try await pair.sync() }
        #expect(failed != nil, "the sync request must fail: the backup died at \(point)")
        try await Self.waitFor("the backup to die at \(point)") { !pair.b.process.isRunning }

        pair.b.environment = [:]
        try await pair.b.start()
        let (_, held) = try await pair.summaries()
        #expect(held == before || held == after, "after a crash at \(point) the backup holds a mix: \(held)")
        if point != "sync:fetched" {
            #expect(held == after, "a decided sync is finished at the next start")
        }
        let next = try await pair.sync()
        #expect(next.result == "ok", "\(next.error ?? "")")
        let (primary, backup) = try await pair.summaries()
        #expect(primary == backup)
    }

    @Test func aPrimaryKilledDuringALargeDownloadLeavesThePreviousPoint() async throws {
        let pair = try await FailoverTests.Pair(bytes: 1024 * 1024)
        _ = try await pair.sync()
        let (before, _) = try await pair.summaries()
        let recordingBytes = 64 * 1024 * 1024
        try await Self.change(pair, "large", recordingBytes: recordingBytes)

        let backup = try await pair.backupAdmin()
        try await backup.perform(.syncNow, body: SyncNowRequest(wait: false))
        let blobs = pair.b.dataDir.appendingPathComponent("sync/blobs")
        try await Self.waitFor("a partial download on the backup") {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: blobs.path)) ?? []
            return names.contains { name in
                guard name.hasSuffix(".part") else { return false }
                let size =
                    (try? FileManager.default.attributesOfItem(atPath: blobs.appendingPathComponent(name).path))?[
                        .size
                    ] as? Int ?? 0
                return size > 0
            }
        }
        await pair.a.kill()

        // The failed sync is recorded; the backup still serves its previous point.
        try await Self.waitFor("the interrupted sync to be recorded") {
            let status: FailoverStatus = try await backup.call(.failoverStatus)
            return status.lastSync?.result == "failed"
        }
        let held: SiteSummary = try await pair.backupAdmin().call(.siteSummary)
        #expect(held == before)
        // The partial copy stays, and the next sync asks only for the rest of it.
        let kept =
            try FileManager.default.contentsOfDirectory(atPath: blobs.path).filter { $0.hasSuffix(".part") }.map {
                try FileManager.default.attributesOfItem(atPath: blobs.appendingPathComponent($0).path)[.size]
                    as? Int ?? 0
            }.max() ?? 0
        #expect(kept > 0, "the interrupted download's partial copy is kept for the next sync")

        try await pair.a.start()
        let next = try await pair.sync()
        #expect(next.result == "ok", "\(next.error ?? "")")
        #expect(next.bytes < Int64(recordingBytes - kept) + 1024 * 1024, "moved \(next.bytes) bytes, kept \(kept)")
        let (primary, synced) = try await pair.summaries()
        #expect(primary == synced)
    }

    @Test func aSiteWrittenToDuringFiveSyncsLosesNothing() async throws {
        let pair = try await FailoverTests.Pair(bytes: 1024 * 1024)
        _ = try await pair.sync()
        let (start, _) = try await pair.summaries()
        let admin = try await pair.a.admin()
        let accepted = Mutex<[String]>([])
        let stop = Atomic<Bool>(false)
        let writer = Task {
            var n = 0
            while !stop.load(ordering: .relaxed) {
                n += 1
                let marker = "writer-\(n)"
                do {
                    try await admin.perform(
                        .appendHistory,
                        body: AppendHistoryRequest(rows: [MaintenanceTests.row(marker)])
                    )
                    accepted.withLock { $0.append(marker) }
                    if n % 3 == 0 {
                        _ = try await admin.client.send(
                            method: "PUT",
                            path: Endpoint.putFile.path(["name": "\(marker).bin"]),
                            headers: admin.authHeaders,
                            body: Array(repeating: UInt8(n % 256), count: 20_000)
                        )
                    }
                } catch {}
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
        for round in 1...5 {
            // Each sync runs while rows keep arriving.
            try await Self.waitFor("the writer's rows") { accepted.withLock { $0.count } >= round * 3 }
            let record = try await pair.sync()
            #expect(record.result == "ok", "\(record.error ?? "")")
        }
        stop.store(true, ordering: .relaxed)
        await writer.value
        let final = try await pair.sync()
        #expect(final.result == "ok")
        let (primary, backup) = try await pair.summaries()
        let markers = accepted.withLock { $0 }
        #expect(markers.count >= 15, "the writer wrote during the syncs")
        #expect(primary == backup)
        #expect(backup.historyRows == start.historyRows + markers.count, "every accepted row is on the backup once")
    }
}
