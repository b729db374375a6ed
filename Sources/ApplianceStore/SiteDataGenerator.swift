import ApplianceAPI
import ApplianceCrypto
import Foundation

/// Fills a box with realistic site data of a given total size, for demos, tests and benchmarks.
///
/// The split follows what a busy site holds: about 15 % logged history, 35 % file store (a few dozen small
/// files that a backup carries and larger ones it leaves out) and 50 % session recordings. Contents are
/// pseudo-random from `seed`, so they do not compress and two runs with one seed produce the same data.
public struct SiteDataGenerator {
    public var totalBytes: Int64
    public var seed: UInt64

    public init(totalBytes: Int64, seed: UInt64) {
        self.totalBytes = totalBytes
        self.seed = seed
    }

    public struct Result: Sendable {
        public var historyRows: Int
        public var files: Int
        public var recordings: Int
        public var bytes: Int64
    }

    /// Generates the data; a run that fails removes what it wrote (files, recordings, rows, settings) before
    /// the error is thrown.
    ///
    /// - Throws: The failure, as `StoreError.diskFull` when the disk filled up; a `.storage` error when the
    ///   rollback could not finish either.
    public func run(directory: DataDirectory, site: SiteDatabase, box: BoxDatabase) throws -> Result {
        var undo = try GenerationUndo(site: site, box: box)
        do {
            return try generate(directory: directory, site: site, box: box, undo: &undo)
        } catch {
            let failures = undo.rollback(directory: directory, site: site, box: box)
            let what = "generating \(DiskSpace.format(totalBytes)) of site data"
            guard failures.isEmpty else {
                throw StoreError(
                    .storage,
                    "\(what) failed (\(error)) and undoing it failed too (\(failures.joined(separator: "; "))); "
                        + "check the data directory's file system"
                )
            }
            if DiskSpace.isOutOfSpace(error) {
                throw StoreError.diskFull(what, at: directory.root, needs: totalBytes)
            }
            throw error
        }
    }

    private func generate(
        directory: DataDirectory,
        site: SiteDatabase,
        box: BoxDatabase,
        undo: inout GenerationUndo
    ) throws -> Result {
        var random = SplitMix64(seed: seed)
        let tag = String(seed, radix: 36)

        var settings: [String: String] = [:]
        for (index, key) in Self.settingKeys.enumerated() {
            settings[key] = "\(key.split(separator: ".").last ?? "value")-\(tag)-\(index)-\(random.next() % 10_000)"
        }
        try site.updateSettings(settings)

        let existing = Set(try site.users().map(\.username))
        for index in 0..<24 {
            let name = "\(Self.firstNames[index % Self.firstNames.count]).\(tag)\(index)"
            guard !existing.contains(name) else { continue }
            undo.users.append(name)
            _ = try site.createUser(
                UserInput(
                    username: name,
                    displayName: "\(Self.firstNames[index % Self.firstNames.count].capitalized) \(index)",
                    email: "\(name)@example.test",
                    password: "Generated-\(random.next() % 1_000_000)-Pw"
                )
            )
        }

        // History: rows of about 400 bytes.
        let historyBudget = totalBytes * 15 / 100
        let rowCount = Int(max(10, historyBudget / 400))
        var rows: [HistoryRow] = []
        rows.reserveCapacity(min(rowCount, 10_000))
        let start = Date(timeIntervalSince1970: 1_700_000_000)
        var inserted = 0
        while inserted < rowCount {
            rows.removeAll(keepingCapacity: true)
            for _ in 0..<min(10_000, rowCount - inserted) {
                let began = start.addingTimeInterval(Double(random.next() % 31_536_000))
                let user = Self.firstNames[Int(random.next() % UInt64(Self.firstNames.count))]
                let host = "srv-\(random.next() % 500).corp.example.test"
                rows.append(
                    HistoryRow(
                        sessionId: String(random.next(), radix: 16) + String(random.next(), radix: 16),
                        username: user,
                        target: host,
                        proto: Self.protocols[Int(random.next() % UInt64(Self.protocols.count))],
                        startedAt: began,
                        endedAt: began.addingTimeInterval(Double(60 + random.next() % 7200)),
                        bytesTransferred: Int64(random.next() % 50_000_000),
                        summary: "Session of \(user) on \(host): " + Self.sentence(&random, words: 40)
                    )
                )
            }
            try site.appendHistoryBulk(rows)
            inserted += rows.count
        }

        // File store: 60 small files, then large ones.
        var fileBudget = totalBytes * 35 / 100
        var fileCount = 0
        var written: Int64 = Int64(rowCount) * 400
        while fileBudget > 0 {
            let size: Int64 =
                fileCount < 60
                ? Int64(2_048 + random.next() % 190_000)
                : Int64(1_048_576 + random.next() % 15_728_640)
            let chunk = min(size, fileBudget)
            undo.willWriteFile("file-\(tag)-\(fileCount).bin")
            let info = try writeRandomFile(
                size: chunk,
                to: directory.files.appendingPathComponent("file-\(tag)-\(fileCount).bin"),
                directory: directory,
                random: &random
            )
            try site.saveFile(info)
            fileBudget -= chunk
            written += chunk
            fileCount += 1
        }

        var recordingBudget = totalBytes - totalBytes * 15 / 100 - totalBytes * 35 / 100
        var recordingCount = 0
        while recordingBudget > 0 {
            let size = min(Int64(8_388_608 + random.next() % 58_720_256), recordingBudget)
            undo.willWriteRecording("recording-\(tag)-\(recordingCount).rec")
            let info = try writeRandomFile(
                size: size,
                to: directory.recordings.appendingPathComponent("recording-\(tag)-\(recordingCount).rec"),
                directory: directory,
                random: &random
            )
            try box.saveRecording(info)
            recordingBudget -= size
            written += size
            recordingCount += 1
        }
        return Result(historyRows: rowCount, files: fileCount, recordings: recordingCount, bytes: written)
    }

    private func writeRandomFile(
        size: Int64,
        to destination: URL,
        directory: DataDirectory,
        random: inout SplitMix64
    ) throws -> StoredFileInfo {
        let writer = try FileWriter(scratch: directory.scratchFile("generate"))
        var buffer = [UInt64](repeating: 0, count: 32_768)
        var remaining = size
        do {
            while remaining > 0 {
                for index in buffer.indices { buffer[index] = random.next() }
                let count = Int(min(Int64(buffer.count * 8), remaining))
                try buffer.withUnsafeBytes { try writer.write(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
                remaining -= Int64(count)
            }
            let (written, sha256) = try writer.finish()
            try writer.commit(to: destination)
            return StoredFileInfo(
                name: destination.lastPathComponent,
                size: written,
                sha256: sha256,
                modifiedAt: Date()
            )
        } catch {
            writer.discard()
            throw error
        }
    }

    private static func sentence(_ random: inout SplitMix64, words: Int) -> String {
        (0..<words).map { _ in vocabulary[Int(random.next() % UInt64(vocabulary.count))] }.joined(separator: " ")
    }

    static let settingKeys = [
        "site.name", "site.company", "site.timezone", "site.language", "smtp.host", "smtp.port", "smtp.sender",
        "smtp.tls", "ldap.url", "ldap.baseDN", "ldap.bindUser", "ldap.syncInterval", "session.idleTimeout",
        "session.recording", "session.maxConcurrent", "clients.maxConcurrentUpdates", "clients.autoUpdate",
        "syslog.host", "syslog.port", "syslog.format", "branding.color", "branding.logo", "api.enabled",
        "api.rateLimit", "jumpoint.default", "jumpoint.clustered", "vault.rotation", "vault.discovery",
        "notifications.email", "notifications.slack", "retention.history.days", "retention.recordings.days",
    ]
    static let firstNames = [
        "anna", "ben", "clara", "david", "eva", "felix", "greta", "hans", "ida", "jonas", "karin", "lukas",
        "mia", "noah", "olga", "paul",
    ]
    static let protocols = ["ssh", "rdp", "vnc", "telnet", "https", "shell-jump"]
    static let vocabulary = [
        "restart", "service", "patch", "kernel", "update", "config", "firewall", "rule", "database", "backup",
        "certificate", "rotate", "password", "vault", "ticket", "incident", "escalation", "review", "audit",
        "deploy", "rollback", "monitor", "alert", "disk", "memory", "network", "switch", "router", "printer",
    ]
}

/// A small, fast, seedable generator (Steele, Lea, Flood: SplitMix64).
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
