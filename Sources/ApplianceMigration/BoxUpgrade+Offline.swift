import ApplianceAPI
import ApplianceClient
import ApplianceCrypto
import Foundation
import ProcedureEngine
import SoftwarePackages

/// An offline upgrade's packages (the manual's "manuelle Aktualisierung" for a restricted network): the box issues
/// a download key, this machine fetches the package files from `repository` and verifies them with `vendorKey`,
/// then uploads them to the box (manual install). The box's update source is never touched.
public struct UpgradeOffline: Codable, Sendable, Equatable {
    /// A directory on this machine, or an http(s) URL (`index.json` and package files).
    public var repository: String
    /// The vendor's public key (PEM file on this machine, absolute path).
    public var vendorKey: String

    public init(repository: String, vendorKey: String) {
        self.repository = repository
        self.vendorKey = vendorKey
    }
}

/// What the offline pre-flight learned: the box's signed state and the repository's plan for it.
struct OfflinePlan: Sendable {
    var source: PackageSource
    var index: RepositoryIndex
    var trustedKeys: [Ed25519PublicKey]
    /// The box's plan as it would read it from the repository itself.
    var updates: UpdatesResponse
    /// How far the box's clock is ahead of this machine's (negative: behind), from its download key.
    var skewSeconds: Int
}

extension BoxUpgrade {
    /// The package files fetched for this run (re-verified before every upload).
    var packagesDirectory: URL {
        environment.runDirectory.appendingPathComponent(
            prefix.isEmpty ? "packages" : "packages-\(prefix.dropLast())",
            isDirectory: true
        )
    }

    /// Installed packages (name → version) as the box reports them: online from its update plan, offline from its
    /// status (the box has no reachable update source then).
    func installedVersions() async throws -> [String: String] {
        guard options.offline != nil else {
            let updates: UpdatesResponse = try await session().call(.updates)
            return updates.installed
        }
        let status: StatusResponse = try await session().call(.status)
        return UpgradePlanning.versions(status.software)
    }

    func vendorKeys(_ offline: UpgradeOffline) throws -> [Ed25519PublicKey] {
        do {
            return [try Ed25519PublicKey(pem: try String(contentsOfFile: offline.vendorKey, encoding: .utf8))]
        } catch {
            throw MigrationError(
                .preflight,
                "cannot read the vendor key \(offline.vendorKey) (\(error)); give the vendor's public key (PEM) as "
                    + "'vendor_key' in 'packages'; nothing was changed"
            )
        }
    }

    /// The box's download key, checked (signature, this appliance, its clock), and the repository's plan for it.
    /// A key refused for its time stops the run here, before the backup: nothing on the box has changed.
    func offlinePlan(
        _ offline: UpgradeOffline,
        connection: ApplianceConnection,
        applianceId: String
    ) async throws -> OfflinePlan {
        let trusted = try vendorKeys(offline)
        let source = try PackageSource(offline.repository)
        let answer: DownloadKeyResponse = try await connection.call(.downloadKey)
        let key: DownloadKey
        do {
            // Issued just now, so a key older than the skew a key may be ahead means the box's clock is behind.
            key = try DownloadKey.parse(answer.key, maximumSkew: 300, maximumAge: 300)
        } catch let error as SoftwarePackageError where error.code == .clockSkew {
            let unchecked = try DownloadKey.parse(answer.key, maximumSkew: .infinity, maximumAge: .infinity)
            throw MigrationError(.refused, Self.skewRefusal(box: box.name, issuedAt: unchecked.issuedAt, now: Date()))
        }
        guard key.applianceId == applianceId else {
            throw MigrationError(
                .refused,
                "\(box.name)'s download key names appliance \(key.applianceId), not \(applianceId); check the "
                    + "inventory's address for \(box.name); nothing was changed"
            )
        }
        let index = try await PackageFetcher.loadIndex(source)
        let plan = UpdatePlanner.plan(installed: key.installed, available: index.manifests)
        let updates = UpdatesResponse(
            source: source.description,
            installed: key.installed,
            updates: plan.map(UpdateEntry.init)
        )
        let skew = Int(key.issuedAt.timeIntervalSinceNow.rounded())
        return OfflinePlan(source: source, index: index, trustedKeys: trusted, updates: updates, skewSeconds: skew)
    }

    /// "the clock of site-box is 7200 s ahead …; check the appliance time / NTP".
    static func skewRefusal(box: String, issuedAt: Date, now: Date) -> String {
        let skew = Int(issuedAt.timeIntervalSince(now).rounded())
        return "the clock of \(box) is \(abs(skew)) s \(skew >= 0 ? "ahead of" : "behind") this machine's (its "
            + "download key was issued at \(issuedAt.formatted(.iso8601)), here it is \(now.formatted(.iso8601))), "
            + "so its download key is refused (clock skew \(skew) s); check the appliance time / NTP "
            + "(`appliancectl status ADDRESS` shows its clock), then run again; nothing was changed"
    }

    /// Fetches the planned packages into the run directory, verified with the vendor key, before anything changes.
    func fetchOffline(_ plan: [UpgradePlanEntry], _ offline: OfflinePlan) async throws -> StepDetail {
        let packages = try plan.map { entry in
            guard let found = offline.index.entry(name: entry.name, version: entry.version) else {
                throw MigrationError(
                    .refused,
                    "\(offline.source) has no package file for \(entry.label); add it to the repository "
                        + "(appliancectl vendor repo-add); nothing was changed"
                )
            }
            return FetchedPackage(found)
        }
        try await PackageFetcher.fetch(
            packages,
            from: offline.source,
            into: packagesDirectory,
            trustedKeys: offline.trustedKeys
        )
        facts.offlineFiles = packages
        environment.events(
            .note("fetched and verified \(packages.map(\.file).joined(separator: ", ")) from \(offline.source)")
        )
        return [
            "packages": "offline from \(offline.source)",
            "offlineFiles": UpgradeFacts.encode(packages),
            "clockSkewSeconds": "\(offline.skewSeconds)",
        ]
    }

    /// Uploads the planned packages the box does not have yet, in order (manual install), each file verified again
    /// first (fetched again when it no longer verifies) and each EULA accepted explicitly.
    func installOffline(_ offline: UpgradeOffline, context: StepContext) async throws -> StepDetail {
        let plan = try facts.required(facts.plan, "plan")
        let files = try facts.required(facts.offlineFiles, "offlineFiles")
        let trusted = try vendorKeys(offline)
        var tally = InstallTally(uploaded: [])
        for entry in plan {
            guard !UpgradePlanning.missing([entry], installed: try await installedVersions()).isEmpty else { continue }
            guard let package = files.first(where: { $0.name == entry.name && $0.version == entry.version }) else {
                throw MigrationError(.journal, "the journal has no fetched file for \(entry.label); abort the run")
            }
            let manifest: PackageManifest
            do {
                manifest = try PackageFetcher.verify(package, in: packagesDirectory, trustedKeys: trusted)
            } catch {
                environment.events(.note("\(package.file) does not verify any more (\(error)); fetching it again"))
                try await PackageFetcher.fetch(
                    [package],
                    from: try PackageSource(offline.repository),
                    into: packagesDirectory,
                    trustedKeys: trusted
                )
                manifest = try PackageFetcher.verify(package, in: packagesDirectory, trustedKeys: trusted)
            }
            guard await environment.confirm("Upload and install \(entry.label) and accept its EULA?\n\(manifest.eula)")
            else { throw tally.declined(entry) }
            try context.journal(prefixed(["uploading": package.file]))
            let result = try await session().installPackage(
                fromFile: packagesDirectory.appendingPathComponent(package.file).path,
                acceptEula: true
            )
            tally.uploaded?.append(package.file)
            environment.events(
                .note("uploaded \(package.file); installed \(result.name) \(result.version) on \(box.name)")
            )
            try tally.record(result, of: entry, box: box.name)
        }
        return tally.detail
    }
}
