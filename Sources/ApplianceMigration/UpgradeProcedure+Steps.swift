import ApplianceAPI
import ApplianceClient
import ApplianceInventory
import BackupFormat
import Foundation
public import ProcedureEngine

extension UpgradeProcedure {
    public func perform(_ step: UpgradeStep, context: StepContext) async throws -> StepDetail {
        switch step {
        case .preflight: try await preflight()
        case .backup: try await backup()
        case .install: try await install(context: context)
        case .verify: try await verify()
        }
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
            target: settings.target,
            installed: status.software.siteVersion
        ) {
            throw MigrationError(.refused, refusal)
        }
        // The source the box had, to put back when the plan is refused (a box without one cannot be cleared).
        var previousSource: String??
        var offline: OfflinePlan?
        if let settings = settings.offline {
            offline = try await offlinePlan(settings, connection: connection, applianceId: status.applianceId)
        } else if let repository = settings.repository {
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
            target: settings.target,
            installed: status.software,
            updates: updates
        ) {
        case .success(let planned): plan = planned
        case .failure(var refusal):
            if let previousSource, let repository = settings.repository {
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
            BackupRequest(password: backupPassword, includeHistory: settings.includeHistory),
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
        if let offline = settings.offline { return try await installOffline(offline, context: context) }
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
            try context.journal(["installing": entry.label])
            let result: InstallResponse = try await connection.call(
                .installUpdate,
                body: InstallRequest(name: entry.name, version: entry.version, acceptEula: true)
            )
            environment.events(.note("installed \(result.name) \(result.version) on \(box.name)"))
            try tally.record(result, of: entry, box: box.name)
        }
        return tally.detail
    }

    // MARK: Verify

    /// Polls `/health` until it answers 200, up to the settings' timeout; a failed self-test ends the wait at
    /// once. Returns the last answer and how long it took.
    func waitUntilHealthy() async throws -> (healthy: Bool, health: HealthResponse?, seconds: Double) {
        let start = ContinuousClock.now
        let deadline = start + .seconds(settings.healthTimeoutSeconds)
        var last: HealthResponse?
        while true {
            if let probe = try? await connection().health() {
                last = probe.health
                if probe.healthy || UpgradePlanning.healthIsFinal(probe.health) {
                    let elapsed = ContinuousClock.now - start
                    return (probe.healthy, probe.health, Double(elapsed.components.seconds))
                }
            }
            guard ContinuousClock.now < deadline else {
                return (false, last, Double(settings.healthTimeoutSeconds))
            }
            try await Task.sleep(for: .milliseconds(250))
        }
    }

    func verify() async throws -> StepDetail {
        let plan = try facts.required(facts.plan, "plan")
        let before = try facts.required(facts.summaryBefore, "summaryBefore")
        let (healthy, health, seconds) = try await waitUntilHealthy()
        guard healthy else {
            throw MigrationError(
                .upgrade,
                "\(box.name) is not healthy after the install: "
                    + (health.map { "\($0.status) (\($0.reason ?? "no reason given"))" }
                        ?? "no answer within \(settings.healthTimeoutSeconds) s")
            )
        }
        let connection = try await session()
        let installed = try await installedVersions()
        let missing = UpgradePlanning.missing(plan, installed: installed)
        guard missing.isEmpty else {
            throw MigrationError(
                .upgrade,
                "\(box.name) does not run the planned versions: "
                    + missing.map { "\($0.name) is \(installed[$0.name] ?? "absent"), not \($0.version)" }
                    .joined(separator: "; ")
            )
        }
        let summary: SiteSummary = try await connection.call(.siteSummary)
        let comparison = UpgradePlanning.dataComparison(before: before, after: summary)
        let differing = comparison.filter { !$0.matches }
        guard differing.isEmpty else {
            throw MigrationError(
                .upgrade,
                "the site data of \(box.name) changed in the upgrade: "
                    + differing.map { "\($0.item) \($0.old) → \($0.new)" }.joined(separator: "; ")
            )
        }
        let (_, _, pin) = try await self.connection().health()
        if let pinBefore = facts.pinBefore, pin.description != pinBefore {
            throw MigrationError(
                .upgrade,
                "\(box.name) no longer serves its certificate (key \(pinBefore) before, \(pin) now)"
            )
        }
        let status: StatusResponse = try await connection.call(.status)
        return [
            "healthySeconds": String(format: "%.0f", seconds),
            "softwareAfter": UpgradeFacts.encode(status.software),
            "comparison": UpgradeFacts.encode(comparison),
            "certificate": "still served (\(pin))",
        ]
    }
}
