import ApplianceAPI
import Foundation
import GRDB

/// What one generator run added, so a run that fails (typically: the disk filled up) can take it all back.
///
/// Names that existed before the run are never recorded: a failed run must not delete data it did not write.
struct GenerationUndo {
    let previousSettings: [String: String]
    let historyHighWaterMark: Int64
    let existingFiles: Set<String>
    let existingRecordings: Set<String>
    var users: [String] = []
    var files: [String] = []
    var recordings: [String] = []

    init(site: SiteDatabase, box: BoxDatabase) throws {
        previousSettings = try site.settings()
        historyHighWaterMark = try site.historyHighWaterMark()
        existingFiles = Set(try site.files().map(\.name))
        existingRecordings = Set(try box.recordings().map(\.name))
    }

    mutating func willWriteFile(_ name: String) {
        if !existingFiles.contains(name) { files.append(name) }
    }

    mutating func willWriteRecording(_ name: String) {
        if !existingRecordings.contains(name) { recordings.append(name) }
    }

    /// Removes what the run wrote: files first (that frees the space the database needs to record the
    /// deletions), then the rows. Returns the steps that failed, empty when everything was undone.
    func rollback(directory: DataDirectory, site: SiteDatabase, box: BoxDatabase) -> [String] {
        var failures: [String] = []
        func attempt(_ what: String, _ step: () throws -> Void) {
            do { try step() } catch { failures.append("\(what): \(error)") }
        }
        let fm = FileManager.default
        for name in files {
            let url = directory.files.appendingPathComponent(name)
            if fm.fileExists(atPath: url.path) { attempt("removing file \(name)") { try fm.removeItem(at: url) } }
        }
        for name in recordings {
            let url = directory.recordings.appendingPathComponent(name)
            if fm.fileExists(atPath: url.path) {
                attempt("removing recording \(name)") { try fm.removeItem(at: url) }
            }
        }
        attempt("removing the file store rows") { try site.deleteFiles(named: files) }
        attempt("removing the recording rows") { try box.deleteRecordings(named: recordings) }
        attempt("removing the history rows") { try site.deleteHistory(after: historyHighWaterMark) }
        attempt("removing the users") { try site.deleteUsers(named: users) }
        attempt("restoring the settings") { try site.replaceSettings(with: previousSettings) }
        // Give the space of the deleted rows back to the file system too; the data is consistent without it.
        try? site.compact()
        return failures
    }
}

extension SiteDatabase {
    /// The id of the newest history row, 0 when there is none.
    func historyHighWaterMark() throws -> Int64 {
        try pool().read { db in try Int64.fetchOne(db, sql: "SELECT MAX(id) FROM history") ?? 0 }
    }

    func deleteHistory(after id: Int64) throws {
        try pool().write { db in try db.execute(sql: "DELETE FROM history WHERE id > ?", arguments: [id]) }
    }

    func deleteUsers(named names: [String]) throws {
        guard !names.isEmpty else { return }
        try pool().write { db in
            for name in names { try db.execute(sql: "DELETE FROM user WHERE username = ?", arguments: [name]) }
        }
    }

    func deleteFiles(named names: [String]) throws {
        guard !names.isEmpty else { return }
        try pool().write { db in
            for name in names { try db.execute(sql: "DELETE FROM stored_file WHERE name = ?", arguments: [name]) }
        }
    }

    /// Shrinks the database file and its write-ahead log to what the rows need.
    func compact() throws {
        try pool().writeWithoutTransaction { db in
            try db.execute(sql: "VACUUM")
            try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)")
        }
    }

    /// Makes the settings exactly `values` again.
    func replaceSettings(with values: [String: String]) throws {
        try pool().write { db in
            try db.execute(sql: "DELETE FROM setting")
            for (key, value) in values {
                try db.execute(sql: "INSERT INTO setting (key, value) VALUES (?, ?)", arguments: [key, value])
            }
        }
    }
}

extension BoxDatabase {
    func deleteRecordings(named names: [String]) throws {
        guard !names.isEmpty else { return }
        try writer.write { db in
            for name in names { try db.execute(sql: "DELETE FROM recording WHERE name = ?", arguments: [name]) }
        }
    }
}
