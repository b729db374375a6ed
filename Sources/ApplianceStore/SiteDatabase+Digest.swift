import ApplianceCrypto
import Foundation
import GRDB

/// The history digest two boxes compare in a migration's verification, kept so that computing it costs only the
/// rows added since it was last computed: a verification inside a migration's freeze must not grow with the site.
///
/// The digest is a multiset hash: the sum, modulo 2²⁵⁶, of every row's SHA-256 over its content. It does not
/// depend on the order of rows, their local ids or their uids (after a failover merge two boxes hold the same rows
/// under other ids), so it can be extended row by row. Triggers drop the cached sum whenever a row is deleted or
/// changed, or inserted below the rows it covers; the next summary then starts again from the first row.
extension SiteDatabase {
    static func registerDigestCache(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v3") { db in
            try db.execute(
                sql: """
                    CREATE TABLE history_digest (
                        id INTEGER PRIMARY KEY CHECK (id = 1),
                        maxId INTEGER NOT NULL,
                        rowCount INTEGER NOT NULL,
                        sum BLOB NOT NULL
                    );
                    CREATE TRIGGER history_digest_insert AFTER INSERT ON history
                        WHEN NEW.id <= (SELECT maxId FROM history_digest)
                        BEGIN DELETE FROM history_digest; END;
                    CREATE TRIGGER history_digest_update AFTER UPDATE OF id, sessionId, username, target, proto,
                        startedAt, endedAt, bytesTransferred, summary ON history
                        BEGIN DELETE FROM history_digest; END;
                    CREATE TRIGGER history_digest_delete AFTER DELETE ON history
                        BEGIN DELETE FROM history_digest; END;
                    """
            )
        }
    }

    /// The history's row count and digest, extending the cached sum by the rows added since, and keeping it.
    static func historyDigest(_ db: Database) throws -> (count: Int, digest: String) {
        var maxId: Int64 = 0
        var count = 0
        var sum = [UInt8](repeating: 0, count: SHA256Hasher.digestLength)
        let cachedRow = try Row.fetchOne(db, sql: "SELECT maxId, rowCount, sum FROM history_digest WHERE id = 1")
        if let row = cachedRow, let cached = row["sum"] as Data?, cached.count == sum.count {
            maxId = row["maxId"]
            count = row["rowCount"]
            sum = [UInt8](cached)
        }
        let hasher = SHA256Hasher()
        let cursor = try Row.fetchCursor(
            db,
            sql: """
                SELECT id, sessionId, username, target, proto, startedAt, endedAt, bytesTransferred, summary
                FROM history WHERE id > ? ORDER BY id
                """,
            arguments: [maxId]
        )
        var added = 0
        while let row = try cursor.next() {
            let line =
                "\(row[1] as String)|\(row[2] as String)|\(row[3] as String)|\(row[4] as String)|"
                + "\(row[5] as String)|\(row[6] as String)|\(row[7] as Int64)|\(row[8] as String)\n"
            hasher.update(Array(line.utf8))
            add(hasher.finalize(), to: &sum)
            maxId = row[0]
            added += 1
        }
        count += added
        if added > 0 || cachedRow == nil {
            // Only a cache: a box that cannot write it (a full disk) still answers, and computes it again next time.
            try? db.execute(
                sql: "INSERT OR REPLACE INTO history_digest (id, maxId, rowCount, sum) VALUES (1, ?, ?, ?)",
                arguments: [maxId, count, Data(sum)]
            )
        }
        hasher.update(Array("history multiset v1|\(count)|".utf8))
        hasher.update(sum)
        return (count, hasher.finalize().hexString)
    }

    /// `sum += value` modulo 2²⁵⁶, both big-endian.
    static func add(_ value: [UInt8], to sum: inout [UInt8]) {
        var carry: UInt16 = 0
        for index in stride(from: sum.count - 1, through: 0, by: -1) {
            let total = UInt16(sum[index]) + UInt16(value[index]) + carry
            sum[index] = UInt8(truncatingIfNeeded: total)
            carry = total >> 8
        }
    }
}
