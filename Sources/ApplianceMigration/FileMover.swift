import ApplianceAPI
import ApplianceClient
import ApplianceCrypto
import ApplianceInventory
import Foundation
import ProcedureEngine
import Synchronization

/// Moves stored files or recordings from one appliance to another (X2): only what the target lacks (same name and
/// SHA-256), each file checked against the source's checksum on arrival here and again on the target.
///
/// Resumable at file granularity: an interrupted run leaves whole files on the target (uploads are written
/// under a scratch name and renamed) and partial staging files here, which the next run overwrites. The next
/// file downloads while the current one uploads.
struct FileMover {
    let from: ApplianceConnection
    let to: ApplianceConnection
    let staging: URL
    let environment: RunEnvironment

    func move(list: Endpoint, get: Endpoint, put: Endpoint, what: String) async throws -> (count: Int, bytes: Int64) {
        let source: [StoredFileInfo] = try await from.call(list)
        let present: [StoredFileInfo] = try await to.call(list)
        let have = Set(present.map { "\($0.name)|\($0.sha256)" })
        let missing = source.filter { !have.contains("\($0.name)|\($0.sha256)") }.sorted { $0.name < $1.name }
        guard !missing.isEmpty else { return (0, 0) }
        let total = missing.reduce(0) { $0 + $1.size }
        let label = "\(what): \(missing.count) to move"
        let report = environment.progress(label, kind: "transfer", total: total)
        try FileManager.default.createDirectory(at: staging, withIntermediateDirectories: true)
        // Two stages at once: the next file downloads here while the current one uploads to the target.
        let counters = Mutex<(downloaded: Int64, uploaded: Int64)>((0, 0))
        let progress: @Sendable (_ downloaded: Int64, _ uploaded: Int64) -> Void = { down, up in
            let sum = counters.withLock { counters in
                counters.downloaded += down
                counters.uploaded += up
                return counters.downloaded + counters.uploaded
            }
            report(sum / 2)
        }
        var pending: Task<URL, any Error>? = fetch(missing[0], slot: 0, get: get, progress: progress)
        var moved: Int64 = 0
        do {
            for (index, item) in missing.enumerated() {
                guard let download = pending else { break }
                let local = try await download.value
                pending =
                    index + 1 < missing.count
                    ? fetch(missing[index + 1], slot: (index + 1) % 2, get: get, progress: progress) : nil
                let stored = try await to.upload(
                    put,
                    name: item.name,
                    fromFile: local.path,
                    progress: Self.deltas { progress(0, $0) }
                )
                try? FileManager.default.removeItem(at: local)
                guard stored.sha256 == item.sha256, stored.size == item.size else {
                    throw MigrationError(
                        .transfer,
                        "\(item.name) was stored with SHA-256 \(stored.sha256), expected \(item.sha256); run resume"
                    )
                }
                moved += item.size
            }
        } catch {
            // Do not leave a download writing into staging behind a failed step (a retry would reuse the slot).
            pending?.cancel()
            _ = try? await pending?.value
            throw error
        }
        environment.events(.transferFinished(label: label))
        return (missing.count, moved)
    }

    /// Downloads `item` into staging slot `slot` and checks it against the source's checksum.
    func fetch(
        _ item: StoredFileInfo,
        slot: Int,
        get: Endpoint,
        progress: @escaping @Sendable (Int64, Int64) -> Void
    ) -> Task<URL, any Error> {
        let from = from
        let local = staging.appendingPathComponent("slot-\(slot).partial")
        return Task {
            try? FileManager.default.removeItem(at: local)
            try await from.download(get, name: item.name, to: local.path, progress: Self.deltas { progress($0, 0) })
            let sha = try Self.sha256(of: local)
            guard sha == item.sha256 else {
                throw MigrationError(
                    .transfer,
                    "\(item.name) arrived with SHA-256 \(sha), the source lists \(item.sha256); run resume to retry"
                )
            }
            return local
        }
    }

    /// Turns a transfer's running total into the bytes added since its last report, for `sink`.
    static func deltas(_ sink: @escaping @Sendable (Int64) -> Void) -> @Sendable (Int64) -> Void {
        let last = Mutex<Int64>(0)
        return { total in
            sink(
                last.withLock { last in
                    defer { last = total }
                    return total - last
                }
            )
        }
    }

    static func sha256(of file: URL) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: file.path) else {
            throw MigrationError(.transfer, "cannot read \(file.path)")
        }
        defer { try? handle.close() }
        let hasher = SHA256Hasher()
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            chunk.withUnsafeBytes { hasher.update($0) }
        }
        return hasher.finalize().hexString
    }
}
