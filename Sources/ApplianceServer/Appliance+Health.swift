public import ApplianceAPI
import ApplianceStore
import Foundation

/// A1: the health probe and the status page's facts.
extension Appliance {
    /// A1 health: "failing" (500) when the stores cannot be read, "self_test_failed" (500) while the last
    /// installed package's self-test has failed (X4), "degraded" (still 200: the box serves, but writes may soon
    /// fail) when the data file system runs low on space, "ok" otherwise.
    public func health() -> (healthy: Bool, response: HealthResponse) {
        let hostname = (try? box.networkSettings().hostname) ?? "unknown"
        do {
            _ = try box.installedSoftware()
            _ = try site.securityPolicy()
            if let failure = selfTestFailure() {
                // X4: the installed package says it does not work; an upgrade run rolls back on this.
                return (
                    false,
                    HealthResponse(
                        status: "self_test_failed",
                        applianceId: applianceId,
                        hostname: hostname,
                        reason: failure
                    )
                )
            }
            let maintenance = gate.status
            let problems = served.problems
            var reasons = problems.map(\.message)
            let lowSpace = lowSpaceReason()
            if let lowSpace { reasons.append(lowSpace) }
            if maintenance.enabled { reasons.append(maintenance.refusal) }
            // Still serving in every case (the factory certificate stands in for an unusable one), so 200; the
            // status and reason say what the operator must know or fix.
            return (
                true,
                HealthResponse(
                    status: !problems.isEmpty || lowSpace != nil
                        ? "degraded" : maintenance.enabled ? "maintenance" : "ok",
                    applianceId: applianceId,
                    hostname: hostname,
                    reason: reasons.isEmpty ? nil : reasons.joined(separator: "; "),
                    maintenance: maintenance.enabled ? maintenance : nil,
                    certificateProblems: problems.isEmpty ? nil : problems,
                    failover: failoverHealth()
                )
            )
        } catch {
            return (
                false,
                HealthResponse(status: "failing", applianceId: applianceId, hostname: hostname, reason: "\(error)")
            )
        }
    }

    /// Why free space on the data file system is too low, nil while there is enough.
    func lowSpaceReason() -> String? {
        guard let space = DiskSpace.of(directory.root) else { return nil }
        let limit = configuration.minimumFreeBytes
        guard space.freeBytes < limit else { return nil }
        return "low disk space: \(DiskSpace.format(space.freeBytes)) of \(DiskSpace.format(space.totalBytes)) free "
            + "on the data file system (below \(DiskSpace.format(limit))); backups, restores and uploads may be "
            + "refused with 507; delete files or recordings or grow the disk"
    }

    public func status() throws -> StatusResponse {
        let settings = try box.networkSettings()
        return StatusResponse(
            hostname: settings.hostname,
            applianceId: applianceId,
            software: try box.installedSoftware(),
            clock: ClockStatus(
                utc: Date(),
                ntpServers: settings.ntpServers,
                lastNtpSync: nil,
                source: "host clock: applianced runs as a process, the host keeps time"
            ),
            uptimeSeconds: Date().timeIntervalSince(startedAt),
            failoverRole: failoverRole,
            storage: Self.storage(of: directory.root.path),
            maintenance: gate.status,
            certificateProblems: served.problems.isEmpty ? nil : served.problems
        )
    }

    static func storage(of path: String) -> StorageStatus? {
        var stats = statvfs()
        guard statvfs(path, &stats) == 0 else { return nil }
        let block = Int64(stats.f_frsize)
        return StorageStatus(totalBytes: Int64(stats.f_blocks) * block, freeBytes: Int64(stats.f_bavail) * block)
    }
}
