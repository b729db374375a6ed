import ApplianceAPI
import ApplianceCrypto
import ApplianceStore
import BackupFormat
import Foundation
import Hummingbird
import Logging
import SoftwarePackages

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// A5: software packages — check for updates, install (from the repository or an upload, EULA accepted
/// explicitly), download keys for restricted networks.
extension Appliance {
    /// Packages live in the data directory once installed (their payloads are the installed software).
    var packagesDirectory: URL { directory.root.appendingPathComponent("packages", isDirectory: true) }

    func setUpdateSource(_ repository: String) throws {
        guard let source = UpdateSource.normalized(repository) else {
            throw ApplianceServerError.badRequest(UpdateSource.rule)
        }
        try box.setMeta("updateSource", source)
    }

    /// Reads the repository index from the configured source.
    func repositoryIndex() async throws -> (source: String, index: RepositoryIndex) {
        guard let source = try box.meta("updateSource") else {
            throw ApplianceServerError.conflict(
                "no update source is configured; set one with `appliancectl updates source ADDRESS --repo URL|DIR`"
            )
        }
        if source.unicodeScalars.first == "/" {
            do {
                return (source, try RepositoryBuilder.loadIndex(directory: URL(fileURLWithPath: source)))
            } catch let error as SoftwarePackageError where error.code == .invalidRepository {
                // The request is fine; the configured source is not (yet) a repository.
                throw ApplianceServerError(
                    .conflict,
                    "update_source",
                    "the configured update source: \(error.message); or set another one with "
                        + "`appliancectl updates source ADDRESS --repo URL|DIR`"
                )
            }
        }
        let data = try await fetch(URL(string: source + "/index.json"), what: "the repository index")
        do {
            return (source, try JSONDecoder().decode(RepositoryIndex.self, from: data))
        } catch {
            throw ApplianceServerError(
                .badGateway,
                "invalid_repository",
                "\(source)/index.json is not a repository index (\(error))"
            )
        }
    }

    private func fetch(_ url: URL?, what: String) async throws -> Data {
        guard let url else { throw ApplianceServerError.badRequest("the update source is not a valid URL") }
        do {
            let (data, response) = try await URLSession.shared.data(from: url)
            guard let http = response as? HTTPURLResponse, http.statusCode == 200 else {
                throw ApplianceServerError(
                    .badGateway,
                    "update_source",
                    "\(url) answered \((response as? HTTPURLResponse)?.statusCode ?? 0) for \(what)"
                )
            }
            return data
        } catch let error as ApplianceServerError {
            throw error
        } catch {
            throw ApplianceServerError(
                .badGateway,
                "update_source",
                "cannot reach \(url) for \(what) (\(error.localizedDescription)); check the update source"
            )
        }
    }

    func checkUpdates() async throws -> UpdatesResponse {
        let installed = try box.installedPackages()
        let (source, index) = try await repositoryIndex()
        let plan = UpdatePlanner.plan(installed: installed, available: index.manifests)
        return UpdatesResponse(source: source, installed: installed, updates: plan.map(UpdateEntry.init))
    }

    /// Installs a package from the configured repository.
    func installFromRepository(_ request: InstallRequest) async throws -> InstallResponse {
        let (source, index) = try await repositoryIndex()
        let candidates = index.packages.filter { $0.manifest.name == request.name }
        guard
            let entry = request.version.map({ version in candidates.first { $0.manifest.version == version } })
                ?? candidates.max(by: { Self.version($0.manifest.version) < Self.version($1.manifest.version) })
        else {
            throw ApplianceServerError.notFound(
                "the repository \(source) has no package \(request.name)\(request.version.map { " \($0)" } ?? "")"
            )
        }
        let scratch = directory.scratchFile("package")
        defer { try? FileManager.default.removeItem(at: scratch) }
        if source.unicodeScalars.first == "/" {
            try FileManager.default.copyItem(
                at: URL(fileURLWithPath: source).appendingPathComponent(entry.file),
                to: scratch
            )
        } else {
            let data = try await fetch(URL(string: source + "/" + entry.file), what: entry.file)
            try data.write(to: scratch)
        }
        return try await install(file: scratch, acceptEula: request.acceptEula)
    }

    /// Installs an uploaded package file (manual install, e.g. fetched with a download key).
    func installUpload(_ body: RequestBody, acceptEula: Bool) async throws -> InstallResponse {
        let writer = try FileWriter(scratch: directory.scratchFile("upload-package"))
        defer { writer.discard() }
        for try await buffer in body {
            try buffer.withUnsafeReadableBytes { try writer.write($0) }
        }
        _ = try writer.finish()
        return try await install(file: writer.scratch, acceptEula: acceptEula)
    }

    /// A version for ordering; unparseable text sorts first.
    static func version(_ text: String) -> SoftwareVersion {
        (try? SoftwareVersion(text)) ?? SoftwareVersion(components: [])
    }

    /// Verifies and installs a package file: trusted signature, intact payload, version order, dependencies,
    /// EULA accepted. What ran before is kept as the previous software slot (X4); then the package is the
    /// installed software, every user is logged out, and its self-test (if it has one) runs.
    func install(file: URL, acceptEula: Bool) async throws -> InstallResponse {
        guard !vendorKeys.isEmpty else {
            throw ApplianceServerError.conflict(
                "this appliance trusts no vendor key; start applianced with --vendor-key FILE to install packages"
            )
        }
        let verified = try PackageVerifier.verify(file: file, trustedKeys: vendorKeys)
        let manifest = verified.manifest
        if manifest.kind == .base && manifest.name != "base" || manifest.kind == .site && manifest.name != "site" {
            throw ApplianceServerError.badRequest(
                "a \(manifest.kind.rawValue) package must be named '\(manifest.kind.rawValue)', not '\(manifest.name)'"
            )
        }
        try UpdatePlanner.checkInstall(manifest, installed: try box.installedPackages())
        guard acceptEula else {
            throw ApplianceServerError(
                .conflict,
                "eula_required",
                "installing \(manifest.name) \(manifest.version) requires accepting its EULA; read it and accept "
                    + "explicitly (--accept-eula):\n\(manifest.eula)"
            )
        }
        try beginExclusive("software installation")
        defer { endExclusive() }
        try FileManager.default.createDirectory(at: packagesDirectory, withIntermediateDirectories: true)
        // Checked again inside the exclusive section: another install may have finished meanwhile.
        try UpdatePlanner.checkInstall(manifest, installed: try box.installedPackages())
        try verified.copyPayload(
            to: packagesDirectory.appendingPathComponent(
                Self.payloadFileName(name: manifest.name, version: manifest.version)
            )
        )
        _ = try enterSlot(installing: manifest)
        try site.logoutEveryone()
        logger.notice(
            "Package installed",
            metadata: ["package.name": "\(manifest.name)", "package.version": "\(manifest.version)"]
        )
        let selfTest = try await runSelfTest(of: manifest)
        let siteHash = try box.meta("siteHash")
        return InstallResponse(
            name: manifest.name,
            kind: manifest.kind.rawValue,
            version: manifest.version,
            software: try box.installedSoftware(),
            siteHash: siteHash,
            installersGeneration: Int(try box.meta("installersGeneration") ?? "1") ?? 1,
            message: (manifest.kind == .site
                ? "Site updated: client installers generated earlier are invalid, regenerate them; the site hash "
                    + "changed; every user was logged out."
                : "Installed; every user was logged out.")
                + (selfTest?.message.map(Self.selfTestFailureNote) ?? ""),
            selfTest: selfTest
        )
    }

    static func selfTestFailureNote(_ message: String) -> String {
        " The self-test failed, so the appliance reports itself unhealthy: \(message); roll back with "
            + "`appliancectl updates rollback ADDRESS`."
    }

    func issueDownloadKey() throws -> DownloadKeyResponse {
        let now = Date()
        let key = DownloadKey.issue(
            applianceId: applianceId,
            hostname: try box.networkSettings().hostname,
            installed: try box.installedPackages(),
            issuedAt: now,
            signingKey: applianceKey
        )
        return DownloadKeyResponse(key: key, issuedAt: now)
    }
}
