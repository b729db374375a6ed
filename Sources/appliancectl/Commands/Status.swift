import ApplianceAPI
import ApplianceClient
import ArgumentParser

/// `appliancectl status ADDRESS`: health, and the status page when a password is available.
struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show an appliance's health and status (A1).")

    @OptionGroup var box: BoxOptions

    func run() async throws {
        let connection = try await box.connect()
        let (healthy, health, _) = try await connection.health()
        guard (try? box.password()) != nil else {
            if box.json {
                try printJSON(health)
            } else {
                print("\(box.address): \(health.status) \(health.hostname) id \(health.applianceId)")
                if let reason = health.reason { print("reason: \(reason)") }
            }
            if !healthy { throw ExitCode(ExitStatus.unhealthy) }
            return
        }
        let status: StatusResponse
        do {
            status = try await box.session().call(.status)
        } catch {
            // Health is known; the status page needs a working login.
            guard healthy else {
                Terminal.note("\(box.address): \(health.status); the status page needs a login: \(error)")
                throw ExitCode(ExitStatus.unhealthy)
            }
            throw CommandError("\(box.address) is healthy, but the status page needs a login: \(error)")
        }
        if box.json {
            try printJSON(status)
        } else {
            print("Appliance   \(status.hostname) (\(status.applianceId)) at \(box.address)")
            print("Health      \(health.status)\(health.reason.map { ": \($0)" } ?? "")")
            print("Software    base \(status.software.baseVersion), site \(status.software.siteVersion)")
            if !status.software.addons.isEmpty {
                print("Add-ons     \(status.software.addons.joined(separator: ", "))")
            }
            print("Clock       \(APICoding.formatDate(status.clock.utc)) (\(status.clock.source))")
            print("NTP         \(status.clock.ntpServers.joined(separator: ", "))")
            print("Uptime      \(Int(status.uptimeSeconds)) s")
            print("Failover    \(status.failoverRole)")
            if let maintenance = status.maintenance, maintenance.enabled {
                print(
                    "Maintenance on since \(maintenance.since.map(APICoding.formatDate) ?? "?"): \(maintenance.refusal)"
                )
            }
            if let storage = status.storage {
                print("Storage     \(storage.freeBytes / 1_048_576) MiB free of \(storage.totalBytes / 1_048_576) MiB")
            }
        }
        if !healthy { throw ExitCode(ExitStatus.unhealthy) }
    }
}
