import ApplianceAPI
import ApplianceClient
import ApplianceInventory
import BackupFormat
import Foundation
import ProcedureEngine
import SoftwarePackages

extension MigrationProcedure {
    // MARK: 5 Package

    func installPackage() async throws -> [String: String] {
        let wanted = try required(facts.oldSiteVersion, "oldSiteVersion")
        var connection = try await newSession()
        var status: StatusResponse = try await connection.call(.status)
        if status.software.siteVersion == wanted { return ["siteVersion": wanted, "installed": "none needed"] }
        guard let repository = settings.repository else {
            throw MigrationError(
                .package,
                "\(settings.new.name) runs site version \(status.software.siteVersion), \(old.name) "
                    + "\(wanted); give packages.repository in the playbook"
            )
        }
        if !repository.contains("://") {
            return try await installOffline(from: URL(fileURLWithPath: repository), wanted: wanted)
        }
        try await connection.perform(.setUpdateSource, body: UpdateSourceRequest(repository: repository))
        var installed: [String] = []
        for _ in 0..<16 {
            let updates: UpdatesResponse = try await connection.call(.updates)
            let candidates = updates.updates.filter { entry in
                entry.status == "applicable"
                    && (entry.kind != "site"
                        || (try? SoftwareVersion(entry.version) <= SoftwareVersion(wanted)) == true)
            }
            // Dependencies first: base and add-on packages before the site package that needs them.
            guard
                let next = candidates.first(where: { $0.kind != "site" })
                    ?? candidates.first(where: { $0.version == wanted })
            else { break }
            guard await environment.confirm("Install \(next.name) \(next.version) and accept its EULA?\n\(next.eula)")
            else {
                throw MigrationError(.declined, "the EULA of \(next.name) was not accepted; nothing was installed")
            }
            let result: InstallResponse = try await connection.call(
                .installUpdate,
                body: InstallRequest(name: next.name, version: next.version, acceptEula: true)
            )
            installed.append("\(result.name) \(result.version)")
            environment.events(.note("installed \(result.name) \(result.version) on \(settings.new.name)"))
            connection = try await newSession()  // an install logs every user out
            status = try await connection.call(.status)
            if status.software.siteVersion == wanted { break }
        }
        guard status.software.siteVersion == wanted else {
            throw MigrationError(
                .package,
                "\(repository) offers no package that brings \(settings.new.name) from site version "
                    + "\(status.software.siteVersion) to \(wanted); add it to the repository"
            )
        }
        return ["siteVersion": wanted, "installed": installed.joined(separator: ", ")]
    }

    /// Step 5 from a repository directory on this machine: the packages are uploaded (the appliance's manual
    /// install), dependencies first, so an appliance without a network path to the repository gets them too.
    func installOffline(from directory: URL, wanted: String) async throws -> [String: String] {
        let name = settings.new.name
        let index = try RepositoryBuilder.loadIndex(directory: directory)
        // Each package with its version read once; entries whose version is not a version number are left out.
        let packages = index.packages.compactMap { entry in
            (try? SoftwareVersion(entry.manifest.version)).map { (entry: entry, version: $0) }
        }
        let wantedVersion = try SoftwareVersion(wanted)
        let site = packages.first { $0.entry.manifest.kind == .site && $0.version == wantedVersion }?.entry
        guard let site else {
            throw MigrationError(
                .package,
                "\(directory.path) holds no site package \(wanted); add it (appliancectl vendor repo-add) or give "
                    + "another packages.repository"
            )
        }
        var order: [RepositoryIndex.Entry] = []
        for requirement in site.manifest.requires {
            let minimum = try SoftwareVersion(requirement.minimumVersion)
            let lowest = packages.filter { $0.entry.manifest.name == requirement.name && $0.version >= minimum }
                .min { $0.version < $1.version }
            if let lowest { order.append(lowest.entry) }
        }
        order.append(site)
        var installed: [String] = []
        for entry in order {
            let manifest = entry.manifest
            guard
                await environment.confirm(
                    "Install \(manifest.name) \(manifest.version) and accept its EULA?\n\(manifest.eula)"
                )
            else {
                throw MigrationError(.declined, "the EULA of \(manifest.name) was not accepted; nothing was installed")
            }
            let connection = try await newSession()
            do {
                let result = try await connection.installPackage(
                    fromFile: directory.appendingPathComponent(entry.file).path,
                    acceptEula: true
                )
                installed.append("\(result.name) \(result.version)")
                environment.events(.note("installed \(result.name) \(result.version) on \(name) (uploaded)"))
            } catch let error as ApplianceClientError where manifest.kind != .site && error.apiStatus == 409 {
                environment.events(.note("\(manifest.name) \(manifest.version) not needed: \(error.message)"))
            }
        }
        let status: StatusResponse = try await newSession().call(.status)
        guard status.software.siteVersion == wanted else {
            throw MigrationError(.package, "\(name) runs site version \(status.software.siteVersion) after step 5")
        }
        return ["siteVersion": wanted, "installed": installed.joined(separator: ", "), "from": directory.path]
    }

    // MARK: 6 Restore

    /// Whether the new box already holds what a restore brings of the old box's site.
    func restoredAlready() async throws -> Bool {
        try await afterACutOffRestore {
            let oldSummary: SiteSummary = try await oldSession().call(.siteSummary)
            let current: SiteSummary = try await newSession().call(.siteSummary)
            return Self.siteMatches(current, oldSummary)
        }
    }

    /// Runs `body` again with a new session when the new box ended the one it used (401): a restore cut off by a
    /// kill is undone by the box when it notices, and sessions live in the site database, so a session opened
    /// while the undo swaps that database back is gone a moment later (seen once in a full local run).
    func afterACutOffRestore<T>(_ body: () async throws -> T) async throws -> T {
        var attempt = 0
        while true {
            do {
                return try await body()
            } catch let error as ApplianceClientError where error.apiStatus == 401 && attempt < 5 {
                attempt += 1
                environment.events(.note("\(settings.new.name) ended the session (\(error.message)); logging in again"))
                try await Task.sleep(for: .seconds(1))
            }
        }
    }

    func restore() async throws -> [String: String] {
        try await afterACutOffRestore { try await restoreOnce() }
    }

    private func restoreOnce() async throws -> [String: String] {
        if try await restoredAlready() {
            environment.events(.note("\(settings.new.name) already holds the restored site"))
            return ["restored": "already"]
        }
        let connection = try await newSession()
        let file = try required(facts.backupFile, "backupFile")
        let size = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? NSNumber)?.int64Value
        let label = "restore into \(settings.new.name)"
        let result = try await connection.restore(
            file: file,
            password: secrets.backupPassword,
            progress: environment.progress(label, kind: "restore", total: size)
        )
        environment.events(.transferFinished(label: label))
        return [
            "restored": result.counts.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
                .joined(separator: ",")
        ]
    }

    /// The parts of a site a restore brings: settings, users, history.
    static func siteMatches(_ a: SiteSummary, _ b: SiteSummary) -> Bool {
        a.settingsDigest == b.settingsDigest && a.usersDigest == b.usersDigest && a.historyDigest == b.historyDigest
            && a.historyRows == b.historyRows
    }

    // MARK: Transfer (X2)

    func transfer() async throws -> [String: String] {
        let oldConnection = try await oldSession()
        let newConnection = try await newSession()
        let mover = FileMover(
            from: oldConnection,
            to: newConnection,
            staging: environment.runDirectory.appendingPathComponent("transfer"),
            environment: environment
        )
        let files = try await mover.move(list: .listFiles, get: .getFile, put: .putFile, what: "file store")
        let recordings = try await mover.move(
            list: .listRecordings,
            get: .getRecording,
            put: .putRecording,
            what: "recordings"
        )
        return [
            "filesMoved": "\(files.count)",
            "recordingsMoved": "\(recordings.count)",
            "bytesMoved": "\(files.bytes + recordings.bytes)",
        ]
    }
}
