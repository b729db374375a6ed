import ApplianceAPI
import ApplianceClient
import BackupFormat
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The parts of a site a restore must carry over, compared by digest.
struct SiteState: Equatable, CustomStringConvertible {
    var settings: String
    var users: String
    var history: String
    var historyRows: Int
    var files: String
    var fileCount: Int

    init(_ summary: SiteSummary) {
        settings = summary.settingsDigest
        users = summary.usersDigest
        history = summary.historyDigest
        historyRows = summary.historyRows
        files = summary.filesDigest
        fileCount = summary.fileCount
    }

    var description: String { "history \(historyRows) files \(fileCount) users \(users.prefix(8))" }
}

/// Reads a backup file with the project's own format code: decrypts (if needed) and lists the tar members.
func readBackup(_ file: URL, password: String?) throws -> (manifest: BackupManifest, members: [String: Int64]) {
    let data = try [UInt8](Data(contentsOf: file))
    var plain: [UInt8]
    if let password {
        let decryptor = AgeDecryptor(passphrase: password)
        plain = try decryptor.feed(data)
        plain += try decryptor.finish()
    } else {
        plain = data
    }
    var reader = TarReader()
    var members: [String: Int64] = [:]
    var current = ""
    var manifestBytes: [UInt8] = []
    for event in try reader.feed(plain) {
        switch event {
        case .entryStart(let name, let size):
            current = name
            members[name] = size
        case .entryData(let bytes):
            if current == "manifest.json" { manifestBytes += bytes }
        case .entryEnd, .archiveEnd: break
        }
    }
    try reader.finish()
    let decoder = JSONDecoder()
    decoder.dateDecodingStrategy = .iso8601
    return (try decoder.decode(BackupManifest.self, from: Data(manifestBytes)), members)
}

/// A6 backup and restore through the real API, with every refusal, and a crash in the middle of a restore.
@Suite struct BackupRestoreTests {
    static let password = "backup-Secret-7"

    static func backup(_ session: ApplianceConnection, password: String?, history: Bool = true) async throws -> URL {
        let file = TestSupport.temporaryDirectory("backup").appendingPathComponent("site.backup")
        _ = try await session.backup(
            BackupRequest(password: password, includeHistory: history),
            to: file.path,
            progress: { _ in }
        )
        return file
    }

    @Test func backupCarriesTheSiteAndRestoresIntoAnotherBox() async throws {
        let source = try await TestBox()
        defer { source.terminate() }
        let target = try await TestBox()
        defer { target.terminate() }
        let sourceAdmin = try await source.admin()
        let _: SiteSummary = try await sourceAdmin.call(
            .generateSiteData,
            body: GenerateSiteDataRequest(bytes: 24 << 20, seed: 7)
        )
        let sourceSummary: SiteSummary = try await sourceAdmin.call(.siteSummary)
        #expect(sourceSummary.fileCount > 50)
        #expect(sourceSummary.recordingCount > 0)
        #expect(sourceSummary.historyRows > 1000)

        let file = try await Self.backup(sourceAdmin, password: Self.password)
        // The file is age, and inside it the manifest accounts for every member.
        let head = try FileHandle(forReadingFrom: file).read(upToCount: 21) ?? Data()
        #expect(String(decoding: head, as: UTF8.self) == "age-encryption.org/v1")
        let (manifest, members) = try readBackup(file, password: Self.password)
        #expect(manifest.siteVersion == "24.1.0")
        #expect(manifest.includesHistory)
        #expect(manifest.encrypted)
        #expect(manifest.counts["history"] == sourceSummary.historyRows)
        #expect(Set(manifest.members.map(\.name)) == Set(members.keys).subtracting(["manifest.json"]))
        let files = members.filter { $0.key.hasPrefix("files/") }
        #expect(files.count == 50, "at most 50 files from the file store")
        #expect(files.values.allSatisfy { $0 < 200 * 1024 }, "only files under 200 KB")
        #expect(!members.keys.contains { $0.contains("recording") }, "recordings are not part of a backup")
        for member in manifest.members {
            #expect(member.sha256.count == 64)
            #expect(members[member.name] == member.size)
        }

        let targetAdmin = try await target.admin()
        let restored = try await targetAdmin.restore(file: file.path, password: Self.password, progress: { _ in })
        #expect(restored.sourceApplianceId == manifest.applianceId)
        // Restoring logged everyone out: the old session is gone.
        #expect(await refusal { let _: SiteSummary = try await targetAdmin.call(.siteSummary) } == "unauthorized")
        let after: SiteSummary = try await target.admin().call(.siteSummary)
        #expect(after.settingsDigest == sourceSummary.settingsDigest)
        #expect(after.usersDigest == sourceSummary.usersDigest)
        #expect(after.historyDigest == sourceSummary.historyDigest)
        #expect(after.historyRows == sourceSummary.historyRows)
        #expect(after.fileCount == 50)
        #expect(after.recordingCount == 0, "recordings stay where they are")
        // A restored file reads back byte for byte.
        let name = try #require(files.keys.first).replacingOccurrences(of: "files/", with: "")
        let copy = TestSupport.temporaryDirectory("file").appendingPathComponent(name)
        try await target.admin().download(.getFile, name: name, to: copy.path)
        let original = TestSupport.temporaryDirectory("file").appendingPathComponent(name)
        try await sourceAdmin.download(.getFile, name: name, to: original.path)
        #expect(try Data(contentsOf: copy) == Data(contentsOf: original))
    }

    @Test func unencryptedBackupWithoutHistory() async throws {
        let box = try await TestBox()
        defer { box.terminate() }
        let admin = try await box.admin()
        try await admin.perform(
            .appendHistory,
            body: AppendHistoryRequest(rows: [
                HistoryRow(
                    sessionId: "s1",
                    username: "anna",
                    target: "db01",
                    proto: "ssh",
                    startedAt: Date(),
                    endedAt: Date(),
                    bytesTransferred: 10,
                    summary: "x"
                )
            ])
        )
        let _: [String: String] = try await admin.call(.updateSettings, body: ["site.name": "Plain"])
        let file = try await Self.backup(admin, password: nil, history: false)
        let (manifest, members) = try readBackup(file, password: nil)
        #expect(!manifest.encrypted)
        #expect(!manifest.includesHistory)
        #expect(manifest.counts["history"] == 0)
        #expect(members["site.sqlite"] != nil)
        // The plain backup is an ordinary tar archive.
        let listing = try await TestSupport.run("tar", ["-tf", file.path])
        #expect(listing.status == 0)
        #expect(listing.stdout.contains("manifest.json"))

        let _: [String: String] = try await admin.call(.updateSettings, body: ["site.name": "Changed"])
        _ = try await box.connection().authenticated(
            try await box.connection().login(username: "admin", password: TestBox.adminPassword).token
        ).restore(file: file.path, password: nil, progress: { _ in })
        let settings: [String: String] = try await box.admin().call(.settings)
        #expect(settings["site.name"] == "Plain")
        let history: HistoryPage = try await box.admin().call(.listHistory)
        #expect(history.total == 0)
    }

    @Test func refusedRestoresChangeNothing() async throws {
        let source = try await TestBox()
        defer { source.terminate() }
        let target = try await TestBox()
        defer { target.terminate() }
        let older = try await TestBox(arguments: ["--factory-site-version", "24.0.0"])
        defer { older.terminate() }
        let sourceAdmin = try await source.admin()
        let _: [String: String] = try await sourceAdmin.call(.updateSettings, body: ["site.name": "Source"])
        let file = try await Self.backup(sourceAdmin, password: Self.password)
        let data = try Data(contentsOf: file)

        let targetAdmin = try await target.admin()
        let _: [String: String] = try await targetAdmin.call(.updateSettings, body: ["site.name": "Target"])
        let before = SiteState(try await targetAdmin.call(.siteSummary))
        let scratch = TestSupport.temporaryDirectory("bad")

        func attempt(_ bytes: Data, password: String?) async -> String? {
            let path = scratch.appendingPathComponent(UUID().uuidString)
            try? bytes.write(to: path)
            return await refusal {
                _ = try await targetAdmin.restore(file: path.path, password: password, progress: { _ in })
            }
        }
        #expect(await attempt(data, password: "wrong password") == "wrong_password")
        #expect(await attempt(data, password: nil) == "password_required")
        var corrupt = data
        corrupt[corrupt.count / 2] ^= 0x40
        #expect(await attempt(corrupt, password: Self.password) == "backup_corrupt")
        for cut in [200, data.count / 3, data.count - 17] {
            let code = await attempt(data.prefix(cut), password: Self.password)
            #expect(code == "backup_truncated" || code == "backup_corrupt", "cut at \(cut): \(code ?? "accepted")")
        }
        #expect(
            await attempt(Data((0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 7919) }), password: nil)
                == "backup_corrupt"
        )

        let after = SiteState(try await targetAdmin.call(.siteSummary))
        #expect(after == before, "a refused restore changed the site")
        let settings: [String: String] = try await targetAdmin.call(.settings)
        #expect(settings["site.name"] == "Target")
        let staging = target.dataDir.appendingPathComponent("site.restore")
        #expect(!FileManager.default.fileExists(atPath: staging.path), "staging left behind")

        // A backup from newer site software is refused with the version to install.
        let olderAdmin = try await older.admin()
        do {
            _ = try await olderAdmin.restore(file: file.path, password: Self.password, progress: { _ in })
            Issue.record("a newer backup was restored")
        } catch let error as ApplianceClientError {
            #expect(error.apiCode == "backup_newer")
            #expect(error.message.contains("install site version 24.1.0 first"))
        }
    }

    /// SIGKILL at several points of a restore; after each restart the site is the old one or the new one in full.
    @Test func crashDuringRestoreLeavesOldOrNewSite() async throws {
        let source = try await TestBox()
        defer { source.terminate() }
        let target = try await TestBox()
        defer { target.terminate() }
        let sourceAdmin = try await source.admin()
        let _: SiteSummary = try await sourceAdmin.call(
            .generateSiteData,
            body: GenerateSiteDataRequest(bytes: 160 << 20, seed: 11)
        )
        let file = try await Self.backup(sourceAdmin, password: Self.password)
        let size = Int64(try FileManager.default.attributesOfItem(atPath: file.path)[.size] as? Int ?? 0)
        #expect(size > 10 << 20)

        let targetAdmin = try await target.admin()
        let _: SiteSummary = try await targetAdmin.call(
            .generateSiteData,
            body: GenerateSiteDataRequest(bytes: 8 << 20, seed: 12)
        )
        let old = SiteState(try await targetAdmin.call(.siteSummary))
        var observed: [SiteState] = []

        // Kill points: fractions of the upload, then delays after the upload completed (verification, commit).
        let points: [(fraction: Double, delayMs: Int)] = [
            (0.3, 0), (0.8, 0), (1.0, 0), (1.0, 30), (1.0, 120), (1.0, 400),
        ]
        for point in points {
            let admin = try await target.admin()
            let pid = target.process.processIdentifier
            let threshold = Int64(Double(size) * point.fraction)
            let delay = point.delayMs
            _ = try? await admin.restore(
                file: file.path,
                password: Self.password,
                progress: { sent in
                    if sent >= threshold {
                        if delay == 0 {
                            Glibc.kill(pid, SIGKILL)
                        } else {
                            DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(delay)) {
                                Glibc.kill(pid, SIGKILL)
                            }
                        }
                    }
                }
            )
            // The SIGKILL was sent from the progress callback (or is on its way after `delay`): wait for it to land.
            #expect(await target.waitForExit() != nil, "kill point \(point): applianced did not die")
            await target.kill()
            try await target.start()
            observed.append(SiteState(try await target.admin().call(.siteSummary)))
            #expect(!FileManager.default.fileExists(atPath: target.dataDir.appendingPathComponent("site.restore").path))
            #expect(!FileManager.default.fileExists(atPath: target.dataDir.appendingPathComponent("site.old").path))
        }
        // The restored state, from a restore that runs to the end.
        _ = try await target.admin().restore(file: file.path, password: Self.password, progress: { _ in })
        let new = SiteState(try await target.admin().call(.siteSummary))
        #expect(new != old)
        for (index, state) in observed.enumerated() {
            #expect(state == old || state == new, "kill point \(points[index]): mixed state \(state)")
        }
        #expect(observed.first == old, "a kill at 30% of the upload must leave the old site")
    }
}
