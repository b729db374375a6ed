import ApplianceAPI
import ApplianceStore
import Foundation
import Hummingbird
import Logging

/// Room on the data file system: checks before operations that know what they need, and 507 refusals that say
/// how much is free when the disk fills up part-way.
extension Appliance {
    /// Extra room every check keeps: SQLite journals, directory entries, the metadata of new files.
    static let storageMargin: Int64 = 1024 * 1024

    /// Refuses `operation` with a 507 up front when the data file system has less than `bytes` (plus a margin).
    func requireRoom(_ bytes: Int64, for operation: String) throws {
        try StoreError.requireRoom(bytes + Self.storageMargin, for: operation, at: directory.root)
    }

    /// Runs `body`; when it fails because the disk is full, the failure becomes a 507 that names `operation`,
    /// the free space and, if known, what the operation needs.
    func reportingDiskFull<T>(_ operation: String, needs: Int64?, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as StoreError where error.code == .diskFull {
            throw error
        } catch let error where DiskSpace.isOutOfSpace(error) {
            logger.error(
                "Disk full",
                metadata: ["storage.operation": "\(operation)", "error": "\(String(reflecting: error))"]
            )
            throw StoreError.diskFull(operation, at: directory.root, needs: needs)
        }
    }

    /// What a backup's snapshot of the site database takes on disk: a copy of the database, and as much again
    /// while the copy without history is compacted.
    func backupSnapshotNeeds(includeHistory: Bool) -> Int64 {
        let fm = FileManager.default
        let database = ["", "-wal"].reduce(Int64(0)) { total, suffix in
            let path = directory.siteDatabase.path + suffix
            let size = (try? fm.attributesOfItem(atPath: path)[.size] as? NSNumber)?.int64Value ?? 0
            return total + size
        }
        return includeHistory ? database : database * 2
    }

    /// Streams an upload into a scratch file, then moves it into place; returns its size and SHA-256.
    ///
    /// With a `Content-Length` the room is checked before the first byte is written.
    func receiveFile(_ request: Request, to destination: URL) async throws -> StoredFileInfo {
        let operation = "storing \(destination.lastPathComponent)"
        let length = request.headers[.contentLength].flatMap { Int64($0) }
        if let length { try requireRoom(length, for: operation) }
        return try await reportingDiskFull(operation, needs: length) {
            let writer = try FileWriter(scratch: directory.scratchFile("upload"))
            do {
                for try await buffer in request.body {
                    try buffer.withUnsafeReadableBytes { try writer.write($0) }
                }
                let (size, sha256) = try writer.finish()
                try writer.commit(to: destination)
                return StoredFileInfo(
                    name: destination.lastPathComponent,
                    size: size,
                    sha256: sha256,
                    modifiedAt: Date()
                )
            } catch {
                writer.discard()
                throw error
            }
        }
    }
}
