public import ApplianceAPI
import ApplianceClient
import ApplianceCrypto
import ApplianceStore
import Foundation
import Hummingbird
import Logging
import NIOCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A sync staged on the backup and about to be applied: once this file exists the sync is decided, and after a
/// crash `applyStagedSync` finishes it before anything is served (redo, every part idempotent).
struct StagedSync: Codable, Sendable {
    var apply: SyncApply
    /// Staged blob (by SHA-256) to move into the file store or recordings under each name.
    var fileBlobs: [String: String]
    var recordingBlobs: [String: String]
}

extension Appliance {
    var syncDirectory: URL { directory.root.appendingPathComponent("sync", isDirectory: true) }
    var stagedSyncFile: URL { syncDirectory.appendingPathComponent("apply.json") }
    var blobDirectory: URL { syncDirectory.appendingPathComponent("blobs", isDirectory: true) }

    // MARK: The primary's side

    func changes(_ request: PeerChangesRequest, for senderId: String) throws -> PeerChanges {
        guard let relationship = try relationship(), relationship.peerApplianceId == senderId,
            relationship.role == .primary
        else {
            throw ApplianceServerError.conflict("this appliance is not the primary of \(senderId)")
        }
        let takenAt = Date()
        let limit = max(1, min(request.limit, 20_000))
        let (rows, through, more) = try site.historyChanges(after: request.historyAfter, limit: limit)
        let (config, digest) = try site.syncedConfig()
        return PeerChanges(
            primaryApplianceId: applianceId,
            takenAt: takenAt,
            history: rows,
            historyThrough: through,
            more: more,
            configDigest: digest,
            config: digest == request.configDigest ? nil : config,
            files: try site.files(),
            recordings: try box.recordings()
        )
    }

    /// A file or recording for the backup, streamed.
    func peerFileResponse(recording: Bool, name: String, senderId: String, request: Request) throws -> Response {
        guard let relationship = try relationship(), relationship.peerApplianceId == senderId else {
            throw ApplianceServerError.conflict("this appliance is not in a relationship with \(senderId)")
        }
        try StoredFileName.validate(name)
        let info = recording ? try box.recording(named: name) : try site.file(named: name)
        guard let info else {
            throw ApplianceServerError.notFound("there is no \(recording ? "recording" : "file") \(name)")
        }
        let folder = recording ? directory.recordings : directory.files
        return try ApplianceRouter.fileResponse(folder.appendingPathComponent(name), info: info, request: request)
    }

    // MARK: The backup's side

    /// Asks for a sync now; with `wait` answers with its result.
    public func syncNow(wait: Bool) async throws -> SyncRecord? {
        guard let relationship = try relationship() else {
            throw ApplianceServerError.conflict("this appliance is not in a failover relationship")
        }
        guard relationship.role == .backup else {
            throw ApplianceServerError.conflict(
                "the backup pulls the syncs: ask the backup at \(relationship.peer) (this appliance is the primary)"
            )
        }
        guard wait else {
            failover.state.withLock { $0.syncRequested = true }
            failover.wakeUp.yield()
            return nil
        }
        return try await withCheckedThrowingContinuation { continuation in
            failover.state.withLock {
                $0.syncRequested = true
                $0.waiters.append(continuation)
            }
            failover.wakeUp.yield()
        }
    }

    /// The backup's sync loop: sleeps until the next sync is due or one is asked for, pulls it, records it.
    func runSyncLoop() async {
        while !Task.isCancelled {
            let (due, wait) = failover.state.withLock { state -> (Bool, Duration) in
                if state.syncRequested { return (true, .zero) }
                guard let next = state.nextSyncAt else { return (false, .seconds(3600)) }
                let seconds = next.timeIntervalSinceNow
                return seconds <= 0 ? (true, .zero) : (false, .milliseconds(Int64(seconds * 1000) + 1))
            }
            if !due {
                // Woken early by a schedule change or a sync request.
                await withTaskGroup(of: Void.self) { group in
                    group.addTask { [failover] in
                        for await _ in failover.wake { return }
                    }
                    group.addTask { try? await Task.sleep(for: wait) }
                    await group.next()
                    group.cancelAll()
                }
                continue
            }
            let waiters = failover.state.withLock { state -> [CheckedContinuation<SyncRecord, any Error>] in
                state.syncRequested = false
                state.syncing = true
                defer { state.waiters = [] }
                return state.waiters
            }
            let result: Result<SyncRecord, any Error>
            do {
                result = .success(try await pullSync())
            } catch {
                result = .failure(error)
            }
            let interval = (try? relationship())?.intervalSeconds
            failover.state.withLock { state in
                state.syncing = false
                if let interval, (try? relationship())?.role == .backup {
                    state.nextSyncAt = Date().addingTimeInterval(TimeInterval(interval))
                } else {
                    state.nextSyncAt = nil
                }
            }
            for waiter in waiters { waiter.resume(with: result) }
        }
    }

    /// One sync: what changed on the primary is staged here, then applied at once. Always recorded.
    func pullSync() async throws -> SyncRecord {
        let started = Date()
        var record = SyncRecord(
            startedAt: started,
            finishedAt: started,
            result: "ok",
            durationSeconds: 0,
            bytes: 0,
            historyRows: 0,
            files: 0,
            recordings: 0,
            configChanged: false
        )
        do {
            try await pullSync(into: &record)
        } catch {
            record.result = "failed"
            record.error = "\(error)"
        }
        record.finishedAt = Date()
        record.durationSeconds = record.finishedAt.timeIntervalSince(started)
        recordSync(record)
        logger.info(
            "Sync",
            metadata: [
                "sync.result": "\(record.result)", "sync.rows": "\(record.historyRows)",
                "sync.files": "\(record.files)",
                "sync.recordings": "\(record.recordings)", "sync.bytes": "\(record.bytes)",
                "sync.seconds": "\(String(format: "%.3f", record.durationSeconds))",
            ]
        )
        if let error = record.error {
            throw ApplianceServerError(.badGateway, "sync_failed", "the sync failed: \(error)")
        }
        return record
    }

    private func pullSync(into record: inout SyncRecord) async throws {
        guard let relationship = try relationship(), relationship.role == .backup else {
            throw ApplianceServerError.conflict("this appliance is not a backup")
        }
        try applyStagedSync()
        let link = try link(relationship)
        let cursor = try site.syncCursor()
        let same = cursor?.primaryApplianceId == relationship.peerApplianceId
        var after = same ? cursor?.historyThrough ?? 0 : 0
        let digest = same ? cursor?.configDigest : nil
        var history: [SyncedHistoryRow] = []
        var last: PeerChanges
        repeat {
            let result = try await link.send(
                .peerChanges,
                body: Array(
                    try APICoding.encoder().encode(
                        PeerChangesRequest(historyAfter: after, configDigest: digest, limit: 5000)
                    )
                )
            )
            record.bytes += Int64(result.body.count)
            last = try APICoding.decoder().decode(PeerChanges.self, from: Data(result.body))
            history += last.history
            after = last.historyThrough
        } while last.more
        let files = try site.files()
        let recordings = try box.recordings()
        let (fileUpserts, fileDeletes) = Self.difference(local: files, remote: last.files)
        let (recordingUpserts, recordingDeletes) = Self.difference(local: recordings, remote: last.recordings)
        try FileManager.default.createDirectory(at: blobDirectory, withIntermediateDirectories: true)
        var fileBlobs: [String: String] = [:]
        var recordingBlobs: [String: String] = [:]
        for (infos, endpoint, isRecording) in [
            (fileUpserts, Endpoint.peerFile, false), (recordingUpserts, Endpoint.peerRecording, true),
        ] {
            for info in infos {
                record.bytes += try await fetchBlob(info, endpoint: endpoint, link: link)
                if isRecording { recordingBlobs[info.name] = info.sha256 } else { fileBlobs[info.name] = info.sha256 }
            }
        }
        let staged = StagedSync(
            apply: SyncApply(
                primaryApplianceId: last.primaryApplianceId,
                history: history,
                historyThrough: last.historyThrough,
                config: last.config,
                configDigest: last.configDigest,
                fileUpserts: fileUpserts,
                fileDeletes: fileDeletes,
                recordingUpserts: recordingUpserts,
                recordingDeletes: recordingDeletes,
                takenAt: last.takenAt
            ),
            fileBlobs: fileBlobs,
            recordingBlobs: recordingBlobs
        )
        crash(at: "sync:fetched")
        // The decision: from here on a crash finishes this sync at the next start.
        let scratch = syncDirectory.appendingPathComponent("apply.json.new")
        try APICoding.encoder().encode(staged).write(to: scratch)
        let handle = try FileHandle(forWritingTo: scratch)
        try handle.synchronize()
        try handle.close()
        try FileManager.default.moveItem(at: scratch, to: stagedSyncFile)
        try directory.syncDirectory(syncDirectory)
        crash(at: "sync:decided")
        try applyStagedSync()
        record.historyRows = history.count
        record.files = fileUpserts.count + fileDeletes.count
        record.recordings = recordingUpserts.count + recordingDeletes.count
        record.configChanged = last.config != nil
    }

    /// Upserts (missing or different) and deletes that make `local` equal `remote`.
    static func difference(local: [StoredFileInfo], remote: [StoredFileInfo]) -> ([StoredFileInfo], [String]) {
        let have = Dictionary(local.map { ($0.name, $0.sha256) }, uniquingKeysWith: { a, _ in a })
        let want = Set(remote.map(\.name))
        return (remote.filter { have[$0.name] != $0.sha256 }, local.map(\.name).filter { !want.contains($0) })
    }

    /// Downloads one file into the blob staging (kept across interrupted syncs), checking its SHA-256; returns
    /// the bytes moved. An interrupted download leaves `SHA.part`, and the next sync asks only for the rest
    /// (a byte range, guarded by the SHA-256 as entity tag), then checks the whole file.
    func fetchBlob(_ info: StoredFileInfo, endpoint: Endpoint, link: FailoverLink) async throws -> Int64 {
        let fm = FileManager.default
        let blob = blobDirectory.appendingPathComponent(info.sha256)
        if fm.fileExists(atPath: blob.path), (try? Self.sha256(of: blob)) == info.sha256 {
            return 0
        }
        let partial = blobDirectory.appendingPathComponent(info.sha256 + ".part")
        let partialSize = (try? fm.attributesOfItem(atPath: partial.path)[.size] as? Int64) ?? 0
        if partialSize >= info.size { try? fm.removeItem(at: partial) }  // complete would have been renamed
        let result = try await link.download(endpoint, name: info.name, to: blob, resumingFrom: info.sha256)
        guard try Self.sha256(of: blob) == info.sha256 else {
            try? fm.removeItem(at: blob)
            throw ApplianceServerError(
                .badGateway,
                "sync_checksum",
                "\(info.name) arrived with another SHA-256 than the primary lists; the next sync fetches it again"
            )
        }
        return result.header("Content-Length").flatMap { Int64($0) } ?? info.size
    }

    static func sha256(of url: URL) throws -> String {
        let handle = try FileHandle(forReadingFrom: url)
        defer { try? handle.close() }
        let hasher = SHA256Hasher()
        while let data = try handle.read(upToCount: 1 << 20), !data.isEmpty { hasher.update(Array(data)) }
        return hasher.finalize().hexString
    }

    /// Finishes a decided sync: blobs into place, deletions, then the databases (site first, recordings second),
    /// then the decision is removed. Safe to run again at any point.
    func applyStagedSync() throws {
        let fm = FileManager.default
        guard let data = try? Data(contentsOf: stagedSyncFile) else { return }
        let staged = try APICoding.decoder().decode(StagedSync.self, from: data)
        let references = Array(staged.fileBlobs.values) + Array(staged.recordingBlobs.values)
        for (blobs, folder) in [(staged.fileBlobs, directory.files), (staged.recordingBlobs, directory.recordings)] {
            for (name, sha) in blobs {
                let blob = blobDirectory.appendingPathComponent(sha)
                guard fm.fileExists(atPath: blob.path) else { continue }  // moved before an interruption
                let target = folder.appendingPathComponent(name)
                if fm.fileExists(atPath: target.path) { try fm.removeItem(at: target) }
                // The same content under several names is copied; the blobs go when the sync is done.
                if references.filter({ $0 == sha }).count > 1 {
                    try fm.copyItem(at: blob, to: target)
                } else {
                    try fm.moveItem(at: blob, to: target)
                }
            }
        }
        for name in staged.apply.fileDeletes { try? fm.removeItem(at: directory.files.appendingPathComponent(name)) }
        for name in staged.apply.recordingDeletes {
            try? fm.removeItem(at: directory.recordings.appendingPathComponent(name))
        }
        crash(at: "sync:moved")
        try site.apply(staged.apply)
        crash(at: "sync:site-applied")
        try box.applyRecordings(upserts: staged.apply.recordingUpserts, deletes: staged.apply.recordingDeletes)
        try fm.removeItem(at: stagedSyncFile)
        try? fm.removeItem(at: blobDirectory)
        try directory.syncDirectory(syncDirectory)
    }

    /// A test hook of debug builds: `APPLIANCED_CRASH_AT=sync:decided` kills the process there (SIGKILL).
    func crash(at point: String) {
        #if DEBUG
            if ProcessInfo.processInfo.environment["APPLIANCED_CRASH_AT"] == point { kill(getpid(), SIGKILL) }
        #endif
    }

    // MARK: Sync history

    func syncHistory() -> [SyncRecord] {
        guard let text = try? site.failoverValue(Self.syncHistoryName),
            let list = try? APICoding.decoder().decode([SyncRecord].self, from: Data(text.utf8))
        else { return [] }
        return list
    }

    func recordSync(_ record: SyncRecord) {
        let list = Array(([record] + syncHistory()).prefix(50))
        if let data = try? APICoding.encoder().encode(list) {
            try? site.setFailoverValue(Self.syncHistoryName, String(decoding: data, as: UTF8.self))
        }
    }
}
