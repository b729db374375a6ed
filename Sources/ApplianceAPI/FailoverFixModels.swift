public import Foundation

// A7 failover: fixing the conflict of two primaries (split brain), and what the two boxes say to each other for it.

/// `POST /login/api/failover/fix`, on either box of a pair that are both primary.
public struct FailoverFixRequest: Codable, Sendable {
    /// Say what each box would become and what would be merged or overwritten; change nothing.
    public var dryRun: Bool?
    /// The box to keep as primary when the rule cannot decide (neither shared address nor newest data): an
    /// appliance id, or a host (or `HOST:PORT`) of one of its addresses. When the rule decides, it must agree.
    public var winner: String?

    public init(dryRun: Bool? = nil, winner: String? = nil) {
        self.dryRun = dryRun
        self.winner = winner
    }
}

/// How many history rows, files and recordings move.
public struct FixCounts: Codable, Sendable, Equatable {
    public var historyRows: Int
    public var files: Int
    public var recordings: Int

    public init(historyRows: Int = 0, files: Int = 0, recordings: Int = 0) {
        self.historyRows = historyRows
        self.files = files
        self.recordings = recordings
    }
}

/// What the loser held that the winner's version replaces at the sync that follows the fix.
public struct FixOverwritten: Codable, Sendable, Equatable {
    /// Files both boxes hold with different content: the loser's version is replaced.
    public var files: [String]
    /// Recordings both boxes hold with different content.
    public var recordings: [String]
    /// Setting keys whose value on the loser differs from the winner's or that only the loser has.
    public var settings: [String]
    /// Users on the loser that differ from the winner's or that only the loser has.
    public var users: [String]
    /// Whether the security policies differ.
    public var securityPolicy: Bool

    public init(
        files: [String] = [],
        recordings: [String] = [],
        settings: [String] = [],
        users: [String] = [],
        securityPolicy: Bool = false
    ) {
        self.files = files
        self.recordings = recordings
        self.settings = settings
        self.users = users
        self.securityPolicy = securityPolicy
    }
}

/// One box of the pair, as the fix sees it.
public struct FixBox: Codable, Sendable, Equatable {
    public var applianceId: String
    /// How the other box reaches it (`HOST:PORT`).
    public var address: String
    /// Its role before the fix (`primary` when in conflict).
    public var role: String
    /// `primary` (the winner) or `backup` (the loser).
    public var becomes: String
    public var historyRows: Int
    /// The later of its newest history row's end time and the newest modification time of its files and
    /// recordings that the other box does not hold with the same content.
    public var newestDataAt: Date?
    /// Shared addresses (configured on both boxes) that are enabled and listening on this box.
    public var holdsSharedAddresses: [String]

    public init(
        applianceId: String,
        address: String,
        role: String,
        becomes: String,
        historyRows: Int,
        newestDataAt: Date?,
        holdsSharedAddresses: [String]
    ) {
        self.applianceId = applianceId
        self.address = address
        self.role = role
        self.becomes = becomes
        self.historyRows = historyRows
        self.newestDataAt = newestDataAt
        self.holdsSharedAddresses = holdsSharedAddresses
    }
}

/// What `POST /login/api/failover/fix` did, or with `dryRun` would do.
public struct FailoverFixResult: Codable, Sendable, Equatable {
    public var dryRun: Bool
    /// Which branch of the rule decided: `shared-address`, `newest-data` or `operator`.
    public var rule: String
    /// The rule's reason in words.
    public var reason: String
    public var winner: FixBox
    public var loser: FixBox
    /// Copied from the loser into the winner (each history row once, by its uid; files and recordings the winner
    /// lacked). In a dry run: what would be.
    public var merged: FixCounts
    /// What the sync after the fix brings to the loser (the winner's rows, files and recordings it lacks).
    public var loserReceives: FixCounts
    public var overwritten: FixOverwritten
    /// What happens next, or what to do.
    public var next: String

    public init(
        dryRun: Bool,
        rule: String,
        reason: String,
        winner: FixBox,
        loser: FixBox,
        merged: FixCounts,
        loserReceives: FixCounts,
        overwritten: FixOverwritten,
        next: String
    ) {
        self.dryRun = dryRun
        self.rule = rule
        self.reason = reason
        self.winner = winner
        self.loser = loser
        self.merged = merged
        self.loserReceives = loserReceives
        self.overwritten = overwritten
        self.next = next
    }
}

// MARK: Between the appliances

/// One configured address of a box, for the shared-address rule.
public struct PeerAddress: Codable, Sendable, Equatable {
    public var address: String
    public var enabled: Bool
    public var listening: Bool

    public init(address: String, enabled: Bool, listening: Bool) {
        self.address = address
        self.enabled = enabled
        self.listening = listening
    }
}

/// What a box tells its peer for a fix: role, addresses, how new its data is, and its indexes and configuration.
public struct PeerFixState: Codable, Sendable {
    public var applianceId: String
    public var role: String
    /// How this box reaches its peer (`HOST:PORT`): how the peer is named from here.
    public var peer: String
    public var peerApplianceId: String
    public var addresses: [PeerAddress]
    public var historyRows: Int
    /// When its newest history row ended (rows are copied with their times, so a synced row is as new on both).
    public var newestHistoryEndAt: Date?
    public var files: [StoredFileInfo]
    public var recordings: [StoredFileInfo]
    public var config: SyncedConfig

    public init(
        applianceId: String,
        role: String,
        peer: String,
        peerApplianceId: String,
        addresses: [PeerAddress],
        historyRows: Int,
        newestHistoryEndAt: Date?,
        files: [StoredFileInfo],
        recordings: [StoredFileInfo],
        config: SyncedConfig
    ) {
        self.applianceId = applianceId
        self.role = role
        self.peer = peer
        self.peerApplianceId = peerApplianceId
        self.addresses = addresses
        self.historyRows = historyRows
        self.newestHistoryEndAt = newestHistoryEndAt
        self.files = files
        self.recordings = recordings
        self.config = config
    }
}

/// A page of a box's history rows in its own id order, with their uids.
public struct PeerHistoryRequest: Codable, Sendable {
    /// The responder's row id to continue after (0: from the start).
    public var after: Int64
    public var limit: Int

    public init(after: Int64, limit: Int) {
        self.after = after
        self.limit = limit
    }
}

public struct PeerHistoryPage: Codable, Sendable {
    public var rows: [SyncedHistoryRow]
    /// The responder's id of the last row in `rows`: ask again from here while `more`.
    public var through: Int64
    public var more: Bool

    public init(rows: [SyncedHistoryRow], through: Int64, more: Bool) {
        self.rows = rows
        self.through = through
        self.more = more
    }
}

/// The loser of a fix asks the winner to take what it lacks from the loser and then make the loser its backup.
public struct PeerMergeRequest: Codable, Sendable {
    /// The plan the loser worked out, returned with the winner's actual counts.
    public var plan: FailoverFixResult

    public init(plan: FailoverFixResult) { self.plan = plan }
}
