import ApplianceCrypto
import Foundation

/// What `BackupVerifier.verify` proved about a backup file.
public struct BackupVerification: Sendable, Equatable, Codable {
    /// The backup's `manifest.json`: what made it, when, and the size and SHA-256 of every other member.
    public var manifest: BackupManifest
    /// The size of the file as stored (the encrypted bytes when it is encrypted).
    public var fileBytes: Int64
    /// Lowercase hex SHA-256 of the file as stored, to recognise the same file later without decrypting it.
    public var fileSHA256: String
    /// Whether the file is age-encrypted with a password.
    public var encrypted: Bool
    /// The members of the archive, `manifest.json` included.
    public var memberCount: Int
    /// The size of the site database, `site.sqlite`.
    public var siteDatabaseBytes: Int64
    /// The files from the appliance's file store (`files/…` members).
    public var fileStoreCount: Int

    public init(
        manifest: BackupManifest,
        fileBytes: Int64,
        fileSHA256: String,
        encrypted: Bool,
        memberCount: Int,
        siteDatabaseBytes: Int64,
        fileStoreCount: Int
    ) {
        self.manifest = manifest
        self.fileBytes = fileBytes
        self.fileSHA256 = fileSHA256
        self.encrypted = encrypted
        self.memberCount = memberCount
        self.siteDatabaseBytes = siteDatabaseBytes
        self.fileStoreCount = fileStoreCount
    }
}

/// X1: proves on this machine, without an appliance, that a backup file will restore, before anything destructive
/// is done.
///
/// The file is read once, in 256 KiB pieces, decrypted and unpacked as it streams; every member is hashed and only
/// `backup.json` and `manifest.json` (at most 4 MiB each) are held in memory. It checks what an appliance checks on
/// restore, and more: the archive's structure, every member against `manifest.json`, the site database's header and
/// that `backup.json` and `manifest.json` describe the same appliance and site version.
public enum BackupVerifier {
    /// How much of the file is read at a time.
    public static let pieceSize = 256 * 1024
    /// `backup.json` and `manifest.json` larger than this are refused, so memory stays bounded.
    public static let maximumManifestSize = 4 * 1024 * 1024

    /// Reads the whole backup at `path`, decrypting it with `password` when it is age-encrypted (a plain tar needs
    /// none and ignores it), and returns what it proved. `progress` is called after each piece with the number of
    /// bytes read so far.
    ///
    /// Throws `BackupFormatError`: `.unreadable` (cannot open or read the file), `.passwordRequired`,
    /// `.wrongPassword`, `.truncated` (the file ends early), `.corrupt` (damaged or modified, data after the end, a
    /// member twice, members that differ from `manifest.json`, a site database that is not SQLite, `backup.json`
    /// and `manifest.json` disagreeing), `.notABackup` (empty, `backup.json` not first, unknown members, no
    /// `manifest.json` or `site.sqlite`) and `.unsupported` (a newer format).
    public static func verify(
        file path: String,
        password: String?,
        progress: ((Int64) -> Void)? = nil
    ) throws -> BackupVerification {
        func unreadable(_ error: any Error) -> BackupFormatError {
            BackupFormatError(
                code: .unreadable,
                message: "cannot read the backup \(path) (\(error)); check the path and its permissions"
            )
        }
        let handle: FileHandle
        do {
            handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        } catch {
            throw unreadable(error)
        }
        defer { try? handle.close() }
        var scan = BackupScan(password: password.flatMap { $0.isEmpty ? nil : $0 })
        while true {
            let piece: Data?
            do {
                piece = try handle.read(upToCount: pieceSize)
            } catch {
                throw unreadable(error)
            }
            guard let piece, !piece.isEmpty else {
                break
            }
            try piece.withUnsafeBytes { try scan.feed($0) }
            progress?(scan.fileBytes)
        }
        return try scan.finish()
    }
}

/// One verification's state; the file goes through `feed` once, in order, then `finish`.
private struct BackupScan {
    private static let ageMagic = Array("age-encryption.org/v1\n".utf8)
    private static let sqliteMagic = Array("SQLite format 3\u{0}".utf8)
    private static let blockSize = 512

    private enum Mode {
        case undecided
        case plain
        case encrypted(AgeDecryptor)
    }

    /// The member being read: hashed as it streams, keeping at most its first `keep` bytes.
    private struct Current {
        let name: String
        let keep: Int
        let hasher = SHA256Hasher()
        var size: Int64 = 0
        var head: [UInt8] = []

        mutating func take(_ data: [UInt8]) {
            hasher.update(data)
            size += Int64(data.count)
            if head.count < keep {
                head += data.prefix(keep - head.count)
            }
        }
    }

    let password: String?
    private(set) var fileBytes: Int64 = 0
    private let fileHasher = SHA256Hasher()
    private var mode = Mode.undecided
    private var prefix: [UInt8] = []
    private var tar = TarReader()
    private var tarOffset = 0
    private var ended = false
    private var current: Current?
    private var names: Set<String> = []
    /// Every member but `manifest.json`, in archive order.
    private var members: [BackupManifest.Member] = []
    private var info: BackupManifest?
    private var manifest: BackupManifest?
    private var fileStoreCount = 0

    init(password: String?) {
        self.password = password
    }

    mutating func feed(_ bytes: UnsafeRawBufferPointer) throws {
        fileHasher.update(bytes)
        fileBytes += Int64(bytes.count)
        switch mode {
        case .plain:
            try feedTar(bytes)
        case .encrypted(let decryptor):
            try decryptor.feed(bytes).withUnsafeBytes { try feedTar($0) }
        case .undecided:
            prefix += bytes
            if prefix.count >= Self.ageMagic.count {
                try decide()
            }
        }
    }

    mutating func finish() throws -> BackupVerification {
        guard fileBytes > 0 else {
            throw notABackup("the file is empty")
        }
        if case .undecided = mode {
            try decide()
        }
        if case .encrypted(let decryptor) = mode {
            try decryptor.finish().withUnsafeBytes { try feedTar($0) }
        }
        try tar.finish()
        guard let info else {
            throw notABackup("it holds no backup.json")
        }
        guard let manifest else {
            throw BackupFormatError(
                code: .notABackup,
                message: "the backup has no manifest.json, so its contents cannot be checked; make a new backup"
            )
        }
        guard members.contains(where: { $0.name == "site.sqlite" }) else {
            throw notABackup("it holds no site database (site.sqlite)")
        }
        try check(members, against: manifest)
        for (field, backup, listed) in [
            ("appliance", info.applianceId, manifest.applianceId),
            ("site version", info.siteVersion, manifest.siteVersion),
        ] where backup != listed {
            throw corrupt("its backup.json names \(field) \"\(backup)\" but its manifest.json \"\(listed)\"")
        }
        return BackupVerification(
            manifest: manifest,
            fileBytes: fileBytes,
            fileSHA256: fileHasher.finalize().hexString,
            encrypted: isEncrypted,
            memberCount: names.count,
            siteDatabaseBytes: members.first { $0.name == "site.sqlite" }?.size ?? 0,
            fileStoreCount: fileStoreCount
        )
    }

    private var isEncrypted: Bool {
        if case .encrypted = mode {
            return true
        }
        return false
    }

    /// The first bytes tell an age file from a plain tar.
    private mutating func decide() throws {
        let start = prefix
        prefix = []
        guard start.starts(with: Self.ageMagic) else {
            mode = .plain
            return try start.withUnsafeBytes { try feedTar($0) }
        }
        guard let password else {
            throw BackupFormatError(
                code: .passwordRequired,
                message: "the backup is encrypted; give the backup password it was made with"
            )
        }
        let decryptor = AgeDecryptor(passphrase: password)
        mode = .encrypted(decryptor)
        try decryptor.feed(start).withUnsafeBytes { try feedTar($0) }
    }

    /// Feeds the tar reader, which ignores whatever follows the end-of-archive marker. The piece holding the marker
    /// is fed again, block by block from the reader's earlier state, to find where the archive ends: only zero
    /// padding may follow it.
    private mutating func feedTar(_ bytes: UnsafeRawBufferPointer) throws {
        var position = 0
        if !ended {
            let before = tar
            let events = try tar.feed(bytes)
            guard events.last == .archiveEnd else {
                tarOffset += bytes.count
                return try handle(events)
            }
            tar = before
            while !ended, position < bytes.count {
                let step = min(bytes.count - position, Self.blockSize - tarOffset % Self.blockSize)
                try handle(tar.feed(UnsafeRawBufferPointer(rebasing: bytes[position..<position + step])))
                position += step
                tarOffset += step
            }
        }
        guard bytes[position...].allSatisfy({ $0 == 0 }) else {
            throw corrupt("it has data after the end of its archive")
        }
    }

    private mutating func handle(_ events: [TarEvent]) throws {
        for event in events {
            switch event {
            case .entryStart(let name, let size):
                try begin(name, size: size)
            case .entryData(let data):
                current?.take(data)
            case .entryEnd:
                try end()
            case .archiveEnd:
                ended = true
            }
        }
    }

    private mutating func begin(_ name: String, size: Int64) throws {
        guard names.insert(name).inserted else {
            throw corrupt("it holds \(name) twice")
        }
        guard manifest == nil else {
            throw corrupt("\(name) follows manifest.json, which must be the last member")
        }
        var keep = 0
        switch name {
        case "backup.json", "manifest.json":
            guard size <= Int64(BackupVerifier.maximumManifestSize) else {
                throw notABackup("its \(name) is \(size) bytes, far larger than a backup's")
            }
            keep = Int(size)
        case "site.sqlite":
            keep = Self.sqliteMagic.count
        default:
            guard name.hasPrefix("files/"), Self.isStoredFileName(name.dropFirst("files/".count)) else {
                throw notABackup("it holds \"\(name)\", which is not a member of an appliance backup")
            }
            fileStoreCount += 1
        }
        guard info != nil || name == "backup.json" else {
            throw notABackup("it starts with \(name) instead of backup.json")
        }
        current = Current(name: name, keep: keep)
    }

    private mutating func end() throws {
        guard let member = current else {
            return
        }
        current = nil
        switch member.name {
        case "backup.json":
            info = try decode(member.head, name: member.name)
        case "manifest.json":
            manifest = try decode(member.head, name: member.name)
            return
        case "site.sqlite":
            guard member.head == Self.sqliteMagic else {
                throw corrupt("its site.sqlite is not an SQLite database")
            }
        default:
            break
        }
        members.append(.init(name: member.name, size: member.size, sha256: member.hasher.finalize().hexString))
    }

    /// The archive must hold exactly the members `manifest.json` lists, each with the listed size and SHA-256.
    private func check(_ members: [BackupManifest.Member], against manifest: BackupManifest) throws {
        let listed = Dictionary(manifest.members.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        guard listed.count == manifest.members.count else {
            throw corrupt("its manifest.json lists a member twice")
        }
        let held = Set(members.map(\.name))
        if let absent = manifest.members.first(where: { !held.contains($0.name) }) {
            throw corrupt("its manifest.json lists \(absent.name), which the archive does not hold")
        }
        for member in members {
            guard let expected = listed[member.name] else {
                throw corrupt("it holds \(member.name), which its manifest.json does not list")
            }
            guard member.size == expected.size else {
                throw corrupt("\(member.name) is \(member.size) bytes but manifest.json says \(expected.size)")
            }
            guard member.sha256 == expected.sha256.lowercased() else {
                throw corrupt("\(member.name) does not match its SHA-256 in manifest.json")
            }
        }
    }

    private func decode(_ bytes: [UInt8], name: String) throws -> BackupManifest {
        do {
            return try BackupManifest.decode(jsonBytes: bytes)
        } catch let error as BackupFormatError where error.code == .notABackup && name != "manifest.json" {
            throw notABackup("its \(name) is not a backup description")
        }
    }

    /// The appliance's file store names: 1 to 128 ASCII letters, digits, ".", "_" or "-", not starting with ".".
    private static func isStoredFileName(_ name: Substring) -> Bool {
        (1...128).contains(name.count) && !name.hasPrefix(".")
            && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }
    }

    private func notABackup(_ detail: String) -> BackupFormatError {
        BackupFormatError(
            code: .notABackup,
            message: "this is not an appliance backup: \(detail); choose the file the appliance's backup made"
        )
    }

    private func corrupt(_ detail: String) -> BackupFormatError {
        BackupFormatError(
            code: .corrupt,
            message: "the backup is damaged: \(detail); it cannot be restored, use another copy or make a new backup"
        )
    }
}
