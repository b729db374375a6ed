public import ApplianceCrypto
import BackupFormat
public import Foundation

#if canImport(Glibc)
    import Glibc
#endif
#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Where a machine outside the restricted network reads packages from: a repository directory on this machine, or
/// an http(s) URL serving the same layout (`index.json` next to the package files).
public enum PackageSource: Sendable, Equatable, CustomStringConvertible {
    case directory(URL)
    case http(URL)

    /// `text` is an http:// or https:// URL with a host, or a directory path (a relative one is taken from the
    /// current directory). Throws `.invalidArgument` for any other URL.
    public init(_ text: String) throws {
        guard text.contains("://") else {
            self = .directory(URL(fileURLWithPath: text).standardizedFileURL)
            return
        }
        let trimmed = text.hasSuffix("/") ? String(text.dropLast()) : text
        guard let url = URL(string: trimmed), ["http", "https"].contains(url.scheme?.lowercased() ?? ""),
            url.host?.isEmpty == false
        else {
            throw SoftwarePackageError(
                code: .invalidArgument,
                message: "\"\(text)\" is not a repository: give a directory path or an http(s) URL with a host, "
                    + "such as https://packages.example.net/appliance"
            )
        }
        self = .http(url)
    }

    public var description: String {
        switch self {
        case .directory(let url): url.path
        case .http(let url): url.absoluteString
        }
    }

    /// Where `file` (a single path component from the index) is in this source.
    func location(of file: String) -> URL {
        switch self {
        case .directory(let url), .http(let url): url.appendingPathComponent(file)
        }
    }
}

/// A package file fetched from a repository into a local directory and checked against the index entry (size,
/// SHA-256, name and version) and, with trusted keys, against the vendor's signature.
public struct FetchedPackage: Codable, Sendable, Equatable, Hashable {
    /// The file's name in the directory it was fetched into (as in the repository).
    public var file: String
    public var name: String
    public var kind: String
    public var version: String
    /// Lowercase hex SHA-256 of the whole file, from the repository index.
    public var fileSHA256: String
    public var fileSize: Int64

    public init(_ entry: RepositoryIndex.Entry) {
        file = entry.file
        name = entry.manifest.name
        kind = entry.manifest.kind.rawValue
        version = entry.manifest.version
        fileSHA256 = entry.fileSHA256
        fileSize = entry.fileSize
    }
}

/// What `PackageFetcher.fetch` handed out.
public struct FetchOutcome: Sendable, Equatable {
    /// The fetched files, in installation order (dependencies first).
    public var fetched: [FetchedPackage]
    /// The updates that cannot be installed yet, with what they wait for (`UpdatePlanner`'s blocked entries).
    public var blocked: [PlannedUpdate]
    /// The whole plan for the key, applicable then blocked, as `UpdatePlanner` made it.
    public var plan: [PlannedUpdate]
}

/// Turns a download key into the package files that apply, on a machine that can reach the repository: the one
/// implementation behind `appliancectl updates fetch` and the offline upgrade.
public enum PackageFetcher {
    /// Reads and checks the repository index of `source` (`.invalidRepository` when it is missing or malformed).
    public static func loadIndex(_ source: PackageSource) async throws -> RepositoryIndex {
        switch source {
        case .directory(let url):
            return try RepositoryBuilder.loadIndex(directory: url)
        case .http:
            let url = source.location(of: RepositoryIndex.fileName)
            let bytes = try await download(url, what: "the repository index", limit: RepositoryIndex.maximumSize)
            return try RepositoryBuilder.decodeIndex(bytes, location: url.absoluteString)
        }
    }

    /// Plans the updates for the appliance that issued `key` from the repository `source` and fetches every
    /// applicable one into `directory` (see `fetch(_:from:into:trustedKeys:)`). With a `ledger`, files fetched with
    /// the same key before are left out, and the new ones are recorded.
    public static func fetch(
        for key: DownloadKey,
        from source: PackageSource,
        into directory: URL,
        trustedKeys: [Ed25519PublicKey]?,
        ledger: FetchLedger? = nil
    ) async throws -> FetchOutcome {
        let index = try await loadIndex(source)
        let plan =
            try ledger.map { try UpdatePlanner.plan(for: key, index: index, ledger: $0) }
            ?? UpdatePlanner.plan(installed: key.installed, available: index.manifests)
        var wanted: [FetchedPackage] = []
        var blocked: [PlannedUpdate] = []
        for update in plan {
            guard case .applicable = update.status, let entry = index.entry(for: update.manifest) else {
                blocked.append(update)
                continue
            }
            wanted.append(FetchedPackage(entry))
        }
        let fetched = try await fetch(wanted, from: source, into: directory, trustedKeys: trustedKeys)
        try ledger?.record(keyId: key.keyId, files: fetched.map(\.file))
        return FetchOutcome(fetched: fetched, blocked: blocked, plan: plan)
    }

    /// Puts the file of each package into `directory` (created if missing), verified: size and SHA-256 as the
    /// index says, the name and version of its entry, and with `trustedKeys` the vendor signature. A file already in
    /// `directory` is verified the same way and reused only when it passes; otherwise it is fetched again.
    @discardableResult
    public static func fetch(
        _ packages: [FetchedPackage],
        from source: PackageSource,
        into directory: URL,
        trustedKeys: [Ed25519PublicKey]?
    ) async throws -> [FetchedPackage] {
        try createDirectory(directory, what: "the package directory")
        for package in packages where (try? verify(package, in: directory, trustedKeys: trustedKeys)) == nil {
            try await copy(package, from: source, into: directory, trustedKeys: trustedKeys)
        }
        return packages
    }

    /// Checks the file of `package` in `directory` again, as `fetch` left it: size and SHA-256, then the package's
    /// own structure and (with `trustedKeys`) its signature, and that it is the named package at that version.
    /// Returns its signed manifest; throws `.tamperedPayload` for a file that changed, and what `PackageVerifier`
    /// throws for one that is not the vendor's.
    @discardableResult
    public static func verify(
        _ package: FetchedPackage,
        in directory: URL,
        trustedKeys: [Ed25519PublicKey]?
    ) throws -> PackageManifest {
        let file = directory.appendingPathComponent(package.file)
        let (sha256, size) = try digest(of: file)
        guard size == package.fileSize, sha256 == package.fileSHA256 else {
            throw SoftwarePackageError(
                code: .tamperedPayload,
                message: "\(file.path) is not the file the repository lists for \(package.name) \(package.version) "
                    + "(\(size) bytes, SHA-256 \(sha256.prefix(16))…; the index says \(package.fileSize) bytes, "
                    + "\(package.fileSHA256.prefix(16))…); delete it and fetch again"
            )
        }
        let manifest = try PackageVerifier.scan(file: file, trustedKeys: trustedKeys).manifest
        guard manifest.name == package.name, manifest.version == package.version else {
            throw SoftwarePackageError(
                code: .tamperedPayload,
                message: "\(file.path) holds \(manifest.name) \(manifest.version), but the repository index lists "
                    + "it as \(package.name) \(package.version); rebuild the repository from its package files"
            )
        }
        return manifest
    }

    /// Copies or downloads the file of `package` to a scratch name in `directory`, verifies it there, and only
    /// then gives it its name, so a half-written or unverified file never carries it.
    static func copy(
        _ package: FetchedPackage,
        from source: PackageSource,
        into directory: URL,
        trustedKeys: [Ed25519PublicKey]?
    ) async throws {
        let scratchName = ".fetching-\(UUID().uuidString)-\(package.file)"
        let scratch = directory.appendingPathComponent(scratchName)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let origin = source.location(of: package.file)
        switch source {
        case .directory:
            do {
                try FileManager.default.copyItem(at: origin, to: scratch)
            } catch {
                throw SoftwarePackageError(
                    code: .invalidRepository,
                    message: "the repository lists \(package.file) but it cannot be copied from \(origin.path) "
                        + "(\(error)); rebuild the repository from its package files"
                )
            }
        case .http:
            let limit = Int(clamping: package.fileSize)
            try AtomicFileWriter.write(try await download(origin, what: package.file, limit: limit), to: scratch)
        }
        var check = package
        check.file = scratchName
        do {
            try verify(check, in: directory, trustedKeys: trustedKeys)
        } catch let error as SoftwarePackageError {
            throw SoftwarePackageError(
                code: error.code,
                message: error.message.replacingOccurrences(of: scratch.path, with: origin.description)
            )
        }
        // rename(2) replaces a file that failed verification in one step (FileManager's move refuses to).
        let destination = directory.appendingPathComponent(package.file)
        guard rename(scratch.path, destination.path) == 0 else {
            throw storageError(
                "put \(package.file) into",
                directory.path,
                errno: errno,
                advice: "check its permissions"
            )
        }
    }

    /// GETs `url` (answer 200, at most `limit` bytes).
    static func download(_ url: URL, what: String, limit: Int) async throws -> [UInt8] {
        let data: Data
        let response: URLResponse
        do {
            (data, response) = try await URLSession.shared.data(from: url)
        } catch {
            throw SoftwarePackageError(
                code: .invalidRepository,
                message: "cannot reach \(url) for \(what) (\(error.localizedDescription)); check the repository "
                    + "URL and the network"
            )
        }
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        guard status == 200 else {
            throw SoftwarePackageError(
                code: .invalidRepository,
                message: "\(url) answered \(status) for \(what); check the repository URL"
            )
        }
        guard data.count <= limit else {
            throw SoftwarePackageError(
                code: .invalidRepository,
                message: "\(url) sent \(data.count) bytes for \(what), more than the \(limit) expected"
            )
        }
        return Array(data)
    }

    /// SHA-256 (lowercase hex) and size of `file`, read in chunks.
    static func digest(of file: URL) throws -> (sha256: String, size: Int64) {
        let hasher = SHA256Hasher()
        let size = try InputFile(file).forEachChunk { hasher.update($0) }
        return (hasher.finalize().hexString, size)
    }
}
