import ApplianceAPI
import ApplianceClient
import ApplianceInventory
import Foundation
import ProcedureEngine

/// Factory-resets an appliance and powers it off (P6): the decommission step of a migration and of the
/// decommission procedure alike. Resumable: a box found with a new factory key and the factory password was
/// reset before an interruption.
struct Decommissioner {
    var box: BoxClient
    /// The reset is journaled (`oldReset`) or was seen.
    var resetDone: Bool
    /// The hostname the reset is confirmed with (as journaled), else the box's own.
    var hostname: String?

    /// Resets (unless done), journals that, waits until the box stops answering.
    mutating func run(context: StepContext) async throws -> StepDetail {
        if !resetDone {
            // Was it reset before an interruption? Then it answers with a new factory key and password.
            let (observed, _) = try await PinnedHTTPClient.fetchPeerCertificate(host: box.host, port: box.port)
            if observed != box.pin {
                box.acceptablePins = [observed]
                resetDone = try await box.hasFactoryPassword()
                if !resetDone {
                    throw MigrationError(.appliance, "\(box.name) presents an unknown key; check it by hand")
                }
            }
        }
        if !resetDone {
            let connection = try await box.session()
            let status: StatusResponse = try await connection.call(.status)
            // One request: a factory-fresh box answers nothing but the password change, so it is told now.
            try await connection.perform(
                .factoryReset,
                body: FactoryResetRequest(confirmHostname: hostname ?? status.hostname, powerOff: true)
            )
            context.event(.note("\(box.name) factory-reset; powering off"))
        }
        try context.journal(["oldReset": "yes"])
        resetDone = true
        context.crash(at: "decommission:reset")
        if try await !waitUntilStopped() {
            // Reset but still up (it restarted before powering off): factory-fresh now, so it takes a password
            // change, then the reset with power-off again.
            try await resetAgainAndPowerOff()
            guard try await waitUntilStopped() else {
                throw MigrationError(.appliance, "\(box.name) was reset but still answers; shut it down by hand")
            }
        }
        context.event(.note("\(box.name) shut down"))
        return ["oldReset": "yes", "oldShutdown": "yes"]
    }

    /// Whether the box answered no TLS handshake for a while (within 30 s).
    func waitUntilStopped() async throws -> Bool {
        let host = box.host
        let port = box.port
        for attempt in 1...60 {
            if (try? await PinnedHTTPClient.fetchPeerCertificate(host: host, port: port, connectTimeout: .seconds(2)))
                == nil
            {
                return true
            }
            if attempt < 60 { try await Task.sleep(for: .milliseconds(500)) }
        }
        return false
    }

    func resetAgainAndPowerOff() async throws {
        let (observed, _) = try await PinnedHTTPClient.fetchPeerCertificate(host: box.host, port: box.port)
        let connection = ApplianceConnection(host: box.host, port: box.port, pin: observed)
        let login = try await connection.login(username: "admin", password: "password")
        guard login.passwordChangeRequired else {
            throw MigrationError(.appliance, "\(box.name) still answers and is not factory-fresh; check it by hand")
        }
        let temporary = "Decommission-" + UUID().uuidString
        try await connection.authenticated(login.token).perform(
            .changePassword,
            body: ChangePasswordRequest(currentPassword: "password", newPassword: temporary)
        )
        let session = connection.authenticated(
            try await connection.login(username: "admin", password: temporary).token
        )
        let status: StatusResponse = try await session.call(.status)
        try await session.perform(
            .factoryReset,
            body: FactoryResetRequest(confirmHostname: status.hostname, powerOff: true)
        )
    }
}
