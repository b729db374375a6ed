import ApplianceAPI
import ApplianceClient
import ApplianceInventory
import BackupFormat
import Foundation
import ProcedureEngine

/// What the upgrade of one box is asked to do (the single upgrade's settings, or one box of a pair's).
struct BoxUpgradeOptions: Sendable, Equatable {
    var target: String?
    var repository: String?
    var includeHistory: Bool
    var rollback: UpgradeRollback
    var healthTimeoutSeconds: Int
    /// Offline: packages fetched on this machine and uploaded; nil: the box installs from its update source.
    var offline: UpgradeOffline? = nil
}

/// Settings that say how each box is upgraded (the single upgrade's, a pair's).
protocol BoxUpgradeSource {
    var target: String? { get }
    var repository: String? { get }
    var includeHistory: Bool { get }
    var rollback: UpgradeRollback { get }
    var healthTimeoutSeconds: Int { get }
    var offline: UpgradeOffline? { get }
}

extension BoxUpgradeSource {
    /// Online unless the settings say otherwise (a pair always upgrades online).
    var offline: UpgradeOffline? { nil }

    var options: BoxUpgradeOptions {
        BoxUpgradeOptions(
            target: target,
            repository: repository,
            includeHistory: includeHistory,
            rollback: rollback,
            healthTimeoutSeconds: healthTimeoutSeconds,
            offline: offline
        )
    }
}

/// The upgrade of one appliance as steps over one `BoxClient`: pre-flight, proven backup, install, verify, and
/// the automatic rollback (X4). `UpgradeProcedure` runs one; `PairUpgradeProcedure` runs one for each box of a
/// failover pair. Facts it learns are journaled under `prefix` (empty for the single upgrade, `a.`/`b.` for a
/// pair), so two of them share one journal.
actor BoxUpgrade {
    let options: BoxUpgradeOptions
    let environment: RunEnvironment
    let backupPassword: String
    let prefix: String
    var facts: UpgradeFacts
    var box: BoxClient
    /// What the automatic rollback did, for the run's closing message.
    var rollbackLine: String?
    /// This process began (or reconciled) the install: the box may run new software.
    var installBegun = false

    init(
        box: BoxClient,
        options: BoxUpgradeOptions,
        facts: StepDetail,
        prefix: String,
        backupPassword: String,
        backupFile: URL? = nil,
        environment: RunEnvironment
    ) throws {
        self.box = box
        let stem = prefix.isEmpty ? "pre-upgrade" : "pre-upgrade-\(prefix.dropLast())"
        self.backupFile = backupFile ?? environment.runDirectory.appendingPathComponent("\(stem).backup")
        self.options = options
        self.prefix = prefix
        self.facts = try UpgradeFacts(Self.unprefixed(facts, prefix))
        self.backupPassword = backupPassword
        self.environment = environment
    }

    var name: String { box.name }
    var address: String { box.address }
    var fileStem: String { prefix.isEmpty ? "pre-upgrade" : "pre-upgrade-\(prefix.dropLast())" }
    /// The pre-upgrade backup: this box's own, or (for the backup box of a pair) the primary's, which holds the
    /// same site.
    let backupFile: URL
    /// The served certificate with key and chain, encrypted with the backup password (PKCS#8), for the run.
    var certificateFile: URL { environment.runDirectory.appendingPathComponent("\(fileStem)-certificate.pem") }

    /// The keys of `detail` that start with `prefix`, without it.
    static func unprefixed(_ detail: StepDetail, _ prefix: String) -> StepDetail {
        guard !prefix.isEmpty else { return detail }
        var result: StepDetail = [:]
        for (key, value) in detail where key.hasPrefix(prefix) { result[String(key.dropFirst(prefix.count))] = value }
        return result
    }

    /// `detail` with every key under this box's prefix.
    func prefixed(_ detail: StepDetail) -> StepDetail {
        guard !prefix.isEmpty else { return detail }
        return Dictionary(uniqueKeysWithValues: detail.map { (prefix + $0.key, $0.value) })
    }

    func session() async throws -> ApplianceConnection {
        var current = box
        defer { box = current }
        return try await current.session()
    }

    func connection() async throws -> ApplianceConnection {
        var current = box
        defer { box = current }
        return try await current.connection()
    }

    func snapshot() async -> BoxSnapshot {
        var current = box
        let snapshot = await BoxSnapshot.take(&current, factoryFirst: false)
        box = current
        return snapshot
    }

    /// Does one of the upgrade's steps on this box; the detail is under this box's prefix.
    func perform(_ step: UpgradeStep, context: StepContext) async throws -> StepDetail {
        let detail =
            switch step {
            case .preflight: try await preflight()
            case .backup: try await backup()
            case .install: try await install(context: context)
            case .verify: try await verify()
            }
        return prefixed(detail)
    }

    /// Reads the site data again as the baseline the verification and the rollback compare with (a box of a
    /// pair syncs or serves between its pre-flight and its install). Returns it for the journal.
    func rebaseline() async throws -> StepDetail {
        let summary: SiteSummary = try await session().call(.siteSummary)
        facts.summaryBefore = summary
        return prefixed(["summaryBefore": UpgradeFacts.encode(summary)])
    }

    // MARK: Resume

    /// The backup in the run directory, proven again; nil when it is not there (or not whole).
    func reconcileBackup() async throws -> Reconciliation {
        let id = try facts.required(facts.applianceId, "applianceId")
        guard let proven = ProvenBackup.existing(file: backupFile, password: backupPassword, applianceId: id)
        else { return .redo }
        return .finished(
            prefixed(ProvenBackup.facts(proven, file: backupFile).merging(try await exportCertificate()) { $1 })
        )
    }

    /// The install is finished when the box has every planned version.
    func reconcileInstall() async throws -> Reconciliation {
        installBegun = true
        let plan = try facts.required(facts.plan, "plan")
        guard UpgradePlanning.missing(plan, installed: try await installedVersions()).isEmpty else { return .redo }
        return .finished(
            prefixed(["installed": plan.map(\.label).joined(separator: ", "), "reconciled": "versions read on the box"])
        )
    }

    // MARK: Pre-flight

    /// Healthy, logged in, versions read; a downgrade is refused before the update source is touched, an unknown
    /// target or a missing dependency once the box has checked its source. Changes nothing else.
    func preflight() async throws -> StepDetail {
        let (healthy, health, pin) = try await connection().health()
        guard healthy else {
            throw MigrationError(
                .preflight,
                "\(box.name) is not healthy (\(health.status): \(health.reason ?? "no reason given")); fix it before "
                    + "upgrading, nothing was changed"
            )
        }
        let connection = try await session()
        let status: StatusResponse = try await connection.call(.status)
        if let refusal = UpgradePlanning.downgradeRefusal(
            box: box.name,
            target: options.target,
            installed: status.software.siteVersion
        ) {
            throw MigrationError(.refused, refusal)
        }
        // The source the box had, to put back when the plan is refused (a box without one cannot be cleared).
        var previousSource: String??
        var offline: OfflinePlan?
        if let settings = options.offline {
            offline = try await offlinePlan(settings, connection: connection, applianceId: status.applianceId)
        } else if let repository = options.repository {
            let before: UpdatesResponse? = try? await connection.call(.updates)
            if before?.source != repository {
                previousSource = .some(before?.source)
                try await connection.perform(.setUpdateSource, body: UpdateSourceRequest(repository: repository))
            }
        }
        let updates: UpdatesResponse
        if let offline { updates = offline.updates } else { updates = try await connection.call(.updates) }
        let plan: [UpgradePlanEntry]
        switch UpgradePlanning.plan(
            box: box.name,
            target: options.target,
            installed: status.software,
            updates: updates
        ) {
        case .success(let planned): plan = planned
        case .failure(var refusal):
            if let previousSource, let repository = options.repository {
                if let previous = previousSource {
                    try await connection.perform(.setUpdateSource, body: UpdateSourceRequest(repository: previous))
                    refusal.message += "; the update source was put back to \(previous)"
                } else {
                    refusal.message +=
                        "; the one change: the update source is now \(repository) (\(box.name) had none before)"
                }
            }
            throw refusal
        }
        var fetched: StepDetail = [:]
        if let offline { fetched = try await fetchOffline(plan, offline) }
        let summary: SiteSummary = try await connection.call(.siteSummary)
        facts.applianceId = status.applianceId
        facts.softwareBefore = status.software
        facts.summaryBefore = summary
        facts.pinBefore = pin.description
        facts.plan = plan
        return [
            "applianceId": status.applianceId,
            "softwareBefore": UpgradeFacts.encode(status.software),
            "summaryBefore": UpgradeFacts.encode(summary),
            "pinBefore": pin.description,
            "plan": UpgradeFacts.encode(plan),
            "planText": plan.map(\.label).joined(separator: ", "),
            "updateSource": updates.source ?? "none",
        ].merging(fetched) { $1 }
    }

    // MARK: Backup

    /// The migration's backup and proof (X1), into this run's directory.
    func backup() async throws -> StepDetail {
        let id = try facts.required(facts.applianceId, "applianceId")
        if let proven = ProvenBackup.existing(file: backupFile, password: backupPassword, applianceId: id) {
            environment.events(.note("the backup downloaded before the interruption is intact; not downloading again"))
            return ProvenBackup.facts(proven, file: backupFile).merging(try await exportCertificate()) { $1 }
        }
        let proven = try await ProvenBackup.download(
            BackupRequest(password: backupPassword, includeHistory: options.includeHistory),
            from: try await session(),
            box: box.name,
            applianceId: id,
            to: backupFile,
            environment: environment
        )
        facts.backupFile = backupFile.path
        return ProvenBackup.facts(proven, file: backupFile).merging(try await exportCertificate()) { $1 }
    }

    /// The manual's "Aktualisierungsvorbereitung": the certificate the box serves, with its key and chain, kept
    /// in the run directory (0600) under the backup password as its passphrase. A factory certificate is not kept:
    /// the box makes a new one on a reset anyway.
    func exportCertificate() async throws -> StepDetail {
        if FileManager.default.fileExists(atPath: certificateFile.path) {
            return ["certificateExport": certificateFile.path]
        }
        let connection = try await session()
        let certificates: [CertificateEntry] = try await connection.call(.listCertificates)
        guard let served = certificates.first(where: { $0.details.pin == facts.pinBefore }) else {
            throw MigrationError(.certificate, "\(box.name) serves a certificate it does not list; check it by hand")
        }
        if served.isFactory { return ["certificateExport": "none (the box serves its factory certificate)"] }
        let exported = try await connection.send(
            .exportCertificate,
            parameters: ["id": "\(served.id)"],
            body: CertificateExportRequest(
                format: .pem,
                includeChain: true,
                includeKey: true,
                passphrase: backupPassword
            )
        )
        let partial = certificateFile.appendingPathExtension("part")
        guard
            FileManager.default.createFile(
                atPath: partial.path,
                contents: Data(exported.body),
                attributes: [
                    .posixPermissions: 0o600
                ]
            )
        else {
            throw MigrationError(.certificate, "cannot write \(partial.path); check the state directory's free space")
        }
        try FileManager.default.moveItem(at: partial, to: certificateFile)
        return ["certificateExport": certificateFile.path, "certificateName": served.name]
    }

    // MARK: Install

    /// The planned packages the box does not have yet, in order, each EULA shown and accepted explicitly. A
    /// failed self-test stops here (the box answers 500 `self_test_failed`).
    func install(context: StepContext) async throws -> StepDetail {
        installBegun = true
        if let offline = options.offline { return try await installOffline(offline, context: context) }
        let plan = try facts.required(facts.plan, "plan")
        var tally = InstallTally()
        for entry in plan {
            let connection = try await session()  // an install logs every user out
            let updates: UpdatesResponse = try await connection.call(.updates)
            guard !UpgradePlanning.missing([entry], installed: updates.installed).isEmpty else { continue }
            let eula = updates.updates.first { $0.name == entry.name }?.eula ?? "(the package's EULA)"
            guard await environment.confirm("Install \(entry.label) and accept its EULA?\n\(eula)") else {
                throw tally.declined(entry)
            }
            try context.journal(prefixed(["installing": entry.label]))
            let result: InstallResponse = try await connection.call(
                .installUpdate,
                body: InstallRequest(name: entry.name, version: entry.version, acceptEula: true)
            )
            environment.events(.note("installed \(result.name) \(result.version) on \(box.name)"))
            try tally.record(result, of: entry, box: box.name)
        }
        return tally.detail
    }

}
