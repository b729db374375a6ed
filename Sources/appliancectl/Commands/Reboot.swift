import ApplianceAPI
import ApplianceClient
import ArgumentParser
import Foundation

/// `appliancectl reboot ADDRESS` (A8): restart the appliance and wait until it answers again.
struct Reboot: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Reboot an appliance and wait until it is healthy again.",
        discussion: "A virtual appliance reboots its VM; a process appliance starts itself again."
    )

    @OptionGroup var box: BoxOptions

    @Option(help: "Seconds to wait for the appliance to come back.")
    var timeout: Int = 300

    func validate() throws {
        guard (1...3600).contains(timeout) else { throw ValidationError("--timeout must be 1 to 3600 seconds") }
    }

    func run() async throws {
        let connection = try await box.session()
        let before: StatusResponse = try await connection.call(.status)
        try await connection.perform(.reboot, body: Empty?.none)
        Terminal.note("\(box.address) is rebooting")
        let started = ContinuousClock.now
        let deadline = started + .seconds(timeout)
        while ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(250))
            // Back when it answers with the same id and an uptime shorter than the time since the request: restarted.
            guard let session = try? await box.session(),
                let status: StatusResponse = try? await session.call(.status),
                status.applianceId == before.applianceId,
                status.uptimeSeconds < (ContinuousClock.now - started).seconds
            else { continue }
            let seconds = (ContinuousClock.now - started).seconds
            print("\(box.address) rebooted and is healthy again after \(String(format: "%.1f", seconds)) s.")
            return
        }
        throw ApplianceClientError(
            code: .timeout,
            message: "\(box.address) did not come back within \(timeout) s after the reboot; check its console"
        )
    }
}

/// `appliancectl maintenance ADDRESS on|off|show` (A8).
struct Maintenance: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Turn maintenance mode on or off, or show it.",
        discussion: """
            In maintenance, users are logged out, site users cannot log in and every site write (history, files, \
            recordings, settings, users, restore) answers 503 with the reason and a Retry-After; administrators \
            keep the management API.
            """
    )

    enum Action: String, ExpressibleByArgument, CaseIterable {
        case on, off, show
    }

    @OptionGroup var box: BoxOptions

    @Argument(help: "on, off or show.")
    var action: Action = .show

    @Option(help: "Why the site is closed; every refused client reads it.")
    var reason: String?

    func run() async throws {
        let connection = try await box.session()
        let status: MaintenanceStatus
        switch action {
        case .show:
            status = try await connection.call(.maintenance)
        case .on, .off:
            status = try await connection.call(
                .setMaintenance,
                body: MaintenanceRequest(enabled: action == .on, reason: reason)
            )
        }
        if box.json {
            try printJSON(status)
        } else if status.enabled {
            print("\(box.address) is in maintenance since \(status.since.map { "\($0)" } ?? "?"): \(status.refusal)")
        } else {
            print("\(box.address) is not in maintenance.")
        }
    }
}

extension Duration {
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
