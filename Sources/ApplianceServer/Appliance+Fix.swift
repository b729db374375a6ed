public import ApplianceAPI
import ApplianceClient
import ApplianceStore
import Foundation
import HTTPTypes
import Logging
import Synchronization

/// Fixing a split brain (A7): both boxes are primary. `FixRule` decides which stays primary; the winner takes
/// from the loser what the loser accepted while both served (history rows by uid, files and recordings it lacks),
/// then makes it its backup, and the loser's next sync makes it equal to the winner.
///
/// Every step can be run again: after a crash at any point, running the fix again completes it. The loser is
/// quiesced first (maintenance mode: no site writes) so that nothing it accepts after the merge is lost.
extension Appliance {
    /// Peer calls of a fix move a whole site's history at worst.
    static let fixTimeout: Duration = .seconds(3600)
    static let fixPage = 5000

    var fixDirectory: URL { syncDirectory.appendingPathComponent("fix", isDirectory: true) }

    /// `POST /login/api/failover/fix`, on either box.
    public func fixFailover(_ request: FailoverFixRequest) async throws -> FailoverFixResult {
        guard let relationship = try relationship() else {
            throw ApplianceServerError.conflict(
                "this appliance is not in a failover relationship; there is no conflict to fix"
            )
        }
        guard relationship.role == .primary else {
            throw ApplianceServerError.conflict(
                "there is no conflict to fix: this appliance is the backup of \(relationship.peer)"
            )
        }
        return try await exclusiveFix {
            var link = try link(relationship)
            link.timeout = Self.fixTimeout
            let here = try await fixState()
            let peer: PeerFixState = try await link.call(.peerFixState, body: Empty())
            guard peer.applianceId == relationship.peerApplianceId, peer.peerApplianceId == applianceId else {
                throw ApplianceServerError.conflict(
                    "the appliance at \(relationship.peer) (\(peer.applianceId)) is not in a relationship with this "
                        + "one; break the relationship here and establish it again"
                )
            }
            guard peer.role == "primary" else {
                throw ApplianceServerError.conflict(
                    "there is no conflict to fix: this appliance is primary and \(relationship.peer) its \(peer.role)"
                )
            }
            let hereFacts = Self.facts(here, other: peer, reachedAt: peer.peer)
            let peerFacts = Self.facts(peer, other: here, reachedAt: relationship.peer)
            let decision = try FixRule.decide(here: hereFacts, peer: peerFacts, winner: request.winner)
            let plan = try await fixPlan(decision, here: (here, hereFacts), peer: (peer, peerFacts), link: link)
            logger.notice(
                "Failover fix",
                metadata: [
                    "fix.dryRun": "\(request.dryRun == true)", "fix.rule": "\(decision.rule.rawValue)",
                    "fix.winner": "\(plan.winner.applianceId)", "fix.loser": "\(plan.loser.applianceId)",
                ]
            )
            if request.dryRun == true { return plan }
            if decision.hereWins { return try await merge(plan, from: link) }
            // This box loses: the winner pulls from it and then makes it its backup.
            do {
                return try await link.call(.peerMerge, body: PeerMergeRequest(plan: plan))
            } catch let error as ApplianceServerError {
                throw ApplianceServerError(
                    error.status,
                    error.code,
                    Self.partWay(error.message, loser: "this appliance")
                )
            }
        }
    }

    /// `peerMerge`: the sender lost the fix and asks this box to take what it lacks from it.
    func mergeAsWinner(_ request: PeerMergeRequest, from senderId: String) async throws -> FailoverFixResult {
        guard let relationship = try relationship(), relationship.peerApplianceId == senderId,
            relationship.role == .primary, request.plan.winner.applianceId == applianceId,
            request.plan.loser.applianceId == senderId
        else {
            throw ApplianceServerError.conflict(
                "this appliance is not the primary that wins a fix against \(senderId); run the fix again"
            )
        }
        return try await exclusiveFix {
            var link = try link(relationship)
            link.timeout = Self.fixTimeout
            return try await merge(request.plan, from: link)
        }
    }

    /// The winner's side: quiesce the loser, take its rows, files and recordings, make it the backup.
    private func merge(_ plan: FailoverFixResult, from loser: FailoverLink) async throws -> FailoverFixResult {
        let _: PeerHello = try await loser.call(.peerQuiesce, body: Empty())
        crash(at: "fix:quiesced")
        let merged: FixCounts
        do {
            merged = try await takeMissing(from: loser)
            let _: PeerHello = try await loser.call(.peerDemote, body: Empty())
        } catch let error as ApplianceServerError {
            throw ApplianceServerError(error.status, error.code, Self.partWay(error.message, loser: plan.loser.address))
        }
        crash(at: "fix:demoted")
        if var relationship = try relationship(), relationship.conflict != nil {
            relationship.conflict = nil
            try saveRelationship(relationship)
        }
        try? FileManager.default.removeItem(at: fixDirectory)
        logger.notice(
            "Failover fix done: the peer is the backup",
            metadata: [
                "fix.rows": "\(merged.historyRows)", "fix.files": "\(merged.files)",
                "fix.recordings": "\(merged.recordings)",
            ]
        )
        var result = plan
        result.dryRun = false
        result.merged = merged
        result.next =
            "\(plan.loser.address) is now the backup of \(plan.winner.address); its next sync (within a minute, or "
            + "`appliancectl failover sync \(plan.loser.address) --wait`) makes it equal to the primary"
        return result
    }

    /// Takes from the peer what this box lacks: history rows by uid (a row both hold is not doubled), files and
    /// recordings by name.
    func takeMissing(from peer: FailoverLink) async throws -> FixCounts {
        var merged = FixCounts()
        var after: Int64 = 0
        var page: PeerHistoryPage
        repeat {
            page = try await peer.call(.peerHistory, body: PeerHistoryRequest(after: after, limit: Self.fixPage))
            merged.historyRows += try site.mergeHistory(page.rows)
            after = page.through
        } while page.more
        crash(at: "fix:rows")
        let state: PeerFixState = try await peer.call(.peerFixState, body: Empty())
        merged.files = try await pullMissing(state.files, have: try site.files(), recording: false, from: peer)
        merged.recordings = try await pullMissing(
            state.recordings,
            have: try box.recordings(),
            recording: true,
            from: peer
        )
        crash(at: "fix:files")
        return merged
    }

    static func partWay(_ message: String, loser: String) -> String {
        "\(message). The fix may have stopped part-way: then \(loser) stays in maintenance mode (no site writes) "
            + "and loses nothing; run the fix again to complete it, or turn maintenance off there to serve unfixed"
    }

    /// Downloads the files (or recordings) `have` lacks by name, checks each one's SHA-256, moves it into place,
    /// then indexes it. A crash before the index leaves it to be fetched again by the next run.
    private func pullMissing(
        _ infos: [StoredFileInfo],
        have: [StoredFileInfo],
        recording: Bool,
        from loser: FailoverLink
    ) async throws -> Int {
        let present = Set(have.map(\.name))
        let missing = infos.filter { !present.contains($0.name) }
        guard !missing.isEmpty else { return 0 }
        let fm = FileManager.default
        try fm.createDirectory(at: fixDirectory, withIntermediateDirectories: true)
        for info in missing {
            try StoredFileName.validate(info.name)
            try requireRoom(info.size, for: "merging \(info.name) from the peer")
            let scratch = fixDirectory.appendingPathComponent(info.sha256)
            try? fm.removeItem(at: scratch)
            _ = try await loser.download(recording ? .peerRecording : .peerFile, name: info.name, to: scratch)
            guard try Self.sha256(of: scratch) == info.sha256 else {
                try? fm.removeItem(at: scratch)
                throw ApplianceServerError(
                    .badGateway,
                    "fix_checksum",
                    "\(info.name) arrived from the peer with another SHA-256 than it lists"
                )
            }
            let target = (recording ? directory.recordings : directory.files).appendingPathComponent(info.name)
            if fm.fileExists(atPath: target.path) { try fm.removeItem(at: target) }
            try fm.moveItem(at: scratch, to: target)
            if recording { try box.saveRecording(info) } else { try site.saveFile(info) }
        }
        return missing.count
    }

    // MARK: What each box holds

    /// This box's facts for a fix.
    func fixState() async throws -> PeerFixState {
        guard let relationship = try relationship() else {
            throw ApplianceServerError.conflict("this appliance is not in a failover relationship")
        }
        let listening = await listeners.addresses
        return PeerFixState(
            applianceId: applianceId,
            role: relationship.role.rawValue,
            peer: relationship.peer,
            peerApplianceId: relationship.peerApplianceId,
            addresses: try box.addresses().map {
                PeerAddress(address: $0.address, enabled: $0.enabled, listening: listening.contains($0.address))
            },
            historyRows: try site.history(offset: 0, limit: 1).total,
            newestHistoryEndAt: try site.newestHistoryEnd(),
            files: try site.files(),
            recordings: try box.recordings(),
            config: try site.syncedConfig().config
        )
    }

    func peerFixState(for senderId: String) async throws -> PeerFixState {
        guard let relationship = try relationship(), relationship.peerApplianceId == senderId else {
            throw ApplianceServerError.conflict("this appliance is not in a relationship with \(senderId)")
        }
        return try await fixState()
    }

    func peerHistoryPage(_ request: PeerHistoryRequest, for senderId: String) throws -> PeerHistoryPage {
        guard let relationship = try relationship(), relationship.peerApplianceId == senderId else {
            throw ApplianceServerError.conflict("this appliance is not in a relationship with \(senderId)")
        }
        let (rows, through, more) = try site.historyChanges(
            after: max(0, request.after),
            limit: max(1, min(request.limit, 20_000))
        )
        return PeerHistoryPage(rows: rows, through: through, more: more)
    }

    /// What the rule knows of `state`'s box. Its newest data: the newest history row's end, or the newest change
    /// of a file or recording the other box does not hold with the same content. Files both hold are left out:
    /// a sync copies their times only to the millisecond below, so they would make a copy look older.
    static func facts(_ state: PeerFixState, other: PeerFixState, reachedAt address: String) -> FixFacts {
        let common = Set((other.files + other.recordings).map { "\($0.name)/\($0.sha256)" })
        let changed = (state.files + state.recordings).filter { !common.contains("\($0.name)/\($0.sha256)") }
        let times = [state.newestHistoryEndAt].compactMap { $0 } + changed.map(\.modifiedAt)
        return FixFacts(
            applianceId: state.applianceId,
            address: address,
            addresses: state.addresses,
            newestDataAt: times.max()
        )
    }

    // MARK: The plan (what a dry run shows)

    private func fixPlan(
        _ decision: FixDecision,
        here hereSide: (state: PeerFixState, facts: FixFacts),
        peer peerSide: (state: PeerFixState, facts: FixFacts),
        link: FailoverLink
    ) async throws -> FailoverFixResult {
        let (here, peer) = (hereSide.state, peerSide.state)
        // The peer's rows this box lacks, by uid; the other way round follows from the counts (uids are unique).
        var peerMissingHere = 0
        var after: Int64 = 0
        var page: PeerHistoryPage
        repeat {
            page = try await link.call(.peerHistory, body: PeerHistoryRequest(after: after, limit: Self.fixPage))
            peerMissingHere += try site.missingHistoryCount(page.rows.map(\.uid))
            after = page.through
        } while page.more
        let hereMissingOnPeer = here.historyRows - (peer.historyRows - peerMissingHere)
        let (winner, loser) = decision.hereWins ? (here, peer) : (peer, here)
        let hereAddress = peer.peer
        let peerAddress = here.peer
        func fixBox(_ state: PeerFixState, wins: Bool) -> FixBox {
            FixBox(
                applianceId: state.applianceId,
                address: state.applianceId == applianceId ? hereAddress : peerAddress,
                role: state.role,
                becomes: wins ? "primary" : "backup",
                historyRows: state.historyRows,
                newestDataAt: (state.applianceId == applianceId ? hereSide : peerSide).facts.newestDataAt,
                holdsSharedAddresses: state.applianceId == applianceId ? decision.hereHolds : decision.peerHolds
            )
        }
        let files = Self.compare(winner: winner.files, loser: loser.files)
        let recordings = Self.compare(winner: winner.recordings, loser: loser.recordings)
        let winnerBox = fixBox(winner, wins: true)
        let loserBox = fixBox(loser, wins: false)
        return FailoverFixResult(
            dryRun: true,
            rule: decision.rule.rawValue,
            reason: decision.reason,
            winner: winnerBox,
            loser: loserBox,
            merged: FixCounts(
                historyRows: decision.hereWins ? peerMissingHere : hereMissingOnPeer,
                files: files.merged,
                recordings: recordings.merged
            ),
            loserReceives: FixCounts(
                historyRows: decision.hereWins ? hereMissingOnPeer : peerMissingHere,
                files: files.receives,
                recordings: recordings.receives
            ),
            overwritten: Self.overwritten(winner: winner, loser: loser, files: files, recordings: recordings),
            next: "nothing was changed; run the fix without dryRun (without --dry-run) to keep \(winnerBox.address) "
                + "as primary and make \(loserBox.address) its backup"
        )
    }

    /// Files the winner takes from the loser, files the loser receives, and files whose loser version is replaced.
    static func compare(winner: [StoredFileInfo], loser: [StoredFileInfo]) -> (
        merged: Int, receives: Int, replaced: [String]
    ) {
        let won = Dictionary(winner.map { ($0.name, $0.sha256) }, uniquingKeysWith: { a, _ in a })
        let lost = Dictionary(loser.map { ($0.name, $0.sha256) }, uniquingKeysWith: { a, _ in a })
        let merged = lost.keys.filter { won[$0] == nil }.count
        let receives = won.filter { lost[$0.key] != $0.value }.count
        let replaced = lost.filter { won[$0.key] != nil && won[$0.key] != $0.value }.map(\.key).sorted()
        return (merged, receives, replaced)
    }

    static func overwritten(
        winner: PeerFixState,
        loser: PeerFixState,
        files: (merged: Int, receives: Int, replaced: [String]),
        recordings: (merged: Int, receives: Int, replaced: [String])
    ) -> FixOverwritten {
        let settings = loser.config.settings.filter { winner.config.settings[$0.key] != $0.value }.map(\.key)
        let users = Dictionary(winner.config.users.map { ($0.username, $0) }, uniquingKeysWith: { a, _ in a })
        return FixOverwritten(
            files: files.replaced,
            recordings: recordings.replaced,
            settings: settings.sorted(),
            users: loser.config.users.filter { users[$0.username] != $0 }.map(\.username).sorted(),
            securityPolicy: loser.config.securityPolicy != winner.config.securityPolicy
        )
    }

    /// One fix at a time on this box.
    private func exclusiveFix<T>(_ body: () async throws -> T) async throws -> T {
        let busy = failover.state.withLock { state -> Bool in
            if state.fixing { return true }
            state.fixing = true
            return false
        }
        guard !busy else {
            throw ApplianceServerError.conflict("a failover fix is already running on this appliance; wait for it")
        }
        defer { failover.state.withLock { $0.fixing = false } }
        return try await body()
    }
}
