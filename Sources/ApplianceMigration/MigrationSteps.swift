import ApplianceAPI
import ApplianceClient
import BackupFormat
import Foundation
import SoftwarePackages

extension MigrationRunner {
    // MARK: Pre-flight

    /// Reachability, credentials, versions, clocks and local disk space; changes nothing.
    func preflight() async throws -> [String: String] {
        let settings = record.settings
        let connection = try await oldSession()
        let status: StatusResponse = try await connection.call(.status)
        let summary: SiteSummary = try await connection.call(.siteSummary)
        var problems: [String] = []
        let skew = abs(status.clock.utc.timeIntervalSinceNow)
        if skew > 300 {
            problems.append(
                "\(old.name)'s clock is \(Int(skew)) s off this machine's; fix its NTP settings (certificates and "
                    + "download keys depend on it)"
            )
        }
        let free = Self.freeBytes(environment.runDirectory)
        let largest = try await largestItem(connection)
        let needed = summary.fileBytes + Int64(summary.historyRows) * 512 + largest + 64 * 1024 * 1024
        if free < needed {
            problems.append(
                "\(environment.runDirectory.path) has \(free / 1_048_576) MiB free; the backup and transfer "
                    + "staging need about \(needed / 1_048_576) MiB — free space or use another --state-dir"
            )
        }
        if let repository = settings.repository, !repository.contains("://") {
            var isDirectory: ObjCBool = false
            if !FileManager.default.fileExists(atPath: repository, isDirectory: &isDirectory) || !isDirectory.boolValue
            {
                problems.append("the package repository \(repository) is not a directory; fix packages.repository")
            }
        }
        let siteBytes = Self.siteBytes(summary)
        if !settings.new.isVirtual {
            problems += try await newBoxProblems(oldStatus: status, siteBytes: siteBytes)
        }
        guard problems.isEmpty else {
            throw MigrationError(
                .preflight,
                "pre-flight failed, nothing was changed:\n  " + problems.joined(separator: "\n  ")
            )
        }
        return [
            "oldApplianceId": status.applianceId,
            "oldHostname": status.hostname,
            "oldSiteVersion": status.software.siteVersion,
            "oldBaseVersion": status.software.baseVersion,
            "oldPin": old.pin.description,
            "clockSkewSeconds": String(format: "%.1f", skew),
            "freeMiB": "\(free / 1_048_576)",
            "siteBytes": "\(siteBytes)",
        ]
    }

    /// About what the old site takes on the new appliance: files, recordings, the database (estimated from its
    /// history rows, twice: restore stages it before switching it in) and a margin.
    static func siteBytes(_ summary: SiteSummary) -> Int64 {
        summary.fileBytes + summary.recordingBytes + Int64(summary.historyRows) * 2 * 512 + 64 * 1_048_576
    }

    /// Why the new appliance cannot take the old site, if it cannot: its data file system is too small.
    /// Appliances that do not report their storage cannot be checked here (restore then fails cleanly if full).
    func roomProblem(_ status: StatusResponse, siteBytes: Int64) -> String? {
        guard let storage = status.storage, storage.freeBytes < siteBytes else { return nil }
        let name = record.settings.new.name
        let fix =
            record.settings.new.isVirtual
            ? "raise its disk_gib in the inventory, remove it (appliancectl destroy \(name)), then run resume"
            : "free space on it or choose another target, then run resume"
        return "\(name) has \(storage.freeBytes / 1_048_576) MiB free for site data and \(old.name)'s site needs "
            + "about \(siteBytes / 1_048_576) MiB; \(fix)"
    }

    /// A physical target must be another appliance, factory-fresh (or empty), not newer than the old one.
    /// A factory-fresh box answers nothing but its health probe until step 1 sets its password.
    func newBoxProblems(oldStatus status: StatusResponse, siteBytes: Int64) async throws -> [String] {
        let name = record.settings.new.name
        var box = try newBox()
        defer { new = box }
        var problems: [String] = []
        let (_, health, _) = try await box.connection().health()
        if health.applianceId == status.applianceId {
            problems.append("\(name) and \(old.name) are the same appliance; fix the inventory")
        }
        if try await box.hasFactoryPassword() { return problems }
        let connection = try await box.session()
        let newStatus: StatusResponse = try await connection.call(.status)
        if let problem = roomProblem(newStatus, siteBytes: siteBytes) { problems.append(problem) }
        let newVersion = try SoftwareVersion(newStatus.software.siteVersion)
        let oldVersion = try SoftwareVersion(status.software.siteVersion)
        if newVersion > oldVersion {
            problems.append(
                "\(name) runs site version \(newStatus.software.siteVersion), newer than \(old.name)'s "
                    + "\(status.software.siteVersion); a migration needs the same version"
            )
        } else if newVersion < oldVersion && record.settings.repository == nil {
            problems.append(
                "\(name) runs site version \(newStatus.software.siteVersion) and needs "
                    + "\(status.software.siteVersion); give packages.repository in the playbook"
            )
        }
        let summary: SiteSummary = try await connection.call(.siteSummary)
        if summary.historyRows > 0 || summary.fileCount > 0 || summary.recordingCount > 0 {
            problems.append(
                "\(name) already holds site data; a migration target must be factory-fresh (factory-reset it first)"
            )
        }
        return problems
    }

    func largestItem(_ connection: ApplianceConnection) async throws -> Int64 {
        let files: [StoredFileInfo] = try await connection.call(.listFiles)
        let recordings: [StoredFileInfo] = try await connection.call(.listRecordings)
        return (files + recordings).map(\.size).max() ?? 0
    }

    static func freeBytes(_ directory: URL) -> Int64 {
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let values = try? FileManager.default.attributesOfFileSystem(forPath: directory.path)
        return (values?[.systemFreeSize] as? NSNumber)?.int64Value ?? 0
    }

    // MARK: 1 Install

    func install() async throws -> [String: String] {
        let settings = record.settings
        if settings.new.isVirtual {
            guard let installVirtual = environment.installVirtual else {
                throw MigrationError(.appliance, "no hypervisor to provision \(settings.new.name) on")
            }
            let reference = try await installVirtual()
            guard let address = reference.address, let pin = reference.pin.flatMap(TLSPin.init) else {
                throw MigrationError(.appliance, "provisioning \(settings.new.name) returned no address")
            }
            new = try BoxClient(
                name: reference.name,
                address: address,
                pin: pin,
                passwords: [secrets.newPassword, secrets.oldPassword]
            )
        } else {
            var box = try newBox()
            if try await box.hasFactoryPassword() {
                let connection = try await box.connection()
                let login = try await connection.login(username: "admin", password: "password")
                try await connection.authenticated(login.token).perform(
                    .changePassword,
                    body: ChangePasswordRequest(currentPassword: "password", newPassword: secrets.newPassword)
                )
                environment.events(.note("\(box.name): factory password replaced by the inventory's"))
            }
            new = box
        }
        let connection = try await newSession()
        let status: StatusResponse = try await connection.call(.status)
        // Before anything is copied: the site must fit (a factory-fresh target could not be asked in pre-flight).
        if let siteBytes = facts["siteBytes"].flatMap(Int64.init),
            let problem = roomProblem(status, siteBytes: siteBytes)
        {
            throw MigrationError(.appliance, problem)
        }
        let box = try newBox()
        var result = ["newAddress": box.address, "newPin": box.pin.description, "newApplianceId": status.applianceId]
        if let storage = status.storage { result["newFreeMiB"] = "\(storage.freeBytes / 1_048_576)" }
        return result
    }

    // MARK: 2 Backup, proven restorable (X1)

    var backupFile: URL { environment.runDirectory.appendingPathComponent("old.backup") }

    func backup() async throws -> [String: String] {
        let file = backupFile.path
        let oldId = try fact("oldApplianceId")
        // A complete download is renamed into place, so a file here is whole; prove it before trusting it.
        if FileManager.default.fileExists(atPath: file),
            let proven = try? BackupVerifier.verify(file: file, password: secrets.backupPassword),
            proven.manifest.applianceId == oldId
        {
            environment.events(.note("the backup downloaded before the interruption is intact; not downloading again"))
            return backupFacts(proven)
        }
        try? FileManager.default.removeItem(atPath: file)
        let connection = try await oldSession()
        let label = "backup \(old.name)"
        _ = try await connection.backup(
            BackupRequest(password: secrets.backupPassword, includeHistory: record.settings.includeHistory),
            to: file,
            progress: environment.progress(label, kind: "backup", total: nil)
        )
        environment.events(.transferFinished(label: label))
        let proven: BackupVerification
        do {
            proven = try BackupVerifier.verify(file: file, password: secrets.backupPassword)
        } catch {
            try? FileManager.default.removeItem(atPath: file)
            throw MigrationError(.backup, "the backup of \(old.name) is not restorable: \(error); the run stops here")
        }
        guard proven.manifest.applianceId == oldId else {
            throw MigrationError(.backup, "the backup came from another appliance (\(proven.manifest.applianceId))")
        }
        return backupFacts(proven)
    }

    func backupFacts(_ proven: BackupVerification) -> [String: String] {
        [
            "backupFile": backupFile.path,
            "backupBytes": "\(proven.fileBytes)",
            "backupSHA256": proven.fileSHA256,
            "backupMembers": "\(proven.memberCount)",
            "backupSiteVersion": proven.manifest.siteVersion,
            "backupCounts": proven.manifest.counts.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
                .joined(separator: ","),
            "oldApplianceId": proven.manifest.applianceId,
        ]
    }

    // MARK: 3 Certificate

    /// The certificate the old box serves on the address we reach it by.
    func activeCertificate(_ connection: ApplianceConnection) async throws -> CertificateEntry {
        let certificates: [CertificateEntry] = try await connection.call(.listCertificates)
        let (pin, _) = try await PinnedHTTPClient.fetchPeerCertificate(host: old.host, port: old.port)
        guard let served = certificates.first(where: { $0.details.pin == pin.description }) else {
            throw MigrationError(.certificate, "\(old.name) serves a certificate it does not list; check it by hand")
        }
        return served
    }

    func moveCertificate() async throws -> [String: String] {
        let oldConnection = try await oldSession()
        let active = try await activeCertificate(oldConnection)
        if active.isFactory {
            environment.events(
                .note("\(old.name) serves its factory certificate; the new appliance keeps its own factory one")
            )
            return ["certificate": "factory"]
        }
        let newConnection = try await newSession()
        let existing: [CertificateEntry] = try await newConnection.call(.listCertificates)
        if let found = existing.first(where: { $0.details.sha256Fingerprint == active.details.sha256Fingerprint }) {
            return certificateFacts(found)
        }
        let passphrase = secrets.certificatePassphrase ?? UUID().uuidString + UUID().uuidString
        let exported = try await oldConnection.send(
            .exportCertificate,
            parameters: ["id": "\(active.id)"],
            body: CertificateExportRequest(format: .pem, includeChain: true, includeKey: true, passphrase: passphrase)
        )
        let imported: CertificateEntry = try await newConnection.call(
            .importCertificate,
            body: CertificateImportRequest(
                name: active.name,
                pem: String(decoding: exported.body, as: UTF8.self),
                passphrase: passphrase
            )
        )
        return certificateFacts(imported)
    }

    func certificateFacts(_ entry: CertificateEntry) -> [String: String] {
        [
            "certificate": entry.name,
            "certificateId": "\(entry.id)",
            "certificateFingerprint": entry.details.sha256Fingerprint,
            "certificatePin": entry.details.pin,
        ]
    }

    // MARK: 4 Address

    func assignAddress() async throws -> [String: String] {
        var detail: [String: String] = [:]
        // Assigning the certificate changes the key the box presents from the next handshake on.
        if let certificatePin = facts["certificatePin"].flatMap(TLSPin.init) {
            new?.acceptablePins = [certificatePin]
        }
        var connection = try await newSession()
        var network: NetworkResponse = try await connection.call(.network)
        if record.settings.hostnameFromOld {
            let hostname = try fact("oldHostname")
            if network.settings.hostname != hostname {
                var settings = network.settings
                settings.hostname = hostname
                try await connection.perform(.updateNetworkSettings, body: settings)
                network = try await connection.call(.network)
            }
            detail["newHostname"] = hostname
        }
        guard facts["certificate"] != "factory" else { return detail }
        let certificateId = try fact("certificateId")
        let entry = try newAddressEntry(network)
        if entry.certificateId.map(String.init) != certificateId {
            try await connection.perform(
                .assignCertificate,
                parameters: ["id": "\(entry.id)"],
                body: CertificateAssignment(certificateId: Int64(certificateId))
            )
            connection = try await newSession()
        }
        let certificates: [CertificateEntry] = try await connection.call(.listCertificates)
        guard let assigned = certificates.first(where: { "\($0.id)" == certificateId }) else {
            throw MigrationError(.certificate, "the imported certificate #\(certificateId) is gone from the new box")
        }
        if !assigned.warnings.isEmpty {
            try await connection.perform(
                .assignCertificate,
                parameters: ["id": "\(entry.id)"],
                body: CertificateAssignment(certificateId: entry.certificateId)
            )
            throw MigrationError(
                .certificate,
                "the certificate has warnings on \(record.settings.new.name), so it was not left assigned: "
                    + assigned.warnings.map(\.message).joined(separator: "; ")
            )
        }
        // The next handshake presents the certificate's key: check it is served, then pin it.
        var box = try newBox()
        guard let pin = TLSPin(assigned.details.pin) else {
            throw MigrationError(.certificate, "the certificate's pin \(assigned.details.pin) cannot be read")
        }
        box.acceptablePins = [pin]
        let host = box.host
        let port = box.port
        let served = try await waitUntil(tries: 20, every: .milliseconds(250)) {
            (try? await PinnedHTTPClient.fetchPeerCertificate(host: host, port: port).pin) == pin
        }
        guard served else {
            throw MigrationError(.certificate, "\(box.address) does not serve the assigned certificate")
        }
        box.pin = pin
        new = box
        try environment.recordPin(box.name, box.address, pin.description)
        detail["newPin"] = pin.description
        detail["assignedTo"] = entry.address
        return detail
    }

    /// The new box's address entry that clients reach: the one we talk to, or its only enabled one (a VM behind
    /// a port forward answers on 127.0.0.1 but listens on its guest address).
    func newAddressEntry(_ network: NetworkResponse) throws -> AddressEntry {
        let box = try newBox()
        if let entry = network.addresses.first(where: { $0.address == box.host && $0.enabled }) { return entry }
        let enabled = network.addresses.filter { $0.enabled && $0.access.servesAppliance }
        guard enabled.count == 1 else {
            throw MigrationError(
                .appliance,
                "cannot tell which of \(record.settings.new.name)'s addresses clients use; reach it by that address"
            )
        }
        return enabled[0]
    }

    // MARK: 5 Package

    func installPackage() async throws -> [String: String] {
        let wanted = try fact("oldSiteVersion")
        var connection = try await newSession()
        var status: StatusResponse = try await connection.call(.status)
        if status.software.siteVersion == wanted { return ["siteVersion": wanted, "installed": "none needed"] }
        guard let repository = record.settings.repository else {
            throw MigrationError(
                .package,
                "\(record.settings.new.name) runs site version \(status.software.siteVersion), \(old.name) "
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
            environment.events(.note("installed \(result.name) \(result.version) on \(record.settings.new.name)"))
            connection = try await newSession()  // an install logs every user out
            status = try await connection.call(.status)
            if status.software.siteVersion == wanted { break }
        }
        guard status.software.siteVersion == wanted else {
            throw MigrationError(
                .package,
                "\(repository) offers no package that brings \(record.settings.new.name) from site version "
                    + "\(status.software.siteVersion) to \(wanted); add it to the repository"
            )
        }
        return ["siteVersion": wanted, "installed": installed.joined(separator: ", ")]
    }

    /// Step 5 from a repository directory on this machine: the packages are uploaded (the appliance's manual
    /// install), dependencies first, so an appliance without a network path to the repository gets them too.
    func installOffline(from directory: URL, wanted: String) async throws -> [String: String] {
        let name = record.settings.new.name
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

    func restore() async throws -> [String: String] {
        let oldSummary: SiteSummary = try await oldSession().call(.siteSummary)
        let connection = try await newSession()
        let current: SiteSummary = try await connection.call(.siteSummary)
        if Self.siteMatches(current, oldSummary) {
            environment.events(.note("\(record.settings.new.name) already holds the restored site"))
            return ["restored": "already"]
        }
        let file = try fact("backupFile")
        let size = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? NSNumber)?.int64Value
        let label = "restore into \(record.settings.new.name)"
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
