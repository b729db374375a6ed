import ApplianceAPI
import ApplianceClient
import ApplianceCrypto
import Foundation

/// Moves stored files or recordings from one appliance to another (X2): only what the target lacks (same name and
/// SHA-256), each file checked against the source's checksum on arrival here and again on the target.
///
/// Resumable at file granularity: an interrupted run leaves whole files on the target (uploads are written
/// under a scratch name and renamed) and a partial staging file here, which the next run discards.
struct FileMover {
    let from: ApplianceConnection
    let to: ApplianceConnection
    let staging: URL
    let environment: MigrationEnvironment

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
        var moved: Int64 = 0
        for item in missing {
            let local = staging.appendingPathComponent("current.partial")
            try? FileManager.default.removeItem(at: local)
            let base = moved
            try await from.download(get, name: item.name, to: local.path) { report(base + $0 / 2) }
            let sha = try Self.sha256(of: local)
            guard sha == item.sha256 else {
                throw MigrationError(
                    .transfer,
                    "\(item.name) arrived with SHA-256 \(sha), the source lists \(item.sha256); run resume to retry"
                )
            }
            let stored = try await to.upload(put, name: item.name, fromFile: local.path) { sent in
                report(base + (item.size + sent) / 2)
            }
            try? FileManager.default.removeItem(at: local)
            guard stored.sha256 == item.sha256, stored.size == item.size else {
                throw MigrationError(
                    .transfer,
                    "\(item.name) was stored with SHA-256 \(stored.sha256), expected \(item.sha256); run resume"
                )
            }
            moved += item.size
            report(moved)
        }
        environment.events(.transferFinished(label: label))
        return (missing.count, moved)
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
