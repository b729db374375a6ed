import ApplianceCrypto
import BackupFormat
import Foundation
import Testing

@Suite("Backup verifier (X1)")
struct BackupVerifierTests {
    typealias Entry = (name: String, bytes: [UInt8])

    static let password = "correct horse battery staple"
    static let info = BackupManifest(
        createdAt: Date(timeIntervalSince1970: 1_700_000_000),
        applianceId: "app-0001",
        hostname: "appliance-01",
        baseVersion: "24.3.1",
        siteVersion: "7.2",
        includesHistory: true,
        encrypted: false,
        counts: ["devices": 12, "files": 2],
        members: []
    )
    static let database = Array("SQLite format 3\u{0}".utf8) + randomBytes(300_000, seed: 11)
    /// What the appliance writes before manifest.json, in its order.
    static let entries: [Entry] = [
        ("backup.json", (try? info.jsonBytes()) ?? []),
        ("site.sqlite", database),
        ("files/logo.png", randomBytes(70_001, seed: 12)),
        ("files/notes.txt", Array("hello".utf8)),
    ]

    /// A tar of `entries`, then manifest.json listing `listing` (by default the entries) unless `withManifest` is
    /// false, then `trailer`.
    static func archive(
        _ entries: [Entry] = entries,
        listing: [Entry]? = nil,
        manifestInfo: BackupManifest = info,
        withManifest: Bool = true,
        trailer: [UInt8] = TarWriter.end()
    ) throws -> [UInt8] {
        var all = entries
        if withManifest {
            var manifest = manifestInfo
            manifest.members = (listing ?? entries).map {
                .init(name: $0.name, size: Int64($0.bytes.count), sha256: SHA256Hasher.hash($0.bytes).hexString)
            }
            all.append(("manifest.json", try manifest.jsonBytes()))
        }
        var tar: [UInt8] = []
        for entry in all {
            let size = Int64(entry.bytes.count)
            tar += try TarWriter.header(name: entry.name, size: size, modificationTime: Date())
            tar += entry.bytes + TarWriter.padding(forSize: size)
        }
        return tar + trailer
    }

    static func encrypted(_ tar: [UInt8]) throws -> [UInt8] {
        try ageEncrypt(tar, passphrase: password, workFactor: 10)
    }

    /// Writes `bytes` to a temporary file and verifies it.
    static func verify(
        _ bytes: [UInt8],
        password: String? = password,
        progress: ((Int64) -> Void)? = nil
    ) throws -> BackupVerification {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("verifier-\(UUID().uuidString).tar")
        try Data(bytes).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        return try BackupVerifier.verify(file: url.path, password: password, progress: progress)
    }

    /// The error `verify` throws for `bytes`, or nil when it succeeds.
    static func failure(_ bytes: [UInt8], password: String? = password) -> BackupFormatError? {
        do {
            _ = try verify(bytes, password: password)
            return nil
        } catch {
            return error as? BackupFormatError
        }
    }

    static func replacing(_ name: String, with bytes: [UInt8], in entries: [Entry] = entries) -> [Entry] {
        entries.map { $0.name == name ? (name, bytes) : $0 }
    }

    // MARK: Good backups

    @Test func encryptedBackupVerifies() throws {
        let file = try Self.encrypted(try Self.archive())
        var reported: [Int64] = []
        let result = try Self.verify(file) { reported.append($0) }
        #expect(result.encrypted)
        #expect(result.fileBytes == Int64(file.count))
        #expect(result.fileSHA256 == SHA256Hasher.hash(file).hexString)
        #expect(result.memberCount == 5)
        #expect(result.siteDatabaseBytes == Int64(Self.database.count))
        #expect(result.fileStoreCount == 2)
        #expect(result.manifest.applianceId == "app-0001")
        #expect(result.manifest.members.map(\.name) == Self.entries.map(\.name))
        // Read in 256 KiB pieces, reported as running totals.
        #expect(reported.count == (file.count + BackupVerifier.pieceSize - 1) / BackupVerifier.pieceSize)
        #expect(reported.count > 1 && reported == reported.sorted() && reported.last == Int64(file.count))
    }

    @Test func plainBackupVerifiesWithOrWithoutPassword() throws {
        let file = try Self.archive()
        for password in [nil, Self.password] {
            let result = try Self.verify(file, password: password)
            #expect(!result.encrypted)
            #expect(result.fileBytes == Int64(file.count))
            #expect(result.fileSHA256 == SHA256Hasher.hash(file).hexString)
            #expect(result.memberCount == 5 && result.fileStoreCount == 2)
            #expect(result.siteDatabaseBytes == Int64(Self.database.count))
        }
    }

    @Test func zeroPaddingAfterTheEndIsAccepted() throws {
        let padded = try Self.archive(trailer: TarWriter.end() + [UInt8](repeating: 0, count: 9_216))
        #expect(try Self.verify(padded).memberCount == 5)
        #expect(try Self.verify(try Self.encrypted(padded)).memberCount == 5)
    }

    @Test func resultRoundTripsThroughJSON() throws {
        let result = try Self.verify(try Self.archive())
        let decoded = try JSONDecoder().decode(BackupVerification.self, from: JSONEncoder().encode(result))
        #expect(decoded == result)
    }

    // MARK: The file and its encryption

    @Test func missingOrEmptyFileIsRefused() throws {
        #expect(throws: BackupFormatError.self) {
            try BackupVerifier.verify(file: "/nonexistent/backup.tar.age", password: nil)
        }
        #expect(Self.failure([])?.code == .notABackup)
    }

    @Test func encryptedBackupWithoutPasswordIsRefused() throws {
        let file = try Self.encrypted(try Self.archive())
        for password in [nil, ""] {
            let error = Self.failure(file, password: password)
            #expect(error?.code == .passwordRequired)
            #expect(error?.message.contains("give the backup password") == true)
        }
    }

    @Test func wrongPasswordIsRefused() throws {
        let file = try Self.encrypted(try Self.archive())
        #expect(Self.failure(file, password: "wrong")?.code == .wrongPassword)
    }

    @Test func tamperedEncryptedByteIsDetected() throws {
        var file = try Self.encrypted(try Self.archive())
        file[file.count / 2] ^= 0x01
        #expect(Self.failure(file)?.code == .corrupt)
    }

    @Test func truncatedEncryptedFileIsRefused() throws {
        let tar = try Self.archive()
        let file = try Self.encrypted(tar)
        // age seals 64 KiB chunks with a 16-byte tag; cut right after the last full chunk.
        let lastChunk = tar.count - (tar.count - 1) / 65_536 * 65_536 + 16
        #expect(Self.failure(Array(file.dropLast(lastChunk)))?.code == .truncated)
        for length in [10, 150, file.count / 2, file.count - 1] {
            let code = Self.failure(Array(file.prefix(length)))?.code
            #expect(code == .truncated || code == .corrupt, "cut at \(length): \(String(describing: code))")
        }
    }

    @Test func truncatedPlainFileIsRefused() throws {
        let file = try Self.archive()
        for length in [100, 512, 100_000, file.count - 1_024, file.count - 1] {
            #expect(Self.failure(Array(file.prefix(length)))?.code == .truncated, "cut at \(length)")
        }
        // Encrypted whole, but the archive inside ends early.
        let inner = try Self.encrypted(Array(file.prefix(file.count - 1_024)))
        #expect(Self.failure(inner)?.code == .truncated)
    }

    @Test func dataAfterTheEndIsRefused() throws {
        let junk = try Self.archive(trailer: TarWriter.end() + [0, 0, 7])
        #expect(Self.failure(junk)?.code == .corrupt)
        #expect(Self.failure(try Self.encrypted(junk))?.code == .corrupt)
        // Junk that arrives in a later piece than the end marker.
        let late = try Self.archive(trailer: TarWriter.end() + [UInt8](repeating: 0, count: 300_000) + [9])
        #expect(Self.failure(late)?.code == .corrupt)
        #expect(Self.failure(try Self.encrypted(late))?.code == .corrupt)
        // Bytes appended to the encrypted file itself.
        #expect(Self.failure(try Self.encrypted(try Self.archive()) + [1, 2, 3])?.code == .corrupt)
    }

    // MARK: The archive's members

    @Test func backupJSONMustComeFirst() throws {
        var entries = Self.entries
        entries.swapAt(0, 1)
        #expect(Self.failure(try Self.archive(entries))?.code == .notABackup)
    }

    @Test func memberTwiceIsRefused() throws {
        let twice = try Self.archive(Self.entries + [Self.entries[3]], listing: Self.entries)
        let error = Self.failure(twice)
        #expect(error?.code == .corrupt)
        #expect(error?.message.contains("twice") == true)
    }

    @Test func unknownMembersAreRefused() throws {
        for name in ["etc/passwd", "files/.hidden", "files/a/b", "files/ x", "site.db"] {
            let entries = Self.entries + [(name, Array("x".utf8))]
            #expect(Self.failure(try Self.archive(entries))?.code == .notABackup, "\(name)")
        }
    }

    @Test func missingManifestIsRefused() throws {
        let error = Self.failure(try Self.encrypted(try Self.archive(withManifest: false)))
        #expect(error?.code == .notABackup)
        #expect(error?.message.contains("manifest.json") == true)
    }

    @Test func missingSiteDatabaseIsRefused() throws {
        let entries = Self.entries.filter { $0.name != "site.sqlite" }
        let error = Self.failure(try Self.archive(entries))
        #expect(error?.code == .notABackup)
        #expect(error?.message.contains("site.sqlite") == true)
    }

    @Test func membersMustMatchTheManifestList() throws {
        let extra = Self.entries + [("files/extra.bin", [1, 2, 3])]
        #expect(Self.failure(try Self.archive(extra, listing: Self.entries))?.code == .corrupt)
        let fewer = Array(Self.entries.dropLast())
        #expect(Self.failure(try Self.archive(fewer, listing: Self.entries))?.code == .corrupt)
        #expect(Self.failure(try Self.archive(listing: Self.entries + [Self.entries[3]]))?.code == .corrupt)
    }

    @Test func checksumMismatchIsRefused() throws {
        var logo = Self.entries[2].bytes
        logo[35_000] ^= 0x80
        let error = Self.failure(try Self.archive(Self.replacing("files/logo.png", with: logo), listing: Self.entries))
        #expect(error?.code == .corrupt)
        #expect(error?.message.contains("SHA-256") == true)
    }

    @Test func sizeMismatchIsRefused() throws {
        let longer = Self.replacing("files/notes.txt", with: Array("hello!".utf8))
        let error = Self.failure(try Self.archive(longer, listing: Self.entries))
        #expect(error?.code == .corrupt)
        #expect(error?.message.contains("bytes") == true)
    }

    @Test func siteDatabaseMustBeSQLite() throws {
        let entries = Self.replacing("site.sqlite", with: Array("SQLite format 2\u{0}".utf8) + Self.database)
        #expect(Self.failure(try Self.archive(entries))?.code == .corrupt)
        #expect(Self.failure(try Self.archive(Self.replacing("site.sqlite", with: [])))?.code == .corrupt)
    }

    @Test func backupAndManifestMustAgree() throws {
        var other = Self.info
        other.applianceId = "app-9999"
        #expect(Self.failure(try Self.archive(manifestInfo: other))?.code == .corrupt)
        other = Self.info
        other.siteVersion = "7.3"
        #expect(Self.failure(try Self.archive(manifestInfo: other))?.code == .corrupt)
    }

    @Test func unreadableOrNewerManifestIsRefused() throws {
        let garbled = Self.replacing("backup.json", with: Array("{}".utf8))
        #expect(Self.failure(try Self.archive(garbled))?.code == .notABackup)
        var newer = Self.info
        newer.formatVersion = BackupManifest.currentFormatVersion + 1
        let entries = Self.replacing("backup.json", with: try newer.jsonBytes())
        #expect(Self.failure(try Self.archive(entries, manifestInfo: newer))?.code == .unsupported)
    }
}
