import ApplianceAPI
import Foundation
import HTTPTypes

/// What the fix rule knows of one box of a pair that are both primary.
struct FixFacts: Sendable, Equatable {
    var applianceId: String
    /// How the other box reaches this one (`HOST:PORT`).
    var address: String
    var addresses: [PeerAddress]
    var newestDataAt: Date?
}

/// Which box stays primary, and why.
struct FixDecision: Sendable, Equatable {
    enum Rule: String, Sendable {
        case sharedAddress = "shared-address", newestData = "newest-data", named = "operator"
    }
    var rule: Rule
    /// Whether the box that took the request (`here`) stays primary.
    var hereWins: Bool
    var reason: String
    var hereHolds: [String]
    var peerHolds: [String]
}

/// The documented rule that ends a split brain (both boxes primary), in order:
///
/// 1. The box that holds the enabled shared address wins. A shared address is one configured on both boxes (the
///    site address a shared-IP swap moves); a box holds it when it is enabled and listening there. It decides only
///    when exactly one box holds one.
/// 2. Else the box with the newest data wins: the later of its newest history row's end time and the newest
///    modification time of its files and recordings that the other box does not hold with the same content,
///    to the millisecond. Equal (or no data on either) does not decide.
/// 3. Else the box the operator names (`winner`); without one the fix is refused and nothing changes.
///
/// A `winner` given where rule 1 or 2 decides must name the same box, or the fix is refused. Pure: no I/O.
enum FixRule {
    static func decide(here: FixFacts, peer: FixFacts, winner: String?) throws -> FixDecision {
        let named = try winner.map { try namesHere($0, here: here, peer: peer) }
        let hereHolds = held(by: here, sharedWith: peer)
        let peerHolds = held(by: peer, sharedWith: here)
        var decision: FixDecision
        if hereHolds.isEmpty != peerHolds.isEmpty {
            let (box, list) = hereHolds.isEmpty ? (peer, peerHolds) : (here, hereHolds)
            decision = FixDecision(
                rule: .sharedAddress,
                hereWins: !hereHolds.isEmpty,
                reason: "\(box.address) holds the enabled shared address \(list.joined(separator: ", ")) "
                    + "(configured on both boxes, enabled and listening only on this one)",
                hereHolds: hereHolds,
                peerHolds: peerHolds
            )
        } else if let newest = newer(here.newestDataAt, peer.newestDataAt) {
            let (box, other) = newest ? (here, peer) : (peer, here)
            decision = FixDecision(
                rule: .newestData,
                hereWins: newest,
                reason: "no shared address decides (\(sharedNote(hereHolds, peerHolds))); \(box.address) holds the "
                    + "newest data (\(date(box.newestDataAt)) against \(date(other.newestDataAt)) on "
                    + "\(other.address))",
                hereHolds: hereHolds,
                peerHolds: peerHolds
            )
        } else {
            guard let named else {
                throw ApplianceServerError(
                    .conflict,
                    "failover_fix_needs_winner",
                    "the rule cannot decide which box stays primary: no shared address decides "
                        + "(\(sharedNote(hereHolds, peerHolds))) and both hold data as new "
                        + "(\(date(here.newestDataAt))). Name the box to keep with --winner (API: winner): "
                        + "\(here.applianceId) at \(here.address) or \(peer.applianceId) at \(peer.address); "
                        + "nothing was changed"
                )
            }
            let box = named ? here : peer
            decision = FixDecision(
                rule: .named,
                hereWins: named,
                reason: "no shared address decides (\(sharedNote(hereHolds, peerHolds))) and both hold data as new "
                    + "(\(date(here.newestDataAt))); the operator named \(box.address)",
                hereHolds: hereHolds,
                peerHolds: peerHolds
            )
        }
        if let named, named != decision.hereWins {
            let keep = decision.hereWins ? here : peer
            let other = decision.hereWins ? peer : here
            throw ApplianceServerError(
                .conflict,
                "failover_fix_winner_contradicts",
                "--winner names \(other.address), but the rule keeps \(keep.address): \(decision.reason). Drop "
                    + "--winner to follow the rule, or change what decides (e.g. move the shared address to "
                    + "\(other.address)) first; nothing was changed"
            )
        }
        decision.reason = "rule \(decision.rule.rawValue): " + decision.reason
        return decision
    }

    /// The shared addresses `box` holds: configured on both boxes, enabled and listening on `box`.
    static func held(by box: FixFacts, sharedWith other: FixFacts) -> [String] {
        let configured = Set(other.addresses.map(\.address))
        return box.addresses.filter { configured.contains($0.address) && $0.enabled && $0.listening }
            .map(\.address).sorted()
    }

    /// True when `a` is newer than `b`, false when older, nil when equal to the millisecond (what the databases
    /// keep and the API carries: the same time read on both boxes may differ below that).
    static func newer(_ a: Date?, _ b: Date?) -> Bool? {
        func milliseconds(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded()) }
        switch (a.map(milliseconds), b.map(milliseconds)) {
        case (nil, nil): return nil
        case (.some, nil): return true
        case (nil, .some): return false
        case (.some(let a), .some(let b)): return a == b ? nil : a > b
        }
    }

    /// Whether `winner` names `here` (true) or `peer` (false): an appliance id, or the host of an address.
    static func namesHere(_ winner: String, here: FixFacts, peer: FixFacts) throws -> Bool {
        let text = winner.trimmingCharacters(in: .whitespaces).lowercased()
        let host = HostPort(text)?.host ?? text
        func names(_ box: FixFacts) -> Bool {
            box.applianceId.lowercased() == text || HostPort(box.address)?.host.lowercased() == host
                || box.addresses.contains { $0.address.lowercased() == host }
        }
        switch (names(here), names(peer)) {
        case (true, false): return true
        case (false, true): return false
        case (true, true):
            throw ApplianceServerError.badRequest(
                "winner \(winner) names an address both boxes have configured; give an appliance id "
                    + "(\(here.applianceId) or \(peer.applianceId)) or the address the other box reaches it at "
                    + "(\(here.address) or \(peer.address)); nothing was changed"
            )
        case (false, false):
            throw ApplianceServerError.badRequest(
                "winner \(winner) names neither box of the pair; give \(here.applianceId) (\(here.address)) or "
                    + "\(peer.applianceId) (\(peer.address)); nothing was changed"
            )
        }
    }

    static func sharedNote(_ here: [String], _ peer: [String]) -> String {
        here.isEmpty && peer.isEmpty
            ? "neither box holds an address configured on both"
            : "both boxes hold shared addresses: \((here + peer).sorted().joined(separator: ", "))"
    }

    static func date(_ date: Date?) -> String { date.map(APICoding.formatDate) ?? "no data" }
}
