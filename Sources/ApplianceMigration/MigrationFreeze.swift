import ApplianceAPI
import ApplianceClient
import ApplianceInventory
import Foundation
public import ProcedureEngine

extension MigrationProcedure {
    /// What a client of the old box reads while the site moves.
    static let freezeReason = "the site is moving to a new appliance; try again after the cutover"

    // MARK: Freeze

    /// Puts the old box into maintenance mode before the backup: from then on it accepts no site write that the
    /// backup could miss. It stays frozen until the cutover has moved the site (then until decommission).
    func freeze() async throws -> [String: String] {
        // A new freeze means a new backup: one taken before it may lack what the box accepted since. (The live
        // method's backup is the safety net taken before the freeze; the final sync moves what came after it.)
        if !settings.isLive { try? FileManager.default.removeItem(at: backupFile) }
        let frozenAt = Date()
        let connection = try await oldSession()
        let status: MaintenanceStatus
        do {
            status = try await connection.call(
                .setMaintenance,
                body: MaintenanceRequest(enabled: true, reason: Self.freezeReason, retryAfterSeconds: 30)
            )
        } catch let error as ApplianceClientError where error.apiStatus == 404 {
            throw MigrationError(
                .appliance,
                "\(old.name) has no maintenance mode (an older applianced); update it, or stop its users by hand"
            )
        }
        guard status.enabled else {
            throw MigrationError(.appliance, "\(old.name) did not enter maintenance mode; check its log")
        }
        environment.events(.note("\(old.name) is frozen: users logged out, site writes refused"))
        // A freeze done again after a crash keeps the time the box was first frozen (it keeps `since` while it
        // stays in maintenance), so the downtime counts from the first refusal, not from the resume.
        let since = status.reason == Self.freezeReason ? status.since.map { min($0, frozenAt) } : nil
        return ["frozenAt": Self.timestamp(since ?? frozenAt)]
    }

    /// After a failure, a refusal or an unconfirmed step before the site moved: the old box serves again exactly
    /// as before (maintenance off, a released site address enabled again), and the freeze is reverted, so the
    /// site-copying steps run again. Returns what the operator must do by hand if that did not work.
    public func recover(after failure: any Error, machine: MigrationMachine) async -> Recovery<MigrationStep> {
        guard plan.contains(.freeze), machine.status[.freeze] != .pending, !machine.isDone(.cutover) else {
            return .nothing
        }
        if let site = settings.cutover.siteAddress.flatMap(HostPort.init),
            let newId = facts.newApplianceId, (try? await answersFromNew(site, id: newId)) == true
        {
            return .nothing  // the site already answers from the new box: the old one must stay closed
        }
        do {
            if settings.isLive { try await givePrimaryBack() }
            try await thaw()
            environment.events(.note("\(old.name) serves again as before (maintenance off)"))
            return .reverted(.freeze, ["thawedAt": Self.timestamp(Date()), "error": "\(failure)"])
        } catch {
            return .manual(
                "\(old.name) could not be taken out of maintenance (\(error)); run `appliancectl maintenance "
                    + "\(old.address) off` once it answers"
            )
        }
    }

    /// Maintenance off on the old box, and the site address it let go of enabled again if nothing serves it.
    func thaw() async throws {
        let connection = try await oldSession()
        if let id = facts.oldReleasedAddressId,
            let site = settings.cutover.siteAddress.flatMap(HostPort.init),
            await whoAnswers(site) == nil
        {
            try await SiteCutover.enable(addressId: id, on: connection)
        }
        try await connection.perform(.setMaintenance, body: MaintenanceRequest(enabled: false))
    }

    /// Live: when the new box was promoted before the failure, the old one takes the primary role back (the new
    /// one is its backup again, so `resume` syncs on from where it was); a backup would refuse the site.
    func givePrimaryBack() async throws {
        guard facts.newApplianceId != nil, try paired(try await failoverStatuses(), primaryIsNew: true) else { return }
        try await oldSession().perform(.becomePrimary, body: BecomePrimaryRequest(syncFirst: false, force: false))
        environment.events(.note("\(old.name) is primary again, \(settings.new.name) its backup"))
    }

    // MARK: Abort

    /// `appliancectl abort RUN`: the old box serves again as before; refused once the site answers from the new
    /// box (the old one then must not take writes again). Returns what was done.
    public func abort(machine: MigrationMachine) async throws -> [String] {
        let newName = settings.new.name
        if machine.isDone(.cutover) && plan.contains(.cutover) {
            throw MigrationError(
                .refused,
                "the site already moved to \(newName) in run \(runId), so \(old.name) must not serve it again; "
                    + "finish with `appliancectl resume \(runId)`"
            )
        }
        if let site = settings.cutover.siteAddress.flatMap(HostPort.init), let newId = facts.newApplianceId,
            (try? await answersFromNew(site, id: newId)) == true
        {
            throw MigrationError(
                .refused,
                "\(site.host):\(site.port) already answers from \(newName); finish with `appliancectl resume "
                    + "\(runId)`, or point the site back at \(old.name) by hand first"
            )
        }
        var done: [String] = []
        if settings.isLive && facts.newApplianceId != nil {
            // Whatever the journal says of the sync (a lifted freeze makes it pending again), the boxes decide.
            do {
                try await breakRelationship()
                try? FileManager.default.removeItem(at: failoverKeyFile)
                done.append("the temporary failover relationship of \(old.name) and \(newName) is broken")
            } catch {
                done.append(
                    "the failover relationship of \(old.name) and \(newName) could not be checked (\(error)); run "
                        + "`appliancectl failover break \(old.address)` once it answers"
                )
            }
        }
        if plan.contains(.freeze) && machine.status[.freeze] != .pending {
            try await thaw()
            done.append("\(old.name) serves again as before (maintenance off)")
        }
        done.append(
            machine.isDone(.install)
                ? "\(newName) is left as it is (see the report); remove or factory-reset it when no longer needed"
                : "\(newName) was not created"
        )
        return done
    }
}
