public import Foundation
import GRDB

#if canImport(Glibc)
    import Glibc
#endif

/// Free and total space of the file system that holds a path, and recognising "the disk is full" failures.
public struct DiskSpace: Sendable, Equatable {
    public var totalBytes: Int64
    /// What an unprivileged writer may still use (`f_bavail`).
    public var freeBytes: Int64

    public init(totalBytes: Int64, freeBytes: Int64) {
        self.totalBytes = totalBytes
        self.freeBytes = freeBytes
    }

    /// The space of the file system holding `url`, nil when it cannot be asked.
    public static func of(_ url: URL) -> DiskSpace? {
        var stats = statvfs()
        guard statvfs(url.path, &stats) == 0 else { return nil }
        let block = Int64(stats.f_frsize)
        return DiskSpace(totalBytes: Int64(stats.f_blocks) * block, freeBytes: Int64(stats.f_bavail) * block)
    }

    /// Whether `error` (or an error it wraps) says the disk is full: SQLite's SQLITE_FULL or POSIX ENOSPC/EDQUOT.
    public static func isOutOfSpace(_ error: any Error) -> Bool {
        if let error = error as? StoreError { return error.code == .diskFull }
        if let error = error as? DatabaseError { return error.resultCode == .SQLITE_FULL }
        if let error = error as? POSIXError { return [.ENOSPC, .EDQUOT].contains(error.code) }
        if let error = error as? CocoaError, error.code == .fileWriteOutOfSpace { return true }
        let nsError = error as NSError
        if nsError.domain == NSPOSIXErrorDomain && [Int(ENOSPC), Int(EDQUOT)].contains(nsError.code) { return true }
        if nsError.domain == NSCocoaErrorDomain && nsError.code == CocoaError.fileWriteOutOfSpace.rawValue {
            return true
        }
        if let underlying = nsError.userInfo[NSUnderlyingErrorKey] as? any Error {
            return isOutOfSpace(underlying)
        }
        return false
    }

    /// "12.5 MiB"
    public static func format(_ bytes: Int64) -> String {
        let units = ["bytes", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(bytes) bytes" : String(format: "%.1f %@", value, units[unit])
    }
}

extension StoreError {
    /// The disk of the data directory is full (or too full for `operation`): how much is free and, where
    /// known, how much the operation needs.
    public static func diskFull(_ operation: String, at url: URL, needs: Int64? = nil) -> StoreError {
        let space = DiskSpace.of(url)
        let free = space.map { "\(DiskSpace.format($0.freeBytes)) of \(DiskSpace.format($0.totalBytes)) are free" }
        var message = "the appliance's disk is full: \(operation)"
        if let needs {
            message += " needs about \(DiskSpace.format(needs))"
            message += free.map { " but only \($0)" } ?? ""
        } else {
            message += " ran out of space" + (free.map { " (\($0))" } ?? "")
        }
        message += " on the data file system; nothing was changed. Free space (delete files or recordings) "
        message += "or give the appliance a larger disk, then try again"
        return StoreError(.diskFull, message)
    }

    /// Refuses `operation` up front when the file system holding `url` has less than `bytes` free.
    public static func requireRoom(_ bytes: Int64, for operation: String, at url: URL) throws {
        if let space = DiskSpace.of(url), space.freeBytes < bytes {
            throw diskFull(operation, at: url, needs: bytes)
        }
    }
}
