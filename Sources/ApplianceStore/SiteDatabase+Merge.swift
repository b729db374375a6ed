public import ApplianceAPI
public import Foundation
import GRDB

/// Fixing a failover conflict (A7): the winner takes the history rows it lacks from the loser, each once by its
/// uid, and the loser's next sync carries the winner's configuration whole.
extension SiteDatabase {
    /// Inserts the rows whose uid this site does not hold yet, in one transaction; returns how many were new.
    /// Running it again with the same rows inserts none.
    public func mergeHistory(_ rows: [SyncedHistoryRow]) throws -> Int {
        try pool().write { db in
            let insert = try db.makeStatement(
                sql: """
                    INSERT OR IGNORE INTO history (sessionId, username, target, proto, startedAt, endedAt,
                    bytesTransferred, summary, uid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """
            )
            var inserted = 0
            for row in rows {
                try insert.execute(arguments: [
                    row.sessionId, row.username, row.target, row.proto, row.startedAt, row.endedAt,
                    row.bytesTransferred, row.summary, row.uid,
                ])
                inserted += db.changesCount
            }
            return inserted
        }
    }

    /// How many of `uids` this site does not hold.
    public func missingHistoryCount(_ uids: [String]) throws -> Int {
        try pool().read { db in
            var present = 0
            for start in stride(from: 0, to: uids.count, by: 500) {
                let chunk = Array(uids[start..<min(start + 500, uids.count)])
                let marks = Array(repeating: "?", count: chunk.count).joined(separator: ", ")
                present +=
                    try Int.fetchOne(
                        db,
                        sql: "SELECT COUNT(*) FROM history WHERE uid IN (\(marks))",
                        arguments: StatementArguments(chunk)
                    ) ?? 0
            }
            return uids.count - present
        }
    }

    /// The latest end time of a history row: when the newest session this site knows of ended.
    public func newestHistoryEnd() throws -> Date? {
        try pool().read { db in try Date.fetchOne(db, sql: "SELECT MAX(endedAt) FROM history") }
    }

    /// Keeps the backup's history cursor but forgets the configuration digest, so that the next sync carries the
    /// primary's settings, users and policy whole, also when the backup changed its own while it was primary.
    public func forgetSyncedConfig() throws {
        guard var cursor = try syncCursor() else { return }
        cursor.configDigest = ""
        let text = String(decoding: try JSONEncoder.sync.encode(cursor), as: UTF8.self)
        try setFailoverValue(Self.cursorKey, text)
    }
}
