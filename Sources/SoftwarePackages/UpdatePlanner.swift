import BackupFormat

/// What an appliance has installed: package name → version text.
public struct InstalledSoftwareState: Sendable, Equatable, Codable {
    public var packages: [String: String]

    public init(packages: [String: String] = [:]) {
        self.packages = packages
    }
}

/// One update the planner offers.
public struct PlannedUpdate: Sendable, Equatable {
    public enum Status: Sendable, Equatable, Hashable {
        /// Can be installed now, in plan order.
        case applicable
        /// Cannot be installed yet; `waitingFor` is the missing requirement as "name minimumVersion", for example
        /// "core-addon 2.0".
        case blocked(waitingFor: String)
    }

    public var manifest: PackageManifest
    public var status: Status
    /// For blocked updates, what is missing and what the operator can do about it; nil when applicable.
    public var message: String?

    public init(manifest: PackageManifest, status: Status, message: String? = nil) {
        self.manifest = manifest
        self.status = status
        self.message = message
    }
}

/// Decides which available packages update an appliance, and in what order.
public enum UpdatePlanner {
    /// Plans updates of the installed packages from `available`.
    ///
    /// - For each installed package name, the newest available version strictly greater than the installed one is
    ///   offered; downgrades and the installed version itself never are. Packages that are not installed are not
    ///   offered (install them with `checkInstall`), and neither are packages whose installed or available version
    ///   text is not a version number.
    /// - A requirement is met when the required package is installed at the minimum version or newer, or when
    ///   another applicable update in the plan brings it there. A package requiring itself states the lowest
    ///   installed version it can update from.
    /// - Applicable updates come first, ordered so that requirements precede the packages needing them (base, then
    ///   site, then add-ons, then by name, where requirements leave the choice open). Blocked updates follow, by
    ///   name: those whose requirement is missing, whose requirement's update is itself blocked, or that are part of
    ///   (or wait on) a requirement cycle.
    public static func plan(installed: [String: String], available: [PackageManifest]) -> [PlannedUpdate] {
        var candidates: [String: Candidate] = [:]
        var newestAvailable: [String: Candidate] = [:]
        for manifest in available {
            guard let version = try? SoftwareVersion(manifest.version) else {
                continue
            }
            let candidate = Candidate(manifest: manifest, version: version)
            if newestAvailable[manifest.name].map({ $0.version < version }) ?? true {
                newestAvailable[manifest.name] = candidate
            }
            guard let installedText = installed[manifest.name],
                let current = try? SoftwareVersion(installedText), version > current,
                candidates[manifest.name].map({ $0.version < version }) ?? true
            else {
                continue
            }
            candidates[manifest.name] = candidate
        }

        // Requirements met by an update in the plan become edges; unmet ones block the update right away.
        var edges: [String: [(dependency: String, requirement: PackageManifest.Requirement)]] = [:]
        var blocked: [String: (waitingFor: String, message: String)] = [:]
        for (name, candidate) in candidates {
            edges[name] = []
            for requirement in candidate.manifest.requires {
                let need = resolve(requirement, for: candidate, installed: installed, candidates, newestAvailable)
                switch need {
                case .met:
                    continue
                case .update(let dependency):
                    edges[name, default: []].append((dependency, requirement))
                case .missing(let message):
                    if blocked[name] == nil {
                        blocked[name] = (waitingFor(requirement), message)
                    }
                }
            }
        }

        // An update waiting for a blocked update is blocked too.
        var changed = true
        while changed {
            changed = false
            for name in candidates.keys.sorted() where blocked[name] == nil {
                guard let (dependency, requirement) = edges[name]?.first(where: { blocked[$0.dependency] != nil }),
                    let reason = blocked[dependency]
                else {
                    continue
                }
                blocked[name] = (
                    waitingFor(requirement),
                    "\(label(candidates[name]!)) needs \(waitingFor(requirement)) or newer; the update to "
                        + "\(label(candidates[dependency]!)) is blocked itself (waiting for \(reason.waitingFor)), so "
                        + "resolve that first"
                )
                changed = true
            }
        }

        // Kahn's algorithm over the rest; what it cannot place is in, or waits on, a cycle.
        var remaining = Set(candidates.keys.filter { blocked[$0] == nil })
        var ordered: [String] = []
        while true {
            let ready = remaining.filter { name in
                edges[name, default: []].allSatisfy { !remaining.contains($0.dependency) }
            }
            guard let next = ready.min(by: { placementOrder(candidates[$0]!, candidates[$1]!) }) else {
                break
            }
            ordered.append(next)
            remaining.remove(next)
        }
        for name in remaining.sorted() {
            guard let (dependency, requirement) = edges[name]?.first(where: { remaining.contains($0.dependency) })
            else {
                continue
            }
            let cycle = cyclePath(from: dependency, to: name, edges: edges, within: remaining)
            let message: String
            if let cycle {
                let names = ([name] + cycle).map { label(candidates[$0]!) }.joined(separator: " → ")
                message =
                    "\(label(candidates[name]!)) is part of a requirement cycle (\(names)), so none of these can be "
                    + "installed first; ask the vendor for packages whose requirements do not form a cycle"
            } else {
                message =
                    "\(label(candidates[name]!)) needs \(waitingFor(requirement)) or newer, whose update is part of "
                    + "a requirement cycle; ask the vendor for packages whose requirements do not form a cycle"
            }
            blocked[name] = (waitingFor(requirement), message)
        }

        let applicable = ordered.map { PlannedUpdate(manifest: candidates[$0]!.manifest, status: .applicable) }
        let waiting = blocked.keys.sorted().map { name in
            PlannedUpdate(
                manifest: candidates[name]!.manifest,
                status: .blocked(waitingFor: blocked[name]!.waitingFor),
                message: blocked[name]!.message
            )
        }
        return applicable + waiting
    }

    /// Plans updates of `installed` from `available`.
    public static func plan(installed: InstalledSoftwareState, available: [PackageManifest]) -> [PlannedUpdate] {
        plan(installed: installed.packages, available: available)
    }

    /// Plans updates for the appliance that issued `key`, from the repository `index`, leaving out the package
    /// files already fetched with that key (as recorded in `ledger`). A fetched requirement still counts as part of
    /// the plan, so what depends on it stays applicable.
    public static func plan(for key: DownloadKey, index: RepositoryIndex, ledger: FetchLedger) throws
        -> [PlannedUpdate]
    {
        let fetched = try ledger.fetched(keyId: key.keyId)
        return plan(installed: key.installed, available: index.manifests).filter { update in
            guard let entry = index.entry(for: update.manifest) else {
                return true
            }
            return !fetched.contains(entry.file)
        }
    }

    /// Refuses to install `manifest` over `installed` when it is not newer than the installed version of the same
    /// package (`.downgrade`, which includes reinstalling the same version) or when a package it requires is not
    /// installed at the minimum version (`.missingRequirement`). Throws `.invalidArgument` for version text that is
    /// not a version number.
    public static func checkInstall(_ manifest: PackageManifest, installed: [String: String]) throws {
        let version = try PackageManifest.validateVersion(manifest.version, what: "the version of \(manifest.name)")
        if let installedText = installed[manifest.name] {
            let current = try PackageManifest.validateVersion(
                installedText,
                what: "the installed version of \(manifest.name)"
            )
            if version == current {
                throw SoftwarePackageError(
                    code: .downgrade,
                    message:
                        "version \(installedText) of \(manifest.name) is installed; installing \(manifest.version) "
                        + "again is not an update, so there is nothing to do"
                )
            }
            if version < current {
                throw SoftwarePackageError(
                    code: .downgrade,
                    message: "version \(installedText) of \(manifest.name) is installed; \(manifest.version) would be "
                        + "a downgrade, which is not supported; use a package newer than \(installedText) (to go "
                        + "back, restore a backup made before the update)"
                )
            }
        }
        for requirement in manifest.requires {
            let minimum = try PackageManifest.validateVersion(
                requirement.minimumVersion,
                what: "the minimum version of \(requirement.name)"
            )
            let installedText = installed[requirement.name]
            if let installedText, let current = try? SoftwareVersion(installedText), current >= minimum {
                continue
            }
            let what = "\(manifest.name) \(manifest.version) requires \(requirement.name) \(requirement.minimumVersion)"
            if requirement.name == manifest.name {
                throw SoftwarePackageError(
                    code: .missingRequirement,
                    message: "\(what) or newer to be installed before it can be updated (\(installedText ?? "none") is "
                        + "installed); install \(requirement.name) \(requirement.minimumVersion) first"
                )
            }
            let advice =
                installedText.map { "update it first (\($0) is installed)" }
                ?? "install it first (\(requirement.name) is not installed)"
            throw SoftwarePackageError(code: .missingRequirement, message: "\(what); \(advice)")
        }
    }

    /// Refuses to install `manifest` over `installed`; see `checkInstall(_:installed:)`.
    public static func checkInstall(_ manifest: PackageManifest, installed: InstalledSoftwareState) throws {
        try checkInstall(manifest, installed: installed.packages)
    }

    private struct Candidate {
        var manifest: PackageManifest
        var version: SoftwareVersion
    }

    private enum Need {
        case met
        /// Met once the update of this package in the plan is installed.
        case update(String)
        case missing(String)
    }

    private static func resolve(
        _ requirement: PackageManifest.Requirement,
        for candidate: Candidate,
        installed: [String: String],
        _ candidates: [String: Candidate],
        _ newestAvailable: [String: Candidate]
    ) -> Need {
        let name = requirement.name
        let installedText = installed[name]
        let installedVersion = installedText.flatMap { try? SoftwareVersion($0) }
        guard let minimum = try? SoftwareVersion(requirement.minimumVersion) else {
            return .missing(
                "\(label(candidate)) states an invalid minimum version \"\(requirement.minimumVersion)\" for \(name); "
                    + "ask the vendor for a corrected package"
            )
        }
        if let installedVersion, installedVersion >= minimum {
            return .met
        }
        let need = "\(label(candidate)) needs \(waitingFor(requirement)) or newer"
        if name == candidate.manifest.name {
            return .missing(
                "\(need) to be installed before it can be updated (\(installedText ?? "none") is installed); install "
                    + "\(waitingFor(requirement)) first"
            )
        }
        if let update = candidates[name], update.version >= minimum {
            return .update(name)
        }
        if installedText == nil, let newest = newestAvailable[name], newest.version >= minimum {
            return .missing(
                "\(need), which is not installed; install the available package \(label(newest)) to enable the "
                    + "dependent one, then plan again"
            )
        }
        let installedNote = installedText.map { "\($0) is installed" } ?? "it is not installed"
        return .missing(
            "\(need), but \(installedNote) and no available package provides it; add \(waitingFor(requirement)) or "
                + "newer to the repository, then plan again"
        )
    }

    private static func waitingFor(_ requirement: PackageManifest.Requirement) -> String {
        "\(requirement.name) \(requirement.minimumVersion)"
    }

    private static func label(_ candidate: Candidate) -> String {
        "\(candidate.manifest.name) \(candidate.manifest.version)"
    }

    private static func kindRank(_ kind: PackageKind) -> Int {
        switch kind {
        case .base: 0
        case .site: 1
        case .addon: 2
        }
    }

    private static func placementOrder(_ lhs: Candidate, _ rhs: Candidate) -> Bool {
        let left = kindRank(lhs.manifest.kind)
        let right = kindRank(rhs.manifest.kind)
        return left != right ? left < right : lhs.manifest.name < rhs.manifest.name
    }

    /// A path of requirement edges from `start` back to `target` among `nodes` (the names after `target`), or nil.
    private static func cyclePath(
        from start: String,
        to target: String,
        edges: [String: [(dependency: String, requirement: PackageManifest.Requirement)]],
        within nodes: Set<String>
    ) -> [String]? {
        var visited: Set<String> = []
        func search(_ node: String, _ path: [String]) -> [String]? {
            if node == target {
                return path + [node]
            }
            guard visited.insert(node).inserted else {
                return nil
            }
            for edge in edges[node, default: []] where nodes.contains(edge.dependency) {
                if let found = search(edge.dependency, path + [node]) {
                    return found
                }
            }
            return nil
        }
        return search(start, [])
    }
}
