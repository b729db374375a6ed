import ApplianceAPI
import Foundation
import Logging

extension Appliance {
    /// How often a primary asks its peer for its role.
    static let conflictCheckInterval: Duration = .seconds(5)

    /// A primary with a relationship asks its peer for its role every few seconds; when the peer is primary too,
    /// both boxes run this loop and each records the conflict. The short "both backup" moment of a swap is fine.
    func runConflictWatch() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: Self.conflictCheckInterval)
            await checkForConflict()
        }
    }

    /// One check: records the conflict when both are primary, clears it when the peer has become the backup.
    func checkForConflict() async {
        guard let relationship = try? relationship(), relationship.role == .primary,
            let link = try? link(relationship), let own = try? hello()
        else { return }
        let peer: PeerHello
        do {
            peer = try await link.call(.peerHello, body: own)
        } catch {
            return  // unreachable: nothing to compare until the link is back
        }
        guard peer.applianceId == relationship.peerApplianceId else { return }
        var updated = relationship
        if peer.role == "primary" {
            updated.conflict =
                "both appliances are primary (this one and \(relationship.peer)) and both serve the site; run "
                + "`appliancectl failover fix ADDRESS --dry-run` against either to see which one stays primary and "
                + "what would be merged or overwritten, then without --dry-run"
        } else if peer.role == "backup" {
            updated.conflict = nil
        }
        guard updated != relationship, (try? self.relationship()) == relationship else { return }
        do {
            try saveRelationship(updated)
            if updated.conflict != nil {
                logger.warning(
                    "Failover conflict: the peer is primary too",
                    metadata: ["failover.peer": "\(relationship.peer)"]
                )
            }
        } catch {
            logger.error("Could not record the failover conflict", metadata: ["error": "\(error)"])
        }
    }
}
