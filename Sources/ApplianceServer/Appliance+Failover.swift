public import ApplianceAPI
import ApplianceClient
import ApplianceCrypto
import ApplianceStore
import Foundation
import HTTPTypes
import Logging
import Synchronization

/// This box's side of a failover relationship (A7), kept in the site database: a restore overwrites it (A6).
struct Relationship: Codable, Sendable, Equatable {
    enum Role: String, Codable, Sendable { case primary, backup }
    var role: Role
    /// How this box reaches its peer, `HOST:PORT`.
    var peer: String
    var peerPin: String
    var peerApplianceId: String
    var intervalSeconds: Int
    var establishedAt: Date
    /// Both boxes claim to be primary: what was seen, and what to do.
    var conflict: String?
}

/// What only this process knows: when the backup syncs next, and who waits for a sync.
final class FailoverRuntime: Sendable {
    struct State {
        var nextSyncAt: Date?
        var syncRequested = false
        var syncing = false
        /// A failover fix runs on this box (one at a time).
        var fixing = false
        var waiters: [CheckedContinuation<SyncRecord, any Error>] = []
    }
    let state = Mutex(State())
    let wake: AsyncStream<Void>
    let wakeUp: AsyncStream<Void>.Continuation

    init() {
        (wake, wakeUp) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    func schedule(_ date: Date?) {
        state.withLock { $0.nextSyncAt = date }
        wakeUp.yield()
    }
}

extension Appliance {
    static let failoverKeyName = "key"
    static let relationshipName = "relationship"
    static let syncHistoryName = "sync.history"

    // MARK: The inter-appliance key (security page)

    func failoverKey() throws -> String? { try site.failoverValue(Self.failoverKeyName) }

    static func fingerprint(_ key: String) -> String {
        "sha256:" + String(SHA256Hasher.hash(Array(key.utf8)).hexString.prefix(16))
    }

    public func failoverKeyStatus() throws -> FailoverKeyStatus {
        let key = try failoverKey()
        return FailoverKeyStatus(isSet: key != nil, fingerprint: key.map(Self.fingerprint))
    }

    /// Sets or rotates the key. Rotating it on one box of a pair stops their syncs until the other has it too.
    public func setFailoverKey(_ request: FailoverKeyRequest) throws -> FailoverKeyStatus {
        let key = request.key
        guard (32...256).contains(key.unicodeScalars.count),
            key.unicodeScalars.allSatisfy({ (0x21...0x7e).contains($0.value) })
        else {
            throw ApplianceServerError.badRequest(
                "the inter-appliance key must be 32 to 256 printable ASCII characters without spaces, e.g. from "
                    + "`openssl rand -hex 32`; nothing was changed"
            )
        }
        try site.setFailoverValue(Self.failoverKeyName, key)
        logger.notice("Inter-appliance key set", metadata: ["failover.key": "\(Self.fingerprint(key))"])
        return try failoverKeyStatus()
    }

    // MARK: Relationship state

    func relationship() throws -> Relationship? {
        guard let text = try site.failoverValue(Self.relationshipName) else { return nil }
        return try APICoding.decoder().decode(Relationship.self, from: Data(text.utf8))
    }

    func saveRelationship(_ relationship: Relationship?) throws {
        let text = try relationship.map { String(decoding: try APICoding.encoder().encode($0), as: UTF8.self) }
        try site.setFailoverValue(Self.relationshipName, text)
    }

    var failoverRole: String { (try? relationship()?.role.rawValue) ?? "standalone" }

    /// On the backup, the site's primary-only areas answer 409 (A7).
    func refuseOnBackup() throws {
        guard let relationship = try relationship(), relationship.role == .backup else { return }
        throw ApplianceServerError(
            .conflict,
            "failover_backup",
            "this appliance is the backup of \(relationship.peer); make the change on the primary"
        )
    }

    func link(_ relationship: Relationship) throws -> FailoverLink {
        guard let key = try failoverKey() else {
            throw ApplianceServerError(.conflict, "failover_key_missing", "set the inter-appliance key first")
        }
        guard let pin = TLSPin(relationship.peerPin) else {
            throw ApplianceServerError(.internalServerError, "failover_state", "the peer's recorded pin is unreadable")
        }
        return try FailoverLink(address: relationship.peer, pin: pin, key: key, ownId: applianceId)
    }

    public func failoverStatus() throws -> FailoverStatus {
        let relationship = try relationship()
        let history = syncHistory()
        let cursor = try site.syncCursor()
        return FailoverStatus(
            role: relationship?.role.rawValue ?? "standalone",
            peer: relationship?.peer,
            peerApplianceId: relationship?.peerApplianceId,
            key: try failoverKeyStatus(),
            intervalSeconds: relationship?.intervalSeconds,
            nextSyncAt: relationship?.role == .backup ? failover.state.withLock { $0.nextSyncAt } : nil,
            lastSync: history.first,
            lagSeconds: relationship?.role == .backup ? cursor.map { Date().timeIntervalSince($0.takenAt) } : nil,
            conflict: relationship?.conflict,
            history: history
        )
    }

    func failoverHealth() -> FailoverHealth? {
        guard let relationship = try? relationship() else { return nil }
        let last = syncHistory().first
        return FailoverHealth(
            role: relationship.role.rawValue,
            peer: relationship.peer,
            lastSyncAt: last?.finishedAt,
            lastSyncResult: last?.result,
            conflict: relationship.conflict
        )
    }

    func hello() throws -> PeerHello {
        let relationship = try relationship()
        return PeerHello(
            applianceId: applianceId,
            hostname: try box.networkSettings().hostname,
            role: relationship?.role.rawValue ?? "standalone",
            peerApplianceId: relationship?.peerApplianceId,
            siteVersion: try box.installedSoftware().siteVersion,
            holdsNoSiteData: try !site.holdsSiteData() && box.recordings().isEmpty,
            historyRows: try site.history(offset: 0, limit: 1).total,
            syncedFrom: try site.syncCursor()?.primaryApplianceId
        )
    }

    // MARK: Establish (on the box meant to be primary)

    public func establishFailover(_ request: EstablishRequest) async throws -> FailoverStatus {
        let interval = request.intervalSeconds ?? 300
        let delay = request.firstSyncDelaySeconds ?? 60
        guard (10...86_400).contains(interval) else {
            throw ApplianceServerError.badRequest("intervalSeconds must be between 10 and 86400")
        }
        guard (0...3600).contains(delay) else {
            throw ApplianceServerError.badRequest("firstSyncDelaySeconds must be between 0 and 3600")
        }
        let hostname = try box.networkSettings().hostname.lowercased()
        for (field, address) in [("backup", request.backup), ("reverse", request.reverse)] {
            guard let parsed = HostPort(address) else {
                throw ApplianceServerError.badRequest("\(field) must be HOST:PORT, e.g. 127.0.0.12:8443")
            }
            if parsed.host.lowercased() == hostname {
                throw ApplianceServerError.badRequest(
                    "\(field) names the shared site hostname \(hostname); give the appliance's own address instead"
                )
            }
        }
        if let existing = try relationship() {
            throw ApplianceServerError.conflict(
                "this appliance is already the \(existing.role.rawValue) of \(existing.peer); break that first"
            )
        }
        guard let key = try failoverKey() else {
            throw ApplianceServerError(
                .conflict,
                "failover_key_missing",
                "set the inter-appliance key on this appliance's security page first (the same on both)"
            )
        }
        let pin = try await FailoverLink.firstContact(request.backup)
        let link = try FailoverLink(address: request.backup, pin: pin, key: key, ownId: applianceId)
        let peer: PeerHello = try await link.call(.peerHello, body: try hello())
        guard peer.applianceId != applianceId else {
            throw ApplianceServerError.badRequest(
                "\(request.backup) is this appliance itself; give the backup's address"
            )
        }
        guard peer.role == "standalone" else {
            throw ApplianceServerError.conflict(
                "the appliance at \(request.backup) is already a \(peer.role) in a failover relationship; break it "
                    + "there first"
            )
        }
        let version = try box.installedSoftware().siteVersion
        guard peer.siteVersion == version else {
            throw ApplianceServerError.conflict(
                "the backup runs site version \(peer.siteVersion), this appliance \(version): install site version "
                    + "\(version) on the backup first"
            )
        }
        // The same site again: the peer was this box's backup, or this box the peer's (a pair broken for an
        // upgrade is re-established so). What the peer accepted while they were apart is merged here below.
        let syncedFromPeer = try site.syncCursor()?.primaryApplianceId == peer.applianceId
        let rejoining = !peer.holdsNoSiteData && (peer.syncedFrom == applianceId || syncedFromPeer)
        guard peer.holdsNoSiteData || rejoining else {
            throw ApplianceServerError.conflict(
                "the appliance at \(request.backup) holds site data of its own (\(peer.historyRows) history rows), "
                    + "which the first sync would replace: back it up or migrate it first, then factory-reset it, or "
                    + "establish the relationship on it instead so that this appliance becomes its backup"
            )
        }
        // The backup checks the way back itself before it takes the role.
        let _: PeerHello = try await link.call(
            .peerJoin,
            body: PeerJoinRequest(
                primaryApplianceId: applianceId,
                reverse: request.reverse,
                intervalSeconds: interval,
                firstSyncDelaySeconds: delay
            )
        )
        try saveRelationship(
            Relationship(
                role: .primary,
                peer: request.backup,
                peerPin: pin.description,
                peerApplianceId: peer.applianceId,
                intervalSeconds: interval,
                establishedAt: Date()
            )
        )
        if rejoining {
            // The manual: sessions that ended on either box while the relationship was down are synced once it
            // is established again. The backup's first sync then brings it what only this box holds.
            var backupLink = link
            backupLink.timeout = Self.fixTimeout
            let merged = try await takeMissing(from: backupLink)
            logger.notice("Merged from the rejoining backup", metadata: ["failover.rows": "\(merged.historyRows)"])
        }
        logger.notice("Failover established as primary", metadata: ["failover.peer": "\(request.backup)"])
        return try failoverStatus()
    }

    /// The backup's side of establish: validate the reverse direction, then take the role.
    func joinAsBackup(_ request: PeerJoinRequest, from senderId: String) async throws -> PeerHello {
        guard senderId == request.primaryApplianceId else { throw FailoverAuth.keyMismatch }
        if let existing = try relationship() {
            throw ApplianceServerError.conflict(
                "this appliance is already the \(existing.role.rawValue) of \(existing.peer)"
            )
        }
        guard let key = try failoverKey() else { throw FailoverAuth.keyMismatch }
        let pin: TLSPin
        let primary: PeerHello
        do {
            pin = try await FailoverLink.firstContact(request.reverse)
            let link = try FailoverLink(address: request.reverse, pin: pin, key: key, ownId: applianceId)
            primary = try await link.call(.peerHello, body: try hello())
        } catch let error as ApplianceServerError {
            throw ApplianceServerError(
                error.status,
                error.code,
                "the backup cannot reach the primary back at \(request.reverse): \(error.message)"
            )
        }
        guard primary.applianceId == request.primaryApplianceId else {
            throw ApplianceServerError.badRequest(
                "\(request.reverse) is another appliance (\(primary.applianceId)), not the primary; fix the reverse "
                    + "address"
            )
        }
        try saveRelationship(
            Relationship(
                role: .backup,
                peer: request.reverse,
                peerPin: pin.description,
                peerApplianceId: primary.applianceId,
                intervalSeconds: request.intervalSeconds,
                establishedAt: Date()
            )
        )
        try site.logoutEveryone(except: nil)  // the backup takes no sessions of its own from now on
        failover.schedule(Date().addingTimeInterval(TimeInterval(request.firstSyncDelaySeconds)))
        logger.notice("Failover established as backup", metadata: ["failover.peer": "\(request.reverse)"])
        return try hello()
    }

    // MARK: Break, become primary, demote

    /// Ends the relationship on this box and, if it answers, on the peer; no data is lost on either.
    public func breakFailover() async throws -> FailoverStatus {
        guard let relationship = try relationship() else {
            throw ApplianceServerError.conflict("this appliance is not in a failover relationship")
        }
        do {
            let link = try link(relationship)
            let _: PeerHello = try await link.call(.peerBreak, body: Empty())
        } catch {
            logger.warning("The peer was not told of the break", metadata: ["error": "\(error)"])
        }
        try saveRelationship(nil)
        failover.schedule(nil)
        logger.notice("Failover relationship broken")
        return try failoverStatus()
    }

    func peerBroke(_ senderId: String) throws -> PeerHello {
        if let relationship = try relationship(), relationship.peerApplianceId == senderId {
            try saveRelationship(nil)
            failover.schedule(nil)
            logger.notice("Failover relationship broken by the peer")
        }
        return try hello()
    }

    /// On the backup: takes the primary role. With `syncFirst` the primary is quiesced and a final sync pulled;
    /// the peer, if it answers, becomes the backup; without an answer only `force` goes on.
    public func becomePrimary(_ request: BecomePrimaryRequest) async throws -> FailoverStatus {
        guard var relationship = try relationship(), relationship.role == .backup else {
            throw ApplianceServerError.conflict("only the backup of a failover pair can become primary")
        }
        let link = try link(relationship)
        var peerTold = false
        do {
            if request.syncFirst == true {
                let _: PeerHello = try await link.call(.peerQuiesce, body: Empty())
                _ = try await syncNow(wait: true)
            }
            let _: PeerHello = try await link.call(.peerDemote, body: Empty())
            peerTold = true
        } catch let error as ApplianceServerError where error.code == "failover_peer_unreachable" {
            guard request.force == true else {
                throw ApplianceServerError(
                    .conflict,
                    "failover_peer_unreachable",
                    "\(error.message). Give force to become primary without it; if it comes back as primary too, "
                        + "both show a conflict to fix"
                )
            }
        }
        relationship.role = .primary
        relationship.conflict = nil
        try saveRelationship(relationship)
        failover.schedule(nil)
        logger.notice("Became primary", metadata: ["failover.peerTold": "\(peerTold)"])
        return try failoverStatus()
    }

    /// The peer became primary: this box becomes its backup and stops serving the site.
    func demote(_ senderId: String) throws -> PeerHello {
        guard var relationship = try relationship(), relationship.peerApplianceId == senderId else {
            throw ApplianceServerError.conflict("this appliance is not in a relationship with \(senderId)")
        }
        relationship.role = .backup
        relationship.conflict = nil
        // While it was primary this box may have changed its own settings or users: the next sync brings the
        // new primary's whole configuration, not only what changed there since this box's last sync point.
        try site.forgetSyncedConfig()
        try saveRelationship(relationship)
        try site.logoutEveryone(except: nil)
        gate.set(.off)
        try? box.setMeta(Self.maintenanceKey, nil)
        failover.schedule(Date().addingTimeInterval(TimeInterval(min(relationship.intervalSeconds, 60))))
        logger.notice("Became backup of \(relationship.peer)")
        return try hello()
    }

    /// The backup asks for a final sync: users here are logged out and new sessions refused until it has moved.
    func quiesce(_ senderId: String) async throws -> PeerHello {
        guard let relationship = try relationship(), relationship.peerApplianceId == senderId,
            relationship.role == .primary
        else {
            throw ApplianceServerError.conflict("only this appliance's backup may ask it to quiesce")
        }
        _ = try await setMaintenance(
            MaintenanceRequest(enabled: true, reason: "the site is moving to the failover backup; try again shortly"),
            keepingSession: nil
        )
        return try hello()
    }
}
