import ApplianceAPI
import Foundation
import Logging
import Testing

@testable import ApplianceStore

/// The history digest a migration's verification compares: independent of row order and ids, extended row by row
/// from its cached sum, and started again whenever rows are deleted or changed.
@Suite struct HistoryDigestTests {
    static func rows(_ range: Range<Int>) -> [HistoryRow] {
        range.map { index in
            HistoryRow(
                sessionId: "s\(index)",
                username: "user\(index % 7)",
                target: "host\(index % 13)",
                proto: index.isMultiple(of: 2) ? "ssh" : "rdp",
                startedAt: Date(timeIntervalSince1970: 1_700_000_000 + Double(index)),
                endedAt: Date(timeIntervalSince1970: 1_700_000_060 + Double(index)),
                bytesTransferred: Int64(index * 1000),
                summary: "session \(index)"
            )
        }
    }

    /// A fresh site database in a temporary directory.
    static func site() throws -> (SiteDatabase, URL) {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("digest-\(UUID().uuidString)")
        let directory = DataDirectory(root.path)
        try directory.prepare(logger: Logger(label: "test"))
        return (try SiteDatabase(directory: directory), root)
    }

    static func digest(_ site: SiteDatabase) throws -> (Int, String) { try site.summary().history }

    @Test func sameRowsInAnotherOrderGiveTheSameDigest() throws {
        let (a, rootA) = try Self.site()
        let (b, rootB) = try Self.site()
        defer { for root in [rootA, rootB] { try? FileManager.default.removeItem(at: root) } }
        try a.appendHistory(Self.rows(0..<50))
        try b.appendHistory(Array(Self.rows(0..<50).reversed()))
        #expect(try Self.digest(a) == Self.digest(b))
        #expect(try Self.digest(a).0 == 50)
    }

    @Test func theCachedSumExtendedRowByRowEqualsOneComputedAtOnce() throws {
        let (a, rootA) = try Self.site()
        let (b, rootB) = try Self.site()
        defer { for root in [rootA, rootB] { try? FileManager.default.removeItem(at: root) } }
        let empty = try Self.digest(a)
        for chunk in stride(from: 0, to: 60, by: 20) {
            try a.appendHistory(Self.rows(chunk..<chunk + 20))
            _ = try Self.digest(a)  // caches the sum so far
        }
        try b.appendHistory(Self.rows(0..<60))
        #expect(try Self.digest(a) == Self.digest(b))
        #expect(try Self.digest(a) != empty)
    }

    @Test func deletedRowsDropTheCacheAndTheDigestFollowsTheRemainingRows() throws {
        let (a, rootA) = try Self.site()
        let (b, rootB) = try Self.site()
        defer { for root in [rootA, rootB] { try? FileManager.default.removeItem(at: root) } }
        try a.appendHistory(Self.rows(0..<40))
        let before = try Self.digest(a)
        let mark = try a.historyHighWaterMark()
        try a.appendHistory(Self.rows(40..<45))
        _ = try Self.digest(a)
        try a.deleteHistory(after: mark)
        #expect(try Self.digest(a) == before)
        try a.appendHistory(Self.rows(100..<101))
        try b.appendHistory(Self.rows(0..<40) + Self.rows(100..<101))
        #expect(try Self.digest(a) == Self.digest(b))
    }

    @Test func aChangedRowChangesTheDigest() throws {
        let (a, rootA) = try Self.site()
        let (b, rootB) = try Self.site()
        defer { for root in [rootA, rootB] { try? FileManager.default.removeItem(at: root) } }
        try a.appendHistory(Self.rows(0..<10))
        var changed = Self.rows(0..<10)
        changed[3].bytesTransferred += 1
        try b.appendHistory(changed)
        #expect(try Self.digest(a).1 != Self.digest(b).1)
        // One row twice is not the same as the row once: the digest counts a multiset.
        let (c, rootC) = try Self.site()
        defer { try? FileManager.default.removeItem(at: rootC) }
        try c.appendHistory(Self.rows(0..<10) + Self.rows(3..<4))
        #expect(try Self.digest(c).1 != Self.digest(a).1)
    }

    @Test func theSumCarriesAcrossBytesModuloTwoToThe256() {
        var sum = [UInt8](repeating: 0xff, count: 32)
        SiteDatabase.add([UInt8](repeating: 0, count: 31) + [1], to: &sum)
        #expect(sum == [UInt8](repeating: 0, count: 32))
        var small = [UInt8](repeating: 0, count: 32)
        SiteDatabase.add([UInt8](repeating: 0, count: 30) + [0x01, 0xff], to: &small)
        SiteDatabase.add([UInt8](repeating: 0, count: 31) + [0x01], to: &small)
        #expect(small.suffix(2) == [0x02, 0x00])
    }
}
