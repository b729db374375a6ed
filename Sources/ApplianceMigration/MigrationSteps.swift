import ApplianceAPI
import ApplianceClient
import ApplianceInventory
import BackupFormat
import Foundation
import ProcedureEngine
import SoftwarePackages

extension MigrationProcedure {
    // MARK: Pre-flight

    /// Reachability, credentials, versions, clocks and local disk space; changes nothing.
    func preflight() async throws -> [String: String] {
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
        let name = settings.new.name
        let fix =
            settings.new.isVirtual
            ? "raise its disk_gib in the inventory, remove it (appliancectl destroy \(name)), then run resume"
            : "free space on it or choose another target, then run resume"
        return "\(name) has \(storage.freeBytes / 1_048_576) MiB free for site data and \(old.name)'s site needs "
            + "about \(siteBytes / 1_048_576) MiB; \(fix)"
    }

    /// A physical target must be another appliance, factory-fresh (or empty), not newer than the old one.
    /// A factory-fresh box answers nothing but its health probe until step 1 sets its password.
    func newBoxProblems(oldStatus status: StatusResponse, siteBytes: Int64) async throws -> [String] {
        let name = settings.new.name
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
        } else if newVersion < oldVersion && settings.repository == nil {
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
        if settings.new.isVirtual {
            guard let installVirtual = services.installVirtual else {
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
        if let siteBytes = facts.siteBytes,
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

    /// The backup downloaded before an interruption, if it is there, whole and of the old box.
    func provenBackup() throws -> BackupVerification? {
        let oldId = try required(facts.oldApplianceId, "oldApplianceId")
        return ProvenBackup.existing(file: backupFile, password: secrets.backupPassword, applianceId: oldId)
    }

    func backup() async throws -> [String: String] {
        let oldId = try required(facts.oldApplianceId, "oldApplianceId")
        if let proven = try provenBackup() {
            environment.events(.note("the backup downloaded before the interruption is intact; not downloading again"))
            return backupFacts(proven)
        }
        let proven = try await ProvenBackup.download(
            BackupRequest(password: secrets.backupPassword, includeHistory: settings.includeHistory),
            from: try await oldSession(),
            box: old.name,
            applianceId: oldId,
            to: backupFile,
            environment: environment
        )
        return backupFacts(proven)
    }

    func backupFacts(_ proven: BackupVerification) -> [String: String] {
        ProvenBackup.facts(proven, file: backupFile)
    }
}
