import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A Debian binary package at one version.
struct DebianPackage: Sendable, Hashable {
    var name: String
    var version: String

    /// The file name the package is kept under in `<cacheRoot>/debs/`, spelled like apt does (`:` as `%3a`).
    var fileName: String {
        "\(name)_\(version.replacingOccurrences(of: ":", with: "%3a")).deb"
    }
}

/// What the recipe asks apt and dpkg: which package versions to use, and their files. Nothing is installed.
struct DebianArchive {
    /// Extra `-o NAME=VALUE` options for every apt call (tests point apt at empty package lists).
    var aptOptions: [String] = []

    private static let updateHint = "run apt-get update (as root) and try again"

    /// The candidate versions apt would install of `names`, in the same order (one `apt-cache policy` call:
    /// without apt's binary cache each call parses every package list, about a second).
    func candidates(_ names: [String]) throws -> [DebianPackage] {
        let text = String(decoding: try Command.run(.aptCache, aptOptions + ["policy"] + names), as: UTF8.self)
        var versions: [String: String] = [:]
        var current: String?
        for line in text.split(separator: "\n") {
            if !line.hasPrefix(" "), line.hasSuffix(":") {
                current = String(line.dropLast())
            } else if let name = current, versions[name] == nil {
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                if trimmed.hasPrefix("Candidate:") {
                    versions[name] = trimmed.dropFirst("Candidate:".count).trimmingCharacters(in: .whitespaces)
                }
            }
        }
        return try names.map { name in
            guard let version = versions[name], !version.isEmpty, version != "(none)" else {
                throw ImageError(
                    code: .packageLookup,
                    message: "apt knows no installable version of the Debian package \(name) "
                        + "(its package lists are empty or stale); \(Self.updateHint)"
                )
            }
            return DebianPackage(name: name, version: version)
        }
    }

    /// The package that the candidate version of `metapackage` depends on whose name starts with `prefix`: for
    /// `linux-image-cloud-amd64` that is the kernel of the current ABI, e.g. `linux-image-6.1.0-56-cloud-amd64`.
    func dependency(of metapackage: String, prefix: String) throws -> String {
        let result = try Command.output(.aptCache, aptOptions + ["depends", metapackage])
        let name = result.text.split(separator: "\n")
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .compactMap { line -> String? in
                guard line.hasPrefix("Depends:") else {
                    return nil
                }
                return line.dropFirst("Depends:".count).trimmingCharacters(in: .whitespaces)
            }
            .first { $0.hasPrefix(prefix) }
        guard result.status == 0, let name else {
            let detail = result.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
            throw ImageError(
                code: .packageLookup,
                message: "apt cannot tell which \(prefix)* package \(metapackage) depends on "
                    + "(its package lists are empty or stale); \(Self.updateHint)"
                    + (detail.isEmpty ? "" : " (apt-cache said: \(detail))")
            )
        }
        return name
    }

    /// The package's `.deb` in `directory`, downloaded with `apt-get download` unless already there.
    func download(_ package: DebianPackage, into directory: URL) throws -> URL {
        let destination = directory.appendingPathComponent(package.fileName)
        if FileManager.default.fileExists(atPath: destination.path) {
            return destination
        }
        // Download into a fresh directory and rename, so an interrupted download is never taken for a package.
        let scratch = directory.appendingPathComponent(".download-\(UUID().uuidString)", isDirectory: true)
        try FileSystem.createDirectory(scratch)
        defer { try? FileManager.default.removeItem(at: scratch) }
        var arguments = aptOptions + ["download", "\(package.name)=\(package.version)"]
        if getuid() == 0 {
            // As root apt downloads as the _apt user, who may not be able to write here; it warns and falls back.
            arguments = ["-o", "APT::Sandbox::User=root"] + arguments
        }
        let result = try Command.output(.aptGet, arguments, in: scratch)
        guard result.status == 0 else {
            let detail = result.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
            throw ImageError(
                code: .download,
                message: "apt-get download \(package.name)=\(package.version) failed; if apt cannot find the "
                    + "package or a source for it, \(Self.updateHint); otherwise check the network. "
                    + "apt-get said: \(detail)"
            )
        }
        let files = try FileSystem.contents(of: scratch).filter { $0.pathExtension == "deb" }
        guard files.count == 1 else {
            throw ImageError(
                code: .download,
                message: "apt-get download \(package.name)=\(package.version) left \(files.count) .deb files"
            )
        }
        try FileSystem.move(files[0], to: destination)
        return destination
    }

    /// Unpacks the files of a `.deb` into `directory` (`dpkg-deb -x`; maintainer scripts do not run).
    static func extract(_ deb: URL, into directory: URL) throws {
        try FileSystem.createDirectory(directory)
        try Command.run(.dpkgDeb, ["-x", deb.path, directory.path])
    }
}
