import ApplianceAPI
import ApplianceCrypto
import ApplianceStore
import BackupFormat
import Foundation
import Hummingbird
import Logging
import NIOCore

/// A6: backup and restore.
///
/// A backup is a tar archive — `backup.json` (versions and counts, first, so a restore can refuse a newer
/// backup before reading the rest), `site.sqlite`, `files/…`, and `manifest.json` (last, with the SHA-256 of
/// every member) — wrapped in the age format when a password is given. Both directions stream in
/// 256 KiB pieces, so memory stays bounded whatever the size.
extension Appliance {
    static let backupChunk = 256 * 1024

    /// Prepares a backup and returns its file name and a body that streams it.
    func backup(_ request: BackupRequest) throws -> (filename: String, body: ResponseBody) {
        let password = request.password.flatMap { $0.isEmpty ? nil : $0 }
        let software = try box.installedSoftware()
        let hostname = try box.networkSettings().hostname
        let selection = try site.backupFileSelection()
        let needs = backupSnapshotNeeds(includeHistory: request.includeHistory)
        try requireRoom(needs, for: "the backup's database snapshot")
        if password != nil {
            let needs = Self.scryptMemory(workFactor: configuration.backupWorkFactor)
            try requireMemory(needs, for: "a password-protected backup (its scrypt key derivation)")
        }
        let snapshot = directory.scratchFile("backup-snapshot")
        let counts: [String: Int]
        do {
            counts = try site.snapshot(
                to: snapshot,
                includeHistory: request.includeHistory,
                keepFiles: selection.map(\.name)
            )
        } catch {
            try? FileManager.default.removeItem(at: snapshot)
            throw error
        }
        let info = BackupManifest(
            formatVersion: 1,
            createdAt: Date(),
            applianceId: applianceId,
            hostname: hostname,
            baseVersion: software.baseVersion,
            siteVersion: software.siteVersion,
            includesHistory: request.includeHistory,
            encrypted: password != nil,
            counts: counts,
            members: []
        )
        let files = directory.files
        let workFactor = configuration.backupWorkFactor
        let logger = self.logger
        let stamp = Int(info.createdAt.timeIntervalSince1970)
        let filename = "backup-\(hostname)-\(stamp).\(password == nil ? "tar" : "tar.age")"
        let body = ResponseBody { writer in
            defer { try? FileManager.default.removeItem(at: snapshot) }
            var out = BackupOutput(
                encryptor: try password.map { try AgeEncryptor(passphrase: $0, workFactor: workFactor) }
            )
            let infoBytes = Array(try Self.manifestEncoder().encode(info))
            try await out.member(name: "backup.json", bytes: infoBytes, &writer)
            try await out.member(name: "site.sqlite", file: snapshot, &writer)
            for file in selection {
                try await out.member(name: "files/\(file.name)", file: files.appendingPathComponent(file.name), &writer)
            }
            var manifest = info
            manifest.members = out.members
            try await out.member(
                name: "manifest.json",
                bytes: Array(try Self.manifestEncoder().encode(manifest)),
                &writer
            )
            try await out.finish(&writer)
            logger.info(
                "Backup written",
                metadata: ["backup.bytes": "\(out.bytesOut)", "backup.members": "\(out.members.count)"]
            )
        }
        return (filename, body)
    }

    static func manifestEncoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }

    static func manifestDecoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }

    /// Restores a backup streamed in `body`: stages it beside the live site, checks every member against the
    /// manifest and the versions against what is installed, then switches atomically. Any refusal leaves the
    /// appliance as it was. With the upload's `length` known, the room for staging it is checked first.
    func restore(body: RequestBody, length: Int64?, password: String?) async throws -> RestoreResponse {
        try beginExclusive("restore")
        defer { endExclusive() }
        if let length { try requireRoom(length, for: "staging the restore") }
        return try await reportingDiskFull("staging the restore", needs: length) {
            try await stageAndCommit(body: body, password: password)
        }
    }

    private func stageAndCommit(body: RequestBody, password: String?) async throws -> RestoreResponse {
        let fm = FileManager.default
        if fm.fileExists(atPath: directory.restoreStaging.path) {
            try fm.removeItem(at: directory.restoreStaging)
        }
        try fm.createDirectory(
            at: directory.restoreStaging.appendingPathComponent("files"),
            withIntermediateDirectories: true
        )
        do {
            var receiver = RestoreReceiver(
                staging: directory.restoreStaging,
                password: password.flatMap { $0.isEmpty ? nil : $0 },
                installedSiteVersion: try box.installedSoftware().siteVersion
            )
            for try await buffer in body {
                try buffer.withUnsafeReadableBytes { try receiver.feed($0) }
            }
            let manifest = try receiver.finish()
            var counts = try SiteDatabase.prepareStaged(
                databaseAt: directory.restoreStaging.appendingPathComponent("site.sqlite")
            )
            guard counts["files"] == receiver.fileCount else {
                throw ApplianceServerError.badRequest(
                    "the backup's file store index names \(counts["files"] ?? 0) files but it carries "
                        + "\(receiver.fileCount); the backup is damaged, make a new one"
                )
            }
            try site.commitRestore()
            counts["recordingsKept"] = try box.recordings().count
            logger.notice(
                "Site restored",
                metadata: [
                    "restore.source": "\(manifest.applianceId)", "restore.siteVersion": "\(manifest.siteVersion)",
                ]
            )
            return RestoreResponse(
                siteVersion: manifest.siteVersion,
                createdAt: manifest.createdAt,
                sourceApplianceId: manifest.applianceId,
                counts: counts
            )
        } catch {
            try? fm.removeItem(at: directory.restoreStaging)
            if let error = error as? BackupFormatError { throw ApplianceServerError(error) }
            throw error
        }
    }
}

/// The outgoing side of a backup: tar framing, per-member SHA-256, optional age encryption, buffered writes.
struct BackupOutput {
    let encryptor: AgeEncryptor?
    var members: [BackupManifest.Member] = []
    var pending: [UInt8] = []
    var bytesOut: Int64 = 0
    private var headerWritten = false

    init(encryptor: AgeEncryptor?) {
        self.encryptor = encryptor
        pending.reserveCapacity(Appliance.backupChunk * 2)
    }

    mutating func member(name: String, bytes: [UInt8], _ writer: inout any ResponseBodyWriter) async throws {
        try await emit(try TarWriter.header(name: name, size: Int64(bytes.count), modificationTime: Date()), &writer)
        try await emit(bytes, &writer)
        try await emit(TarWriter.padding(forSize: Int64(bytes.count)), &writer)
        members.append(.init(name: name, size: Int64(bytes.count), sha256: SHA256Hasher.hash(bytes).hexString))
    }

    mutating func member(name: String, file: URL, _ writer: inout any ResponseBodyWriter) async throws {
        let handle = try FileHandle(forReadingFrom: file)
        defer { try? handle.close() }
        let size = Int64(try handle.seekToEnd())
        try handle.seek(toOffset: 0)
        try await emit(try TarWriter.header(name: name, size: size, modificationTime: Date()), &writer)
        let hasher = SHA256Hasher()
        var remaining = size
        while remaining > 0 {
            guard let data = try handle.read(upToCount: Int(min(Int64(Appliance.backupChunk), remaining))),
                !data.isEmpty
            else {
                throw ApplianceServerError(.internalServerError, "backup", "\(name) shrank while being backed up")
            }
            let bytes = [UInt8](data)
            hasher.update(bytes)
            try await emit(bytes, &writer)
            remaining -= Int64(bytes.count)
        }
        try await emit(TarWriter.padding(forSize: size), &writer)
        members.append(.init(name: name, size: size, sha256: hasher.finalize().hexString))
    }

    mutating func emit(_ bytes: [UInt8], _ writer: inout any ResponseBodyWriter) async throws {
        if !headerWritten {
            headerWritten = true
            if let header = encryptor?.header() { pending += header }
        }
        if let encryptor {
            pending += encryptor.encrypt(bytes)
        } else {
            pending += bytes
        }
        if pending.count >= Appliance.backupChunk { try await flush(&writer) }
    }

    mutating func flush(_ writer: inout any ResponseBodyWriter) async throws {
        guard !pending.isEmpty else { return }
        bytesOut += Int64(pending.count)
        try await writer.write(ByteBuffer(bytes: pending))
        pending.removeAll(keepingCapacity: true)
    }

    mutating func finish(_ writer: inout any ResponseBodyWriter) async throws {
        try await emit(TarWriter.end(), &writer)
        if let encryptor { pending += encryptor.finish() }
        try await flush(&writer)
        try await writer.finish(nil)
    }
}

/// The incoming side of a restore: detects age or plain tar, decrypts, unpacks into staging while hashing,
/// and checks versions (early, from `backup.json`) and every member (at the end, from `manifest.json`).
struct RestoreReceiver {
    let staging: URL
    let password: String?
    let installedSiteVersion: String
    private var decryptor: AgeDecryptor?  // a class: its state advances through feed()
    private var mode: Mode = .undecided
    private var prefix: [UInt8] = []
    private var tar = TarReader()
    private var current: Current?
    private var received: [String: BackupManifest.Member] = [:]
    private var info: BackupManifest?
    private var manifest: BackupManifest?
    private var archiveEnded = false
    private(set) var fileCount = 0

    private enum Mode { case undecided, plain, encrypted }
    private static let ageMagic = Array("age-encryption.org/v1\n".utf8)

    private struct Current {
        var name: String
        var size: Int64
        var writer: FileWriter?
        var memory: [UInt8]
        var hasher: SHA256Hasher
        var written: Int64
    }

    init(staging: URL, password: String?, installedSiteVersion: String) {
        self.staging = staging
        self.password = password
        self.installedSiteVersion = installedSiteVersion
    }

    mutating func feed(_ bytes: UnsafeRawBufferPointer) throws {
        switch mode {
        case .plain: try feedTar(Array(bytes))
        case .encrypted: try feedTar(try decryptor!.feed(Array(bytes)))
        case .undecided:
            prefix += bytes
            if prefix.count >= Self.ageMagic.count { try decide() }
        }
    }

    private mutating func decide() throws {
        let input = prefix
        prefix = []
        if Array(input.prefix(Self.ageMagic.count)) == Self.ageMagic {
            guard let password else {
                throw ApplianceServerError(
                    .badRequest,
                    "password_required",
                    "this backup is encrypted; give the password it was made with"
                )
            }
            mode = .encrypted
            decryptor = AgeDecryptor(passphrase: password)
            try feedTar(try decryptor!.feed(input))
        } else {
            mode = .plain
            try feedTar(input)
        }
    }

    private mutating func feedTar(_ bytes: [UInt8]) throws {
        guard !bytes.isEmpty else { return }
        if archiveEnded {
            // Zero padding after the end marker is normal for tar; anything else is not.
            guard bytes.allSatisfy({ $0 == 0 }) else {
                throw ApplianceServerError(.badRequest, "backup_corrupt", "the backup has data after its end")
            }
            return
        }
        for event in try tar.feed(bytes) {
            switch event {
            case .entryStart(let name, let size): try begin(name: name, size: size)
            case .entryData(let data): try write(data)
            case .entryEnd: try end()
            case .archiveEnd: archiveEnded = true
            }
        }
    }

    private mutating func begin(name: String, size: Int64) throws {
        guard received[name] == nil else { throw corrupt("the backup holds \(name) twice") }
        var writer: FileWriter?
        switch name {
        case "backup.json", "manifest.json":
            guard size <= 4 * 1024 * 1024 else { throw corrupt("\(name) is implausibly large") }
        case "site.sqlite":
            writer = try FileWriter(scratch: staging.appendingPathComponent("site.sqlite"))
        default:
            guard name.hasPrefix("files/") else { throw corrupt("the backup holds an unknown member \(name)") }
            let fileName = String(name.dropFirst("files/".count))
            do { try StoredFileName.validate(fileName) } catch { throw corrupt("bad file name in backup: \(name)") }
            writer = try FileWriter(scratch: staging.appendingPathComponent("files").appendingPathComponent(fileName))
            fileCount += 1
        }
        if info == nil && name != "backup.json" {
            throw corrupt("the backup does not start with backup.json")
        }
        current = Current(name: name, size: size, writer: writer, memory: [], hasher: SHA256Hasher(), written: 0)
    }

    private mutating func write(_ data: [UInt8]) throws {
        guard current != nil else { throw corrupt("data outside a member") }
        current!.hasher.update(data)
        current!.written += Int64(data.count)
        if let writer = current!.writer {
            try writer.write(data)
        } else {
            current!.memory += data
        }
    }

    private mutating func end() throws {
        guard var member = current else { throw corrupt("member end without a start") }
        current = nil
        if let writer = member.writer { _ = try writer.finish() }
        let sha256 = member.hasher.finalize().hexString
        switch member.name {
        case "backup.json":
            let parsed = try decodeManifest(member.memory, name: "backup.json")
            try checkVersion(parsed)
            info = parsed
        case "manifest.json":
            manifest = try decodeManifest(member.memory, name: "manifest.json")
            member.memory = []
            return
        default: break
        }
        received[member.name] = .init(name: member.name, size: member.written, sha256: sha256)
    }

    private func decodeManifest(_ bytes: [UInt8], name: String) throws -> BackupManifest {
        do {
            return try Appliance.manifestDecoder().decode(BackupManifest.self, from: Data(bytes))
        } catch {
            throw corrupt("\(name) in the backup cannot be read (\(error))")
        }
    }

    private func checkVersion(_ info: BackupManifest) throws {
        guard info.formatVersion <= 1 else {
            throw ApplianceServerError(
                .badRequest,
                "backup_unsupported",
                "the backup uses format \(info.formatVersion), newer than this appliance reads; update the appliance"
            )
        }
        let backup = try SoftwareVersion(info.siteVersion)
        let installed = try SoftwareVersion(installedSiteVersion)
        if backup > installed {
            throw ApplianceServerError(
                .conflict,
                "backup_newer",
                "the backup was made by site version \(info.siteVersion), newer than the installed "
                    + "\(installedSiteVersion); install site version \(info.siteVersion) first"
            )
        }
    }

    /// Ends the stream: it must be complete, and every member must match the manifest.
    mutating func finish() throws -> BackupManifest {
        if mode == .undecided { try decide() }
        if mode == .encrypted { try feedTar(try decryptor!.finish()) }
        try tar.finish()
        guard archiveEnded, current == nil else {
            throw ApplianceServerError(.badRequest, "backup_truncated", "the backup file is truncated; make a new one")
        }
        guard let manifest, info != nil else { throw corrupt("the backup has no manifest") }
        let listed = Dictionary(manifest.members.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        guard Set(listed.keys) == Set(received.keys) else {
            throw corrupt("the backup's members do not match its manifest")
        }
        for (name, member) in received where listed[name] != member {
            throw corrupt("\(name) does not match its checksum in the manifest")
        }
        guard received["site.sqlite"] != nil else { throw corrupt("the backup holds no site database") }
        return manifest
    }

    private func corrupt(_ detail: String) -> ApplianceServerError {
        ApplianceServerError(.badRequest, "backup_corrupt", "the backup is damaged: \(detail); use an intact copy")
    }
}
