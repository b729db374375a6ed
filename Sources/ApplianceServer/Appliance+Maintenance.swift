public import ApplianceAPI
import ApplianceStore
import Foundation
import HTTPTypes
import Logging
import Synchronization

/// A8 maintenance mode and the gate every site write passes.
///
/// Turning maintenance on closes the gate, then waits until the site writes already past it have finished: when
/// the request returns, nothing more will be written to the site, so a backup taken afterwards holds every write
/// the appliance accepted.
final class SiteWriteGate: Sendable {
    private let state = Mutex<(status: MaintenanceStatus, inFlight: Int)>((.off, 0))

    var status: MaintenanceStatus { state.withLock { $0.status } }

    func set(_ status: MaintenanceStatus) {
        state.withLock { $0.status = status }
    }

    /// Admits one site write, or refuses it with the maintenance message.
    func enter() throws {
        let refused = state.withLock { state -> MaintenanceStatus? in
            if state.status.enabled { return state.status }
            state.inFlight += 1
            return nil
        }
        if let refused { throw ApplianceServerError.maintenance(refused) }
    }

    func leave() {
        state.withLock { $0.inFlight -= 1 }
    }

    var inFlight: Int { state.withLock { $0.inFlight } }
}

extension ApplianceServerError {
    static func maintenance(_ status: MaintenanceStatus) -> Self {
        .init(.serviceUnavailable, "maintenance", status.refusal, retryAfterSeconds: status.retryAfterSeconds)
    }
}

extension Appliance {
    static let maintenanceKey = "maintenance"

    /// The persisted maintenance state (box.sqlite, so it survives a restart and a restore, and ends with a reset).
    static func loadMaintenance(_ box: BoxDatabase) -> MaintenanceStatus {
        guard let text = try? box.meta(maintenanceKey),
            let status = try? APICoding.decoder().decode(MaintenanceStatus.self, from: Data(text.utf8))
        else { return .off }
        return status
    }

    public var maintenanceStatus: MaintenanceStatus { gate.status }

    /// Turns maintenance on or off. On: every session but the caller's ends, and the call returns once the site
    /// writes in flight have finished. Off: the site takes logins and writes again.
    public func setMaintenance(_ request: MaintenanceRequest, keepingSession token: String?) async throws
        -> MaintenanceStatus
    {
        if let reason = request.reason, reason.isEmpty || reason.count > 200 {
            throw ApplianceServerError.badRequest("reason must be 1 to 200 characters")
        }
        if let seconds = request.retryAfterSeconds, !(1...3600).contains(seconds) {
            throw ApplianceServerError.badRequest("retryAfterSeconds must be between 1 and 3600")
        }
        let current = gate.status
        let status: MaintenanceStatus
        if request.enabled {
            status = MaintenanceStatus(
                enabled: true,
                reason: request.reason ?? current.reason,
                since: current.enabled ? current.since : Date(),
                retryAfterSeconds: request.retryAfterSeconds ?? current.retryAfterSeconds
            )
        } else {
            status = .off
        }
        let data = try APICoding.encoder().encode(status)
        try box.setMeta(Self.maintenanceKey, status.enabled ? String(decoding: data, as: UTF8.self) : nil)
        gate.set(status)
        guard status.enabled else {
            logger.notice("Maintenance mode off")
            return status
        }
        try site.logoutEveryone(except: token)
        logger.notice("Maintenance mode on", metadata: ["maintenance.reason": "\(status.reason ?? "-")"])
        let deadline = ContinuousClock.now + .seconds(300)
        while gate.inFlight > 0 {
            guard ContinuousClock.now < deadline else {
                throw ApplianceServerError(
                    .serviceUnavailable,
                    "site_writes_in_flight",
                    "maintenance is on, but \(gate.inFlight) site upload(s) are still being written; "
                        + "repeat the request to wait for them",
                    retryAfterSeconds: 5
                )
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        return status
    }

    /// A login of a site user is refused in maintenance; administrators still reach the management API.
    /// On a failover backup (A7) the same holds: it takes no connections of site users until it is primary.
    func admitLogin(_ result: LoginResult) throws {
        let status = gate.status
        let relationship = try relationship()
        guard status.enabled || relationship?.role == .backup else { return }
        let user = try site.authenticate(token: result.token)
        guard user.isAdministrator else {
            try site.logout(token: result.token)
            if status.enabled { throw ApplianceServerError.maintenance(status) }
            try refuseOnBackup()
            return
        }
    }

    // MARK: Reboot

    /// Stops the listeners and asks the process to start again (A8): `applianced` re-executes itself, or in the
    /// virtual appliance exits with the status its init turns into a reboot of the VM.
    public func requestReboot() {
        logger.notice("Reboot requested")
        rebootFlag.withLock { $0 = true }
        requestShutdown()
    }

    /// Whether the last stop was asked for as a reboot.
    public var rebootRequested: Bool { rebootFlag.withLock { $0 } }
}
