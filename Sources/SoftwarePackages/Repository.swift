public import ApplianceCrypto
import BackupFormat
public import Foundation

/// The `index.json` of a package repository: a directory holding package files side by side with this index.
///
/// The manifests in the index are copies for planning (`UpdatePlanner`); they are not signed on their own. Each
/// package file is verified with `PackageVerifier` before it is installed.
public struct RepositoryIndex: Codable, Sendable, Equatable {
    /// The index format this code writes; readers refuse newer versions.
    public static let currentFormatVersion = 1
    /// The index's file name inside the repository directory.
    public static let fileName = "index.json"

    /// One package file in the repository.
    public struct Entry: Codable, Sendable, Equatable {
        /// The file's name inside the repository directory (a single path component, `<name>_<version>.pkg`).
        public var file: String
        public var manifest: PackageManifest
        /// Lowercase hex SHA-256 of the whole package file.
        public var fileSHA256: String
        public var fileSize: Int64

        public init(file: String, manifest: PackageManifest, fileSHA256: String, fileSize: Int64) {
            self.file = file
            self.manifest = manifest
            self.fileSHA256 = fileSHA256
            self.fileSize = fileSize
        }
    }

    public var formatVersion: Int
    /// Sorted by package name, then version.
    public var packages: [Entry]

    public init(formatVersion: Int = RepositoryIndex.currentFormatVersion, packages: [Entry] = []) {
        self.formatVersion = formatVersion
        self.packages = packages
    }

    /// The manifests of every package, for `UpdatePlanner.plan`.
    public var manifests: [PackageManifest] {
        packages.map(\.manifest)
    }

    /// The entry for the package with `manifest`'s name and version, if the repository has it.
    public func entry(for manifest: PackageManifest) -> Entry? {
        entry(name: manifest.name, version: manifest.version)
    }

    /// The entry for package `name` at `version` ("2.0" and "2.0.0" are the same version).
    public func entry(name: String, version: String) -> Entry? {
        guard let wanted = try? SoftwareVersion(version) else {
            return nil
        }
        return packages.first { $0.manifest.name == name && (try? SoftwareVersion($0.manifest.version)) == wanted }
    }

    /// The largest index.json read (about 10,000 packages with short EULAs).
    static let maximumSize = 256 << 20
}

/// Creates and updates package repositories.
public enum RepositoryBuilder {
    /// Adds the package file at `package` to the repository in `repositoryDirectory` (created if missing): copies it
    /// in as `<name>_<version>.pkg`, checks the copy, then rewrites `index.json` atomically. Concurrent adds to the
    /// same directory are serialised with a lock file (`.index.lock`).
    ///
    /// With `trustedKeys` the package must pass `PackageVerifier.verify`; without, only its structure and payload
    /// hash are checked (appliances still verify the signature before installing). Adding the same file again is a
    /// no-op; a different file for a name and version the repository already has is refused with `.conflict`.
    @discardableResult
    public static func add(
        package: URL,
        to repositoryDirectory: URL,
        trustedKeys: [Ed25519PublicKey]? = nil
    ) throws -> RepositoryIndex.Entry {
        try createDirectory(repositoryDirectory, what: "the repository directory")
        let lock = repositoryDirectory.appendingPathComponent(".index.lock")
        return try withExclusiveLock(lock) {
            var index = try readIndex(directory: repositoryDirectory) ?? RepositoryIndex()

            // Copy first and check the copy, so what gets indexed is exactly what was verified.
            let input = try InputFile(package)
            let scratchName = ".incoming-\(UUID().uuidString).pkg"
            let writer = try AtomicFileWriter(destination: repositoryDirectory.appendingPathComponent(scratchName))
            let hasher = SHA256Hasher()
            let size = try input.forEachChunk { piece in
                hasher.update(piece)
                try writer.write(piece)
            }
            try writer.finishWriting()
            let fileSHA256 = hasher.finalize().hexString
            let manifest: PackageManifest
            do {
                manifest = try PackageVerifier.scan(file: writer.scratch, trustedKeys: trustedKeys).manifest
            } catch let error as SoftwarePackageError {
                // Name the operator's file, not the scratch copy.
                throw SoftwarePackageError(
                    code: error.code,
                    message: error.message.replacingOccurrences(of: writer.scratch.path, with: package.path)
                )
            }

            if let existing = index.entry(for: manifest) {
                guard existing.fileSHA256 == fileSHA256 else {
                    throw SoftwarePackageError(
                        code: .conflict,
                        message: "the repository already has \(manifest.name) \(existing.manifest.version) "
                            + "(\(existing.file)) with different contents; give the new package a higher version"
                    )
                }
                return existing
            }

            let entry = RepositoryIndex.Entry(
                file: manifest.fileName,
                manifest: manifest,
                fileSHA256: fileSHA256,
                fileSize: size
            )
            try writer.commit(renamingTo: repositoryDirectory.appendingPathComponent(entry.file))
            index.packages.removeAll { $0.file == entry.file }
            index.packages.append(entry)
            index.packages.sort(by: entryOrder)
            let bytes: [UInt8]
            do {
                bytes = Array(try canonicalJSONEncoder().encode(index))
            } catch {
                throw SoftwarePackageError(code: .storage, message: "could not encode the repository index (\(error))")
            }
            try AtomicFileWriter.write(bytes, to: repositoryDirectory.appendingPathComponent(RepositoryIndex.fileName))
            return entry
        }
    }

    /// Reads and checks the `index.json` of the repository in `directory`. Throws `.invalidRepository` when it is
    /// missing or malformed (including file names that would leave the directory) and `.unsupportedFormat` for a
    /// newer index format.
    public static func loadIndex(directory: URL) throws -> RepositoryIndex {
        guard let index = try readIndex(directory: directory) else {
            throw SoftwarePackageError(
                code: .invalidRepository,
                message: "\(directory.path) has no \(RepositoryIndex.fileName), so it is not a package repository; "
                    + "check the path, or create the repository by adding a package to it"
            )
        }
        return index
    }

    private static func readIndex(directory: URL) throws -> RepositoryIndex? {
        let url = directory.appendingPathComponent(RepositoryIndex.fileName)
        guard let bytes = try readSmallFile(url, limit: RepositoryIndex.maximumSize, what: "repository index") else {
            return nil
        }
        return try decodeIndex(bytes, location: url.path)
    }

    /// Decodes and checks index bytes read from `location` (a path or URL, for messages): the format version, every
    /// manifest, and file names that stay inside the repository.
    static func decodeIndex(_ bytes: [UInt8], location: String) throws -> RepositoryIndex {
        func invalid(_ reason: String) -> SoftwarePackageError {
            SoftwarePackageError(
                code: .invalidRepository,
                message: "the repository index \(location) \(reason); rebuild the repository from its package files"
            )
        }
        struct Probe: Decodable {
            var formatVersion: Int
        }
        guard let probe = try? JSONDecoder().decode(Probe.self, from: Data(bytes)) else {
            throw invalid("is not a repository index")
        }
        guard probe.formatVersion <= RepositoryIndex.currentFormatVersion else {
            throw SoftwarePackageError(
                code: .unsupportedFormat,
                message: "the repository index \(location) has format version \(probe.formatVersion), newer than "
                    + "this software reads (\(RepositoryIndex.currentFormatVersion)); update the appliance software"
            )
        }
        let index: RepositoryIndex
        do {
            index = try JSONDecoder().decode(RepositoryIndex.self, from: Data(bytes))
        } catch {
            throw invalid("cannot be read (\(error))")
        }
        for entry in index.packages {
            guard isSafeFileName(entry.file) else {
                throw invalid("names the file \"\(entry.file)\", which is not a plain file name in the repository")
            }
            do {
                try entry.manifest.validate()
            } catch let error as SoftwarePackageError {
                throw invalid("has an invalid manifest for \(entry.file): \(error.message)")
            }
            guard isLowercaseHex(entry.fileSHA256, length: 64), entry.fileSize >= 0 else {
                throw invalid("has an invalid SHA-256 or size for \(entry.file)")
            }
        }
        return index
    }

    private static func entryOrder(_ lhs: RepositoryIndex.Entry, _ rhs: RepositoryIndex.Entry) -> Bool {
        if lhs.manifest.name != rhs.manifest.name {
            return lhs.manifest.name < rhs.manifest.name
        }
        let left = (try? SoftwareVersion(lhs.manifest.version)) ?? SoftwareVersion(components: [0])
        let right = (try? SoftwareVersion(rhs.manifest.version)) ?? SoftwareVersion(components: [0])
        return left < right
    }

    /// A single path component of letters, digits, '.', '_' and '-' that does not start with '.'.
    static func isSafeFileName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        return (1...255).contains(bytes.count) && bytes.first != UInt8(ascii: ".")
            && bytes.allSatisfy { byte in
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
                    true
                default:
                    false
                }
            }
    }
}
