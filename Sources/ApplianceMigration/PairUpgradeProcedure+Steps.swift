import ApplianceAPI
import ApplianceClient
import ApplianceInventory
import Foundation
public import ProcedureEngine

extension PairUpgradeProcedure {
    public func perform(_ step: PairUpgradeStep, context: StepContext) async throws -> StepDetail {
        await probe?.start()
        let detail: StepDetail
        switch step {
        case .preflight: detail = try await preflight(context: context)
        case .backup: detail = try await unit(.a).perform(.backup, context: context)
        case .syncNow: detail = try await syncNow()
        case .breakPair: detail = try await breakPair()
        case .upgrade(let box): detail = try await upgrade(box, context: context)
        case .verify(let box): detail = try await verify(box, context: context)
        case .swing: detail = try await swing(context: context)
        case .reestablish: detail = try await reestablish()
        }
        let measured = await downtime()
        // The last step: nothing more to watch (a probe left running would be cut off by the exit).
        if step == .reestablish { await probe?.stop() }
        return detail.merging(measured) { $1 }
    }

    /// Looks at both boxes for a step begun before: the relationship, the versions, the site address.
    public func reconcile(_ step: PairUpgradeStep, context: StepContext) async throws -> Reconciliation {
        await probe?.start()
        switch step {
        case .preflight, .syncNow:
            // Nothing of them needs undoing; the sync is pulled again only while the pair stands.
            if step == .syncNow, try await !paired(primary: .a) {
                throw MigrationError(
                    .failover,
                    "\(settings.a.name) and \(settings.b.name) are no longer paired, but the run did not break the "
                        + "pair; establish it again (A primary), then `appliancectl resume \(runId)`"
                )
            }
            return .redo
        case .backup:
            return try await unit(.a).reconcileBackup()
        case .breakPair:
            return try await related() ? .redo : .finished(["broken": "already (read on both boxes)"])
        case .upgrade(let box):
            return try await unit(box).reconcileInstall()
        case .verify(let box):
            // Sync: A is thawed only after it passed, so a thawed A was verified (and takes writes again).
            if box == .a, settings.mode == .sync, try await !frozen(.a) {
                return .finished(["verified": "before the interruption (A serves again)"])
            }
            return .redo
        case .swing:
            guard try await siteCutover().movedAlready() else { return .redo }
            try await freeze(.a)
            return .finished(["cutover": "already (the site answers from B)"])
        case .reestablish:
            guard try await paired(primary: settings.primaryAfter) else { return .redo }
            let detail = try await firstSync(primary: settings.primaryAfter)
            await probe?.stop()
            return .finished(detail)
        }
    }

    /// The outages of the site the probe saw end since the last step.
    func downtime() async -> StepDetail {
        guard let probe else { return [:] }
        let (seconds, down) = await probe.take()
        return ["downtimeSeconds": String(format: "%.2f", seconds)].merging(down ? ["siteDown": "yes"] : [:]) { $1 }
    }

    // MARK: Pre-flight

    /// Both boxes answer, are paired (A primary, B its backup) with one key and run the same versions; then each
    /// box's own pre-flight (its update plan). Refuses before anything changes.
    func preflight(context: StepContext) async throws -> StepDetail {
        for box in PairBox.allCases {
            do {
                _ = try await session(box)
            } catch {
                throw MigrationError(
                    .refused,
                    "\(name(box)) (\(box.label)) does not answer (\(error)); a pair is upgraded only while both boxes "
                        + "answer: start it or fix the network, then run again (nothing was changed)"
                )
            }
        }
        let (aStatus, bStatus) = (try await status(.a), try await status(.b))
        let aInfo: StatusResponse = try await session(.a).call(.status)
        let bInfo: StatusResponse = try await session(.b).call(.status)
        if let refusal = PairUpgradeRules.pairRefusal(
            a: PairUpgradeRules.PairView(
                name: settings.a.name,
                id: aInfo.applianceId,
                software: aInfo.software,
                failover: aStatus
            ),
            b: PairUpgradeRules.PairView(
                name: settings.b.name,
                id: bInfo.applianceId,
                software: bInfo.software,
                failover: bStatus
            )
        ) {
            throw MigrationError(.refused, refusal)
        }
        var detail = try await unit(.a).perform(.preflight, context: context)
        detail.merge(try await unit(.b).perform(.preflight, context: context)) { $1 }
        detail["aReachesB"] = aStatus.peer
        detail["bReachesA"] = bStatus.peer
        detail["intervalSeconds"] = "\(aStatus.intervalSeconds ?? 300)"
        facts = PairFacts(detail)
        return detail
    }

    // MARK: Sync, break

    func syncNow() async throws -> StepDetail {
        let record: SyncRecord = try await session(.b).call(.syncNow, body: SyncNowRequest(wait: true))
        guard record.result == "ok" else {
            throw MigrationError(
                .failover,
                "the sync of \(settings.b.name) from \(settings.a.name) failed: \(record.error ?? record.result); "
                    + "check that B reaches A, then `appliancectl resume \(runId)`"
            )
        }
        return ["syncHistoryRows": "\(record.historyRows)", "syncBytes": "\(record.bytes)"]
    }

    func breakPair() async throws -> StepDetail {
        let aId = try facts.required(facts.aId, "a.applianceId")
        let bId = try facts.required(facts.bId, "b.applianceId")
        if try await status(.b).peerApplianceId == aId { try await session(.b).perform(.breakFailover) }
        if try await status(.a).peerApplianceId == bId { try await session(.a).perform(.breakFailover) }
        environment.events(.note("the failover relationship of \(settings.a.name) and \(settings.b.name) is broken"))
        return ["broken": "done"]
    }

    /// Whether the boxes are paired with `primary` as the primary.
    func paired(primary: PairBox) async throws -> Bool {
        let ids = [
            PairBox.a: try facts.required(facts.aId, "a.applianceId"),
            .b: try facts.required(facts.bId, "b.applianceId"),
        ]
        let p = try await status(primary)
        let q = try await status(primary.other)
        return p.role == "primary" && p.peerApplianceId == ids[primary.other] && q.role == "backup"
            && q.peerApplianceId == ids[primary]
    }

    /// Whether either box names the other as its peer.
    func related() async throws -> Bool {
        let aId = try facts.required(facts.aId, "a.applianceId")
        let bId = try facts.required(facts.bId, "b.applianceId")
        let aPeer = try await status(.a).peerApplianceId
        let bPeer = try await status(.b).peerApplianceId
        return aPeer == bId || bPeer == aId
    }

    // MARK: Upgrade, verify

    /// The gate on the real box (standalone), the site frozen when A upgrades in sync mode, the site data read
    /// again as the baseline (journaled first), then the box's install.
    func upgrade(_ box: PairBox, context: StepContext) async throws -> StepDetail {
        let status = try await status(box)
        guard status.role == "standalone" else {
            throw MigrationError(
                .refused,
                "\(name(box)) is the failover \(status.role) of \(status.peer ?? "another box") again; a box is "
                    + "upgraded only outside the pair: break it, then `appliancectl resume \(runId)`"
            )
        }
        if box == .a && settings.mode == .sync { try await freeze(.a) }
        try context.journal(try await unit(box).rebaseline())
        return try await unit(box).perform(.install, context: context)
    }

    func verify(_ box: PairBox, context: StepContext) async throws -> StepDetail {
        let detail = try await unit(box).perform(.verify, context: context)
        if box == .a && settings.mode == .sync {
            try await thaw(.a)
            environment.events(.note("\(settings.a.name) is verified and serves the site again"))
        }
        return detail
    }

    // MARK: Freeze

    static let freezeReason = "the site is being upgraded (failover pair upgrade); try again shortly"

    func freeze(_ box: PairBox) async throws {
        let _: MaintenanceStatus = try await session(box).call(
            .setMaintenance,
            body: MaintenanceRequest(enabled: true, reason: Self.freezeReason, retryAfterSeconds: 30)
        )
    }

    /// Maintenance off, and the site address A let go of enabled again when nothing answers on it.
    func thaw(_ box: PairBox) async throws {
        let connection = try await session(box)
        if box == .a, let id = facts.releasedAddressId, let site = settings.cutover.siteAddress.flatMap(HostPort.init),
            await SiteCutover.whoAnswers(site) == nil
        {
            try await SiteCutover.enable(addressId: id, on: connection)
        }
        try await connection.perform(.setMaintenance, body: MaintenanceRequest(enabled: false))
    }

    func frozen(_ box: PairBox) async throws -> Bool {
        let status: MaintenanceStatus = try await session(box).call(.maintenance)
        return status.enabled
    }

    // MARK: Swing

    func siteCutover() throws -> SiteCutover {
        SiteCutover(
            cutover: settings.cutover,
            from: boxes[.a]!,
            fromId: try facts.required(facts.aId, "a.applianceId"),
            to: boxes[.b]!,
            toId: try facts.required(facts.bId, "b.applianceId"),
            toPin: boxes[.b]!.pin.description,
            certificateId: nil,
            environment: environment,
            fromName: settings.a.name,
            toName: settings.b.name
        )
    }

    /// A is frozen first, so it accepts nothing the swing could leave behind; then the site address moves to B.
    /// What A accepted after B's last sync reaches B when the pair is established again (B primary): the
    /// primary merges what its rejoining backup holds alone.
    func swing(context: StepContext) async throws -> StepDetail {
        try await freeze(.a)
        var move = try siteCutover()
        defer {
            if let id = move.releasedAddressId { facts.releasedAddressId = id }
            boxes[.a] = move.from
            boxes[.b] = move.to
        }
        var detail = try await move.move(context: context, journalKey: "releasedAddressId")
        detail["frozen"] = settings.a.name
        return detail
    }

    // MARK: Re-establish

    /// The pair again with the run's primary (sync A, async B); the primary merges what the backup holds alone,
    /// then the backup's first sync is waited for. A frozen backup is thawed: as a backup it refuses site writes.
    func reestablish() async throws -> StepDetail {
        try await establish(primary: settings.primaryAfter)
        return try await firstSync(primary: settings.primaryAfter)
    }

    func establish(primary: PairBox) async throws {
        if try await paired(primary: primary) { return }
        if try await related() {
            throw MigrationError(
                .failover,
                "\(settings.a.name) and \(settings.b.name) are paired, but not with \(name(primary)) as the primary; "
                    + "break the relationship (`appliancectl failover break ADDRESS`), then `appliancectl resume "
                    + "\(runId)`"
            )
        }
        let aReachesB = try facts.required(facts.aReachesB, "aReachesB")
        let bReachesA = try facts.required(facts.bReachesA, "bReachesA")
        try await session(primary).perform(
            .establishFailover,
            body: EstablishRequest(
                backup: primary == .a ? aReachesB : bReachesA,
                reverse: primary == .a ? bReachesA : aReachesB,
                intervalSeconds: facts.intervalSeconds ?? 300,
                firstSyncDelaySeconds: 3600
            )
        )
        environment.events(.note("\(name(primary)) is primary again, \(name(primary.other)) its backup"))
    }

    func firstSync(primary: PairBox) async throws -> StepDetail {
        let backup = primary.other
        let record: SyncRecord = try await session(backup).call(.syncNow, body: SyncNowRequest(wait: true))
        guard record.result == "ok" else {
            throw MigrationError(
                .failover,
                "the first sync of \(name(backup)) failed: \(record.error ?? record.result); see both failover "
                    + "pages, then `appliancectl resume \(runId)`"
            )
        }
        if try await frozen(backup) {
            try await session(backup).perform(.setMaintenance, body: MaintenanceRequest(enabled: false))
        }
        return [
            "primary": name(primary),
            "firstSyncHistoryRows": "\(record.historyRows)",
            "firstSyncAt": APICoding.formatDate(record.finishedAt),
        ]
    }
}
