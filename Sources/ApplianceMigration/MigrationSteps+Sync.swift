import ApplianceAPI
import ApplianceClient
import ApplianceCrypto
import Foundation
import ProcedureEngine

/// The live method (`method: live`): the new box syncs as a failover backup of the old one while the old one
/// serves, so the freeze only has to wait for the last small delta.
extension MigrationProcedure {
    /// A sync that moved no more than this (and took no longer than `quietSyncSeconds`) is "small": the freeze
    /// can follow.
    static let quietSyncBytes: Int64 = 4 * 1_048_576
    static let quietSyncSeconds = 2.0
    /// Syncs tried while the old box serves before the freeze goes ahead anyway (the final sync moves the rest).
    static let maximumSyncRounds = 30

    /// Where this run keeps its failover key: in the run directory, 0600, removed when the relationship ends.
    /// It never reaches the journal, a log line or a flag.
    var failoverKeyFile: URL { environment.runDirectory.appendingPathComponent("failover.key") }

    /// The run's inter-appliance key: the one kept in the run directory, or a fresh random one written there.
    func runFailoverKey() throws -> String {
        if let data = try? Data(contentsOf: failoverKeyFile), let key = String(data: data, encoding: .utf8),
            key.count >= 32
        {
            return key
        }
        let key = SecureRandom.bytes(32).map { String(format: "%02x", $0) }.joined()
        try FileManager.default.createDirectory(at: environment.runDirectory, withIntermediateDirectories: true)
        let path = failoverKeyFile.path
        _ = FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600])
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        try Data(key.utf8).write(to: failoverKeyFile)
        return key
    }

    /// Both boxes' failover pages.
    func failoverStatuses() async throws -> (old: FailoverStatus, new: FailoverStatus) {
        let oldStatus: FailoverStatus = try await oldSession().call(.failoverStatus)
        let newStatus: FailoverStatus = try await newSession().call(.failoverStatus)
        return (oldStatus, newStatus)
    }

    /// Whether the boxes are paired with `primary` as the primary.
    func paired(_ statuses: (old: FailoverStatus, new: FailoverStatus), primaryIsNew: Bool) throws -> Bool {
        let oldId = try required(facts.oldApplianceId, "oldApplianceId")
        let newId = try required(facts.newApplianceId, "newApplianceId")
        let (oldRole, newRole) = primaryIsNew ? ("backup", "primary") : ("primary", "backup")
        return statuses.old.role == oldRole && statuses.old.peerApplianceId == newId
            && statuses.new.role == newRole && statuses.new.peerApplianceId == oldId
    }

    // MARK: Sync

    /// Makes the new box the old one's failover backup (unless it already is), then pulls syncs while the old box
    /// serves until one moves little.
    func sync(context: StepContext) async throws -> StepDetail {
        var statuses = try await failoverStatuses()
        if try !paired(statuses, primaryIsNew: false) {
            try refuseOtherRelationships(statuses)
            try await establish(statuses)
            statuses = try await failoverStatuses()
            guard try paired(statuses, primaryIsNew: false) else {
                throw MigrationError(
                    .failover,
                    "\(settings.new.name) did not become the failover backup of \(old.name) (it is "
                        + "\(statuses.new.role)); see both boxes' failover pages, then run `appliancectl resume "
                        + "\(runId)`"
                )
            }
            environment.events(.note("\(settings.new.name) is the failover backup of \(old.name) for this run"))
        }
        context.crash(at: "sync:established")
        var rounds = 0
        var moved: Int64 = 0
        var last: SyncRecord
        repeat {
            rounds += 1
            last = try await pullSync()
            moved += last.bytes
            environment.events(
                .note(
                    "sync \(rounds): \(last.historyRows) history rows, \(last.files) files, \(last.recordings) "
                        + "recordings, \(last.bytes) bytes in \(String(format: "%.1f", last.durationSeconds)) s"
                )
            )
            context.crash(at: "sync:round")
        } while !Self.isSmall(last) && rounds < Self.maximumSyncRounds
        // Both boxes extend their history digest now, while the old one serves, so the verification inside the
        // freeze digests only the rows of the final delta.
        let _: SiteSummary = try await oldSession().call(.siteSummary)
        let _: SiteSummary = try await newSession().call(.siteSummary)
        return [
            "syncRounds": "\(rounds)",
            "syncBytes": "\(moved)",
            "lastSyncBytes": "\(last.bytes)",
            "lastSyncSeconds": String(format: "%.2f", last.durationSeconds),
        ]
    }

    static func isSmall(_ record: SyncRecord) -> Bool {
        record.bytes <= quietSyncBytes && record.durationSeconds <= quietSyncSeconds
    }

    /// An old box paired with a third appliance, or a new box paired with one, is not taken over: the operator
    /// decides.
    func refuseOtherRelationships(_ statuses: (old: FailoverStatus, new: FailoverStatus)) throws {
        let newId = try required(facts.newApplianceId, "newApplianceId")
        let oldId = try required(facts.oldApplianceId, "oldApplianceId")
        if statuses.old.role != "standalone" && statuses.old.peerApplianceId != newId {
            throw MigrationError(
                .refused,
                "\(old.name) is already the failover \(statuses.old.role) of \(statuses.old.peer ?? "another box"); "
                    + "a live migration makes \(settings.new.name) its backup for the run. Break that relationship "
                    + "first (`appliancectl failover break \(old.address)`), or migrate with `method: "
                    + "backup-restore`; then run `appliancectl resume \(runId)`"
            )
        }
        if statuses.new.role != "standalone" && statuses.new.peerApplianceId != oldId {
            throw MigrationError(
                .refused,
                "\(settings.new.name) is already the failover \(statuses.new.role) of "
                    + "\(statuses.new.peer ?? "another box"); break that relationship first (`appliancectl failover "
                    + "break \((try? newBox().address) ?? settings.new.name)`), then run `appliancectl resume "
                    + "\(runId)`"
            )
        }
        if statuses.old.role != "standalone" || statuses.new.role != "standalone" {
            throw MigrationError(
                .failover,
                "\(old.name) (\(statuses.old.role)) and \(settings.new.name) (\(statuses.new.role)) are paired the "
                    + "wrong way round; break it (`appliancectl failover break \(old.address)`), then run "
                    + "`appliancectl resume \(runId)`"
            )
        }
    }

    /// Sets the run's key on both boxes (unless they already share one) and establishes the relationship on the
    /// old box, with the new one as its backup. The boxes' own sync schedule is pushed out of the way: this step
    /// pulls the syncs itself.
    func establish(_ statuses: (old: FailoverStatus, new: FailoverStatus)) async throws {
        let shared =
            statuses.old.key.isSet && statuses.new.key.isSet && statuses.old.key.fingerprint != nil
            && statuses.old.key.fingerprint == statuses.new.key.fingerprint
        if !shared {
            let key = FailoverKeyRequest(key: try runFailoverKey())
            try await oldSession().perform(.setFailoverKey, body: key)
            try await newSession().perform(.setFailoverKey, body: key)
        }
        let box = try newBox()
        do {
            try await oldSession().perform(
                .establishFailover,
                body: EstablishRequest(
                    backup: box.address,
                    reverse: settings.oldAddressFromNew ?? old.address,
                    intervalSeconds: 86_400,
                    firstSyncDelaySeconds: 3600
                )
            )
        } catch let error as ApplianceClientError where error.apiStatus == 404 {
            throw MigrationError(
                .appliance,
                "\(old.name) has no failover sync (an older applianced); update it or migrate with `method: "
                    + "backup-restore`"
            )
        } catch let error as ApplianceClientError where error.apiStatus == 409 || error.apiStatus == 400 {
            throw MigrationError(
                .failover,
                "\(old.name) refused to make \(settings.new.name) its failover backup: \(error.message)"
            )
        }
    }

    /// One sync pulled by the new box, waited for; a failed one is an error that says what to do.
    func pullSync() async throws -> SyncRecord {
        let record: SyncRecord = try await newSession().call(.syncNow, body: SyncNowRequest(wait: true))
        guard record.result == "ok" else {
            throw MigrationError(
                .failover,
                "a sync of \(settings.new.name) from \(old.name) failed: \(record.error ?? record.result); check that "
                    + "\(settings.new.name) reaches \(settings.oldAddressFromNew ?? old.address), then run `appliancectl resume "
                    + "\(runId)`"
            )
        }
        return record
    }

    /// The sync step begun before: done when the boxes are paired and the last sync was ok and small.
    func observedSync() async throws -> StepDetail? {
        let statuses = try await failoverStatuses()
        guard try paired(statuses, primaryIsNew: false), let last = statuses.new.lastSync, last.result == "ok",
            Self.isSmall(last)
        else { return nil }
        return ["syncRounds": "resumed", "lastSyncBytes": "\(last.bytes)"]
    }

    // MARK: Final sync

    /// Inside the freeze: one more sync moves what the old box accepted since the last one; nothing can follow.
    func finalSync() async throws -> StepDetail {
        let statuses = try await failoverStatuses()
        guard try paired(statuses, primaryIsNew: false) else {
            throw MigrationError(
                .failover,
                "\(settings.new.name) is no longer the failover backup of \(old.name) (\(statuses.new.role)); run "
                    + "`appliancectl resume \(runId)` after the failure is put back, or abort the run"
            )
        }
        let record = try await pullSync()
        return [
            "finalSyncBytes": "\(record.bytes)",
            "finalSyncHistoryRows": "\(record.historyRows)",
            "finalSyncFiles": "\(record.files)",
            "finalSyncSeconds": String(format: "%.2f", record.durationSeconds),
        ]
    }

    // MARK: Promote

    /// The new box becomes primary; the old one (frozen, synced) becomes its backup and takes no site writes.
    func promote() async throws -> StepDetail {
        let statuses = try await failoverStatuses()
        if try paired(statuses, primaryIsNew: true) { return ["promoted": "already"] }
        guard try paired(statuses, primaryIsNew: false) else {
            throw MigrationError(
                .failover,
                "\(settings.new.name) is not the failover backup of \(old.name) any more; abort the run "
                    + "(`appliancectl abort \(runId)`) and start again"
            )
        }
        try await newSession().perform(.becomePrimary, body: BecomePrimaryRequest(syncFirst: false, force: false))
        return ["promoted": "done", "promotedAt": Self.timestamp(Date())]
    }

    func observedPromotion() async throws -> StepDetail? {
        try paired(try await failoverStatuses(), primaryIsNew: true) ? ["promoted": "already"] : nil
    }

    // MARK: Unlink

    /// Breaks the temporary relationship (whichever way it stands) and keeps the old box frozen when the site
    /// moved: being demoted lifted its maintenance, and standalone it would take writes again. It is frozen
    /// before the break, while as a backup it still refuses them (a break leaves maintenance as it is): a client
    /// still connected to it (its listener on the site address is closed, a kept-alive connection is not) must
    /// never find it open.
    func unlink() async throws -> StepDetail {
        if plan.contains(.cutover) { try await refreeze() }
        try await breakRelationship()
        try? FileManager.default.removeItem(at: failoverKeyFile)
        return ["unlinked": "done"]
    }

    func observedUnlink() async throws -> StepDetail? {
        let statuses = try await failoverStatuses()
        guard try !related(statuses) else { return nil }
        if plan.contains(.cutover) {
            let status: MaintenanceStatus = try await oldSession().call(.maintenance)
            guard status.enabled else { return nil }
        }
        try? FileManager.default.removeItem(at: failoverKeyFile)
        return ["unlinked": "already"]
    }

    /// Whether either box names the other as its peer.
    func related(_ statuses: (old: FailoverStatus, new: FailoverStatus)) throws -> Bool {
        let newId = try required(facts.newApplianceId, "newApplianceId")
        let oldId = try required(facts.oldApplianceId, "oldApplianceId")
        return statuses.old.peerApplianceId == newId || statuses.new.peerApplianceId == oldId
    }

    /// Ends the relationship between the two boxes on both (each side told in case the other was not reached).
    func breakRelationship() async throws {
        let statuses = try await failoverStatuses()
        guard facts.newApplianceId != nil, try related(statuses) else { return }
        if statuses.new.peerApplianceId == facts.oldApplianceId {
            try await newSession().perform(.breakFailover)
        }
        if try await failoverStatuses().old.peerApplianceId == facts.newApplianceId {
            try await oldSession().perform(.breakFailover)
        }
        environment.events(.note("the temporary failover relationship of \(old.name) and \(settings.new.name) ended"))
    }

    /// Maintenance on the old box again, as the freeze set it.
    func refreeze() async throws {
        let _: MaintenanceStatus = try await oldSession().call(
            .setMaintenance,
            body: MaintenanceRequest(enabled: true, reason: Self.freezeReason, retryAfterSeconds: 30)
        )
    }
}
