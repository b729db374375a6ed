import ApplianceAPI
import ApplianceClient
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A box whose data directory is a small tmpfs: once it is (nearly) full every writing operation answers 507
/// with how much is free and what it needed, a failed populate leaves nothing behind, `/health` says
/// "degraded", and nothing that was there before is damaged.
@Suite(.serialized) struct FullDiskTests {
    /// Mounting needs root (and a kernel that lets this process mount); otherwise the suite is skipped.
    static let canMount: Bool = {
        guard getuid() == 0 else { return false }
        let probe = TestSupport.temporaryDirectory("tmpfs-probe")
        defer { try? FileManager.default.removeItem(at: probe) }
        guard mount("tmpfs", probe.path, "tmpfs", 0, "size=1m") == 0 else { return false }
        return umount2(probe.path, Int32(MNT_DETACH)) == 0
    }()

    @Test(.enabled(if: canMount, "needs root and permission to mount a tmpfs (mount -t tmpfs); skipped"))
    func fullDiskAnswers507AndDamagesNothing() async throws {
        let mountPoint = TestSupport.temporaryDirectory("full-disk")
        try #require(mount("tmpfs", mountPoint.path, "tmpfs", 0, "size=32m") == 0, "mount: errno \(errno)")
        defer { _ = umount2(mountPoint.path, Int32(MNT_DETACH)) }
        let box = try await TestBox(dataDir: mountPoint, arguments: ["--min-free-space-mib", "4"])
        defer { box.terminate() }
        box.factoryFresh = true
        let admin = try await box.admin()
        #expect(try await box.connection().health().health.status == "ok")

        let outside = TestSupport.temporaryDirectory("full-disk-files")
        let keep = outside.appendingPathComponent("keep.txt")
        try Data("the file that must survive\n".utf8).write(to: keep)
        let kept = try await admin.upload(.putFile, name: "keep.txt", fromFile: keep.path)
        let before: SiteSummary = try await admin.call(.siteSummary)

        // A populate larger than the disk fails part-way, says so, and takes back everything it wrote.
        let populate = await refused {
            let _: SiteSummary = try await admin.call(
                .generateSiteData,
                body: GenerateSiteDataRequest(bytes: 64 * 1024 * 1024, seed: 7)
            )
        }
        #expect(populate.status == 507)
        #expect(populate.code == "disk_full")
        #expect(populate.message.contains("disk is full"), "\(populate.message)")
        #expect(populate.message.contains("needs about 64.0 MiB"), "\(populate.message)")
        #expect(populate.message.contains("free"), "\(populate.message)")
        let afterPopulate: SiteSummary = try await admin.call(.siteSummary)
        #expect(afterPopulate == before)
        let fm = FileManager.default
        let storedFiles = try fm.contentsOfDirectory(atPath: mountPoint.appendingPathComponent("site/files").path)
        #expect(storedFiles == ["keep.txt"])
        #expect(try fm.contentsOfDirectory(atPath: mountPoint.appendingPathComponent("recordings").path).isEmpty)
        #expect(try fm.contentsOfDirectory(atPath: mountPoint.appendingPathComponent("tmp").path).isEmpty)
        // The rows it wrote and deleted do not keep their space either.
        #expect(try await box.connection().health().health.status == "ok")

        // Fill the disk from outside until 2 MiB are left.
        let filler = mountPoint.appendingPathComponent("filler")
        try fill(filler, leaving: 2 * 1024 * 1024, on: mountPoint)
        let (healthy, health, _) = try await box.connection().health()
        #expect(healthy, "degraded still answers 200")
        #expect(health.status == "degraded")
        #expect(health.reason?.contains("low disk space") == true, "\(health.reason ?? "no reason")")

        let big = outside.appendingPathComponent("big.bin")
        try Data(repeating: 0x5a, count: 4 * 1024 * 1024).write(to: big)
        let upload = await refused { _ = try await admin.upload(.putFile, name: "big.bin", fromFile: big.path) }
        #expect(upload.status == 507)
        #expect(upload.message.contains("needs about 5.0 MiB"), "\(upload.message)")
        #expect(upload.message.contains("free"), "\(upload.message)")
        let recording = await refused {
            _ = try await admin.upload(.putRecording, name: "big.rec", fromFile: big.path)
        }
        #expect(recording.status == 507)

        let restore = await refused { _ = try await admin.restore(file: big.path, password: nil) { _ in } }
        #expect(restore.status == 507)
        #expect(restore.message.contains("staging the restore"), "\(restore.message)")

        // The snapshot needs a copy of the site database: grow it past the free space first.
        try fm.removeItem(at: filler)
        for batch in 0..<3 {
            let rows = Self.rows(count: 2000, batch: batch)
            try await admin.perform(.appendHistory, body: AppendHistoryRequest(rows: rows))
        }
        try fill(filler, leaving: 2 * 1024 * 1024, on: mountPoint)
        let backup = await refused {
            _ = try await admin.backup(
                BackupRequest(password: nil, includeHistory: true),
                to: outside.appendingPathComponent("b.tar").path
            ) { _ in }
        }
        #expect(backup.status == 507)
        #expect(backup.message.contains("snapshot"), "\(backup.message)")
        #expect(backup.message.contains("free"), "\(backup.message)")

        // Nothing was damaged: with room again the kept file is intact, health is ok and a backup works.
        try fm.removeItem(at: filler)
        #expect(try await box.connection().health().health.status == "ok")
        let copy = outside.appendingPathComponent("copy.txt")
        try await admin.download(.getFile, name: "keep.txt", to: copy.path)
        #expect(try Data(contentsOf: copy) == Data(contentsOf: keep))
        let files: [StoredFileInfo] = try await admin.call(.listFiles)
        #expect(files.map(\.name) == ["keep.txt"])
        #expect(files.first?.sha256 == kept.sha256)
        let result = try await admin.backup(
            BackupRequest(password: nil, includeHistory: true),
            to: outside.appendingPathComponent("ok.tar").path
        ) { _ in }
        #expect(result.status == 200)
    }

    /// Writes real bytes (tmpfs does not allocate sparse files) until `leaving` bytes are free.
    private func fill(_ file: URL, leaving: Int64, on mountPoint: URL) throws {
        var stats = statvfs()
        try #require(statvfs(mountPoint.path, &stats) == 0)
        let free = Int64(stats.f_bavail) * Int64(stats.f_frsize)
        let size = max(0, free - leaving)
        _ = FileManager.default.createFile(atPath: file.path, contents: nil)
        let handle = try FileHandle(forWritingTo: file)
        defer { try? handle.close() }
        let chunk = Data(repeating: 0xa5, count: 1024 * 1024)
        var written: Int64 = 0
        while written < size {
            let count = Int(min(Int64(chunk.count), size - written))
            try handle.write(contentsOf: chunk.prefix(count))
            written += Int64(count)
        }
    }

    static func rows(count: Int, batch: Int) -> [HistoryRow] {
        (batch * count..<(batch + 1) * count).map { index in
            HistoryRow(
                sessionId: "s\(index)",
                username: "anna",
                target: "srv-\(index).example.test",
                proto: "ssh",
                startedAt: Date(timeIntervalSince1970: 1_700_000_000 + Double(index)),
                endedAt: Date(timeIntervalSince1970: 1_700_000_600 + Double(index)),
                bytesTransferred: Int64(index),
                summary: String(repeating: "maintenance window session ", count: 20)
            )
        }
    }

    /// Runs `body`, which must be refused by the appliance; returns the refusal's status, code and message.
    private func refused(_ body: () async throws -> Void) async -> (status: Int?, code: String?, message: String) {
        do {
            try await body()
            return (nil, nil, "it was not refused")
        } catch let error as ApplianceClientError {
            return (error.apiStatus, error.apiCode, error.message)
        } catch {
            return (nil, nil, "\(error)")
        }
    }
}
