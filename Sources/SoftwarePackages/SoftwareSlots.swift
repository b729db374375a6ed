public import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// One set of installed software: what an appliance runs, or ran before its last install (A5, X4).
public struct SoftwareSlot: Codable, Sendable, Equatable {
    /// One installed package of the slot.
    public struct Package: Codable, Sendable, Equatable, Hashable {
        public var name: String
        /// `base`, `site` or `addon`.
        public var kind: String
        public var version: String
        /// File name of its payload among the installed payloads; nil for the factory software, which has none.
        public var payload: String?
        public var installedAt: Date

        public init(name: String, kind: String, version: String, payload: String?, installedAt: Date) {
            self.name = name
            self.kind = kind
            self.version = version
            self.payload = payload
            self.installedAt = installedAt
        }
    }

    /// Where the post-install self-test of the package that made this slot stands.
    public enum SelfTestState: String, Codable, Sendable {
        /// The package had no self-test (or the slot was not made by an install).
        case none
        /// Started and not finished; found at start-up it means applianced stopped while it ran.
        case running
        case passed
        case failed
    }

    /// Letters, digits and '-': it names the slot's directory.
    public var id: String
    public var installedAt: Date
    public var packages: [Package]
    /// The site hash while this slot is installed (a site package changes it).
    public var siteHash: String?
    public var selfTest: SelfTestState
    /// "name version" of the package whose self-test `selfTest` describes.
    public var selfTestPackage: String?
    /// What the failed self-test printed, or why it counts as failed.
    public var selfTestMessage: String?

    public init(
        id: String,
        installedAt: Date,
        packages: [Package],
        siteHash: String?,
        selfTest: SelfTestState = .none,
        selfTestPackage: String? = nil,
        selfTestMessage: String? = nil
    ) {
        self.id = id
        self.installedAt = installedAt
        self.packages = packages.sorted { $0.name < $1.name }
        self.siteHash = siteHash
        self.selfTest = selfTest
        self.selfTestPackage = selfTestPackage
        self.selfTestMessage = selfTestMessage
    }

    /// The version of the package named `name` in this slot.
    public func version(of name: String) -> String? {
        packages.first { $0.name == name }?.version
    }
}

/// The contents of `slots.json`: the software installed now and the one step back a rollback may take.
public struct SoftwareSlots: Codable, Sendable, Equatable {
    public static let currentFormatVersion = 1

    public var formatVersion: Int
    public var current: SoftwareSlot
    public var previous: SoftwareSlot?

    public init(current: SoftwareSlot, previous: SoftwareSlot?) {
        formatVersion = Self.currentFormatVersion
        self.current = current
        self.previous = previous
    }
}

/// Keeps `slots.json` and the previous slot's payloads in a directory of their own (`DATA_DIR/software`).
///
/// Every change is crash-safe on its own: `slots.json` is replaced by a rename, and a slot directory is filled
/// under a scratch name and renamed when complete; a directory `slots.json` does not name is left over from an
/// interrupted change and is removed by `removeSlotDirectories(except:)`. Files are 0600, directories 0700.
public struct SoftwareSlotStore: Sendable {
    public let directory: URL

    public init(directory: URL) {
        self.directory = directory
    }

    public var file: URL { directory.appendingPathComponent("slots.json") }

    /// The directory that holds the payloads of slot `id`.
    public func slotDirectory(_ id: String) -> URL {
        directory.appendingPathComponent("slot-\(id)", isDirectory: true)
    }

    /// The recorded slots; nil while nothing has been installed yet.
    ///
    /// - Throws: `.unsupportedFormat` for a file written by newer software, `.storage` for an unreadable one.
    public func load() throws -> SoftwareSlots? {
        guard let bytes = try readSmallFile(file, limit: 1 << 20, what: "software slot list") else { return nil }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        let slots: SoftwareSlots
        do {
            slots = try decoder.decode(SoftwareSlots.self, from: Data(bytes))
        } catch {
            throw SoftwarePackageError(
                code: .storage,
                message: "\(file.path) cannot be read (\(error)); restore it from a copy, or remove it to forget "
                    + "the previous software slot"
            )
        }
        guard slots.formatVersion <= SoftwareSlots.currentFormatVersion else {
            throw SoftwarePackageError(
                code: .unsupportedFormat,
                message: "\(file.path) was written by newer software (format \(slots.formatVersion), this reads "
                    + "\(SoftwareSlots.currentFormatVersion)); run the software that wrote it"
            )
        }
        for slot in [slots.current] + (slots.previous.map { [$0] } ?? []) where !Self.isValidId(slot.id) {
            throw SoftwarePackageError(
                code: .storage,
                message: "\(file.path) names a slot \"\(slot.id)\" that is not a slot id; restore the file from a copy"
            )
        }
        return slots
    }

    /// Replaces `slots.json` atomically (0600).
    public func save(_ slots: SoftwareSlots) throws {
        try prepare()
        let encoder = canonicalJSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        let writer = try AtomicFileWriter(destination: file, mode: 0o600)
        try writer.write(Array(try encoder.encode(slots)))
        try writer.commit()
    }

    /// Puts the payloads of `slot` from `packages` (the installed payloads) into its own slot directory, as hard
    /// links where the file system allows (a payload is never rewritten in place), copies otherwise.
    public func keep(_ slot: SoftwareSlot, payloadsFrom packages: URL) throws {
        try prepare()
        let fm = FileManager.default
        let final = slotDirectory(slot.id)
        let scratch = directory.appendingPathComponent(".slot-\(slot.id).tmp", isDirectory: true)
        try? fm.removeItem(at: scratch)
        try storage("create \(scratch.path)") {
            try fm.createDirectory(at: scratch, withIntermediateDirectories: false, attributes: Self.directoryMode)
        }
        for name in slot.packages.compactMap(\.payload) {
            try Self.linkOrCopy(packages.appendingPathComponent(name), to: scratch.appendingPathComponent(name))
        }
        try? fm.removeItem(at: final)
        guard rename(scratch.path, final.path) == 0 else {
            throw storageError(
                "move \(scratch.lastPathComponent) to",
                final.path,
                errno: errno,
                advice: "check the disk"
            )
        }
        syncDirectory(directory)
    }

    /// Puts the payloads of `slot` back among the installed payloads in `packages` where they are missing.
    public func restorePayloads(of slot: SoftwareSlot, to packages: URL) throws {
        let fm = FileManager.default
        try storage("create \(packages.path)") {
            try fm.createDirectory(at: packages, withIntermediateDirectories: true, attributes: Self.directoryMode)
        }
        for name in slot.packages.compactMap(\.payload) {
            let destination = packages.appendingPathComponent(name)
            guard !fm.fileExists(atPath: destination.path) else { continue }
            let kept = slotDirectory(slot.id).appendingPathComponent(name)
            guard fm.fileExists(atPath: kept.path) else {
                throw SoftwarePackageError(
                    code: .storage,
                    message: "the payload \(name) of the previous software slot is missing from "
                        + "\(slotDirectory(slot.id).path); install the package again instead of rolling back"
                )
            }
            try Self.linkOrCopy(kept, to: destination)
        }
        syncDirectory(packages)
    }

    /// Removes every slot directory (and scratch left by an interrupted `keep`) whose id is not in `keep`.
    public func removeSlotDirectories(except keep: Set<String>) {
        let fm = FileManager.default
        for name in (try? fm.contentsOfDirectory(atPath: directory.path)) ?? [] {
            let isSlot = name.hasPrefix("slot-") || (name.hasPrefix(".slot-") && name.hasSuffix(".tmp"))
            guard isSlot, !keep.contains(where: { name == "slot-\($0)" }) else { continue }
            try? fm.removeItem(at: directory.appendingPathComponent(name))
        }
    }

    /// True for an id that can name a slot directory: 1 to 64 letters, digits or '-'.
    public static func isValidId(_ id: String) -> Bool {
        (1...64).contains(id.utf8.count)
            && id.utf8.allSatisfy { byte in
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"):
                    true
                default:
                    false
                }
            }
    }

    private static var directoryMode: [FileAttributeKey: Any] { [.posixPermissions: 0o700] }

    private func prepare() throws {
        let fm = FileManager.default
        try storage("create \(directory.path)") {
            try fm.createDirectory(at: directory, withIntermediateDirectories: true, attributes: Self.directoryMode)
        }
        // Also when it existed before with other permissions.
        chmod(directory.path, 0o700)
    }

    private static func linkOrCopy(_ source: URL, to destination: URL) throws {
        if link(source.path, destination.path) == 0 { return }
        let fm = FileManager.default
        try? fm.removeItem(at: destination)
        try storage("copy \(source.path) to \(destination.path)") {
            try fm.copyItem(at: source, to: destination)
        }
        chmod(destination.path, 0o600)
    }

    private func storage(_ action: String, _ body: () throws -> Void) throws {
        try Self.storage(action, body)
    }

    private static func storage(_ action: String, _ body: () throws -> Void) throws {
        do {
            try body()
        } catch {
            throw SoftwarePackageError(
                code: .storage,
                message: "could not \(action) (\(error.localizedDescription)); check free space and permissions"
            )
        }
    }

    private func syncDirectory(_ url: URL) {
        let descriptor = open(url.path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        // A failed directory sync is not worth failing the change for.
        _ = fsync(descriptor)
        close(descriptor)
    }
}
