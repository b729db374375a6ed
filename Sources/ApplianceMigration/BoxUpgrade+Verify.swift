import ApplianceAPI
import ApplianceClient
import Foundation
import ProcedureEngine

extension BoxUpgrade {
    // MARK: Verify

    /// Polls `/health` until it answers 200, up to the settings' timeout; a failed self-test ends the wait at
    /// once. Returns the last answer and how long it took.
    func waitUntilHealthy() async throws -> (healthy: Bool, health: HealthResponse?, seconds: Double) {
        let start = ContinuousClock.now
        let deadline = start + .seconds(options.healthTimeoutSeconds)
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
                return (false, last, Double(options.healthTimeoutSeconds))
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
                        ?? "no answer within \(options.healthTimeoutSeconds) s")
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
