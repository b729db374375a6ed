public import Foundation

// A7 failover: what the failover page shows and takes, and what two appliances say to each other.

/// `PUT /login/api/failover/key`: the inter-appliance pre-shared key; both boxes of a pair must hold the same.
public struct FailoverKeyRequest: Codable, Sendable {
    /// 32 to 256 characters.
    public var key: String

    public init(key: String) { self.key = key }
}

/// The key as the security page shows it: never the key itself.
public struct FailoverKeyStatus: Codable, Sendable, Equatable {
    public var isSet: Bool
    /// `sha256:` and the first 16 hex digits of SHA-256 of the key; equal on both boxes when the keys are equal.
    public var fingerprint: String?

    public init(isSet: Bool, fingerprint: String?) {
        self.isSet = isSet
        self.fingerprint = fingerprint
    }
}

/// `POST /login/api/failover/establish`, on the box meant to be primary.
public struct EstablishRequest: Codable, Sendable {
    /// How this box reaches the new backup: host or IP and TLS port (`HOST:PORT`).
    public var backup: String
    /// How the backup reaches this box back (`HOST:PORT`).
    public var reverse: String
    /// Seconds between syncs (10 to 86400; default 300).
    public var intervalSeconds: Int?
    /// Seconds until the first sync (0 to 3600; default 60, as the vendor's).
    public var firstSyncDelaySeconds: Int?

    public init(backup: String, reverse: String, intervalSeconds: Int? = nil, firstSyncDelaySeconds: Int? = nil) {
        self.backup = backup
        self.reverse = reverse
        self.intervalSeconds = intervalSeconds
        self.firstSyncDelaySeconds = firstSyncDelaySeconds
    }
}

/// `POST /login/api/failover/become-primary`, on the backup.
public struct BecomePrimaryRequest: Codable, Sendable {
    /// Pull a final sync first; users on the primary are logged out and new sessions refused meanwhile.
    public var syncFirst: Bool?
    /// Become primary even when the peer cannot be reached (it is not told; a later conflict is shown).
    public var force: Bool?

    public init(syncFirst: Bool? = nil, force: Bool? = nil) {
        self.syncFirst = syncFirst
        self.force = force
    }
}

/// `POST /login/api/failover/sync`.
public struct SyncNowRequest: Codable, Sendable {
    /// Answer only when the sync has finished (with its result).
    public var wait: Bool?

    public init(wait: Bool? = nil) { self.wait = wait }
}

/// One data sync, as the failover page lists it.
public struct SyncRecord: Codable, Sendable, Equatable {
    public var startedAt: Date
    public var finishedAt: Date
    /// `ok`, or `failed` with `error`.
    public var result: String
    public var error: String?
    public var durationSeconds: Double
    /// Bytes of rows, files and recordings moved.
    public var bytes: Int64
    public var historyRows: Int
    public var files: Int
    public var recordings: Int
    /// Whether settings, users or the security policy changed.
    public var configChanged: Bool

    public init(
        startedAt: Date,
        finishedAt: Date,
        result: String,
        error: String? = nil,
        durationSeconds: Double,
        bytes: Int64,
        historyRows: Int,
        files: Int,
        recordings: Int,
        configChanged: Bool
    ) {
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.result = result
        self.error = error
        self.durationSeconds = durationSeconds
        self.bytes = bytes
        self.historyRows = historyRows
        self.files = files
        self.recordings = recordings
        self.configChanged = configChanged
    }
}

/// `GET /login/api/failover`: the failover page.
public struct FailoverStatus: Codable, Sendable, Equatable {
    /// `standalone`, `primary` or `backup`.
    public var role: String
    /// How this box reaches its peer (`HOST:PORT`).
    public var peer: String?
    public var peerApplianceId: String?
    public var key: FailoverKeyStatus
    public var intervalSeconds: Int?
    /// When the backup syncs next.
    public var nextSyncAt: Date?
    public var lastSync: SyncRecord?
    /// Seconds the backup's data is behind the primary's: the age of the last sync point (backup only).
    public var lagSeconds: Double?
    /// Set when both boxes of the pair claim to be primary, with what to do.
    public var conflict: String?
    /// The last syncs, newest first.
    public var history: [SyncRecord]

    public init(
        role: String,
        peer: String? = nil,
        peerApplianceId: String? = nil,
        key: FailoverKeyStatus,
        intervalSeconds: Int? = nil,
        nextSyncAt: Date? = nil,
        lastSync: SyncRecord? = nil,
        lagSeconds: Double? = nil,
        conflict: String? = nil,
        history: [SyncRecord] = []
    ) {
        self.role = role
        self.peer = peer
        self.peerApplianceId = peerApplianceId
        self.key = key
        self.intervalSeconds = intervalSeconds
        self.nextSyncAt = nextSyncAt
        self.lastSync = lastSync
        self.lagSeconds = lagSeconds
        self.conflict = conflict
        self.history = history
    }
}

// MARK: Between the appliances (authenticated by the pre-shared key, not by a user session)

/// What a box tells its peer about itself.
public struct PeerHello: Codable, Sendable, Equatable {
    public var applianceId: String
    public var hostname: String
    public var role: String
    /// The peer of this box's relationship, if any.
    public var peerApplianceId: String?
    public var siteVersion: String
    /// True while the box holds no site data (no history, files or recordings, only the factory users).
    public var holdsNoSiteData: Bool
    public var historyRows: Int
    /// The appliance whose syncs this box last applied (its sync cursor), if any: a box that was the backup of
    /// a primary holds that primary's site, so the two may be paired again (an older applianced leaves it out).
    public var syncedFrom: String?

    public init(
        applianceId: String,
        hostname: String,
        role: String,
        peerApplianceId: String?,
        siteVersion: String,
        holdsNoSiteData: Bool,
        historyRows: Int,
        syncedFrom: String? = nil
    ) {
        self.applianceId = applianceId
        self.hostname = hostname
        self.role = role
        self.peerApplianceId = peerApplianceId
        self.siteVersion = siteVersion
        self.holdsNoSiteData = holdsNoSiteData
        self.historyRows = historyRows
        self.syncedFrom = syncedFrom
    }
}

/// The primary asks the new backup to join: the backup validates the reverse direction before it says yes.
public struct PeerJoinRequest: Codable, Sendable {
    public var primaryApplianceId: String
    /// How the backup reaches the primary (`HOST:PORT`).
    public var reverse: String
    public var intervalSeconds: Int
    public var firstSyncDelaySeconds: Int

    public init(primaryApplianceId: String, reverse: String, intervalSeconds: Int, firstSyncDelaySeconds: Int) {
        self.primaryApplianceId = primaryApplianceId
        self.reverse = reverse
        self.intervalSeconds = intervalSeconds
        self.firstSyncDelaySeconds = firstSyncDelaySeconds
    }
}

/// A history row with the id it has on every box; times exactly as the primary stores them, so both boxes hold
/// the same bytes (and the same digest).
public struct SyncedHistoryRow: Codable, Sendable, Equatable {
    public var uid: String
    public var sessionId: String
    public var username: String
    public var target: String
    public var proto: String
    public var startedAt: String
    public var endedAt: String
    public var bytesTransferred: Int64
    public var summary: String

    public init(
        uid: String,
        sessionId: String,
        username: String,
        target: String,
        proto: String,
        startedAt: String,
        endedAt: String,
        bytesTransferred: Int64,
        summary: String
    ) {
        self.uid = uid
        self.sessionId = sessionId
        self.username = username
        self.target = target
        self.proto = proto
        self.startedAt = startedAt
        self.endedAt = endedAt
        self.bytesTransferred = bytesTransferred
        self.summary = summary
    }
}

/// A user with everything a backup needs to let the same people in.
public struct SyncedUser: Codable, Sendable, Equatable {
    public var username: String
    public var displayName: String
    public var email: String
    public var passwordHash: String
    public var isAdministrator: Bool
    public var mustChangePassword: Bool

    public init(
        username: String,
        displayName: String,
        email: String,
        passwordHash: String,
        isAdministrator: Bool,
        mustChangePassword: Bool
    ) {
        self.username = username
        self.displayName = displayName
        self.email = email
        self.passwordHash = passwordHash
        self.isAdministrator = isAdministrator
        self.mustChangePassword = mustChangePassword
    }
}

/// The backup's side of a sync: where it stands.
public struct PeerChangesRequest: Codable, Sendable {
    /// The primary's history row id the backup has everything up to (0: nothing yet).
    public var historyAfter: Int64
    public var configDigest: String?
    /// At most this many history rows in one answer.
    public var limit: Int

    public init(historyAfter: Int64, configDigest: String?, limit: Int) {
        self.historyAfter = historyAfter
        self.configDigest = configDigest
        self.limit = limit
    }
}

/// Settings, users and the security policy: small, moved whole when their digest changed.
public struct SyncedConfig: Codable, Sendable, Equatable {
    public var settings: [String: String]
    public var users: [SyncedUser]
    public var securityPolicy: SecurityPolicy

    public init(settings: [String: String], users: [SyncedUser], securityPolicy: SecurityPolicy) {
        self.settings = settings
        self.users = users
        self.securityPolicy = securityPolicy
    }
}

/// What changed on the primary since the backup's cursor.
public struct PeerChanges: Codable, Sendable {
    public var primaryApplianceId: String
    /// When the primary read this (the sync point's time).
    public var takenAt: Date
    /// The history rows after the cursor, in id order, at most `limit`.
    public var history: [SyncedHistoryRow]
    /// The primary id of the last row in `history` (or the cursor when there is none).
    public var historyThrough: Int64
    /// More rows follow: ask again from `historyThrough`.
    public var more: Bool
    public var configDigest: String
    /// Present when `configDigest` differs from the backup's.
    public var config: SyncedConfig?
    /// The whole file store index and recordings index (name, size, SHA-256).
    public var files: [StoredFileInfo]
    public var recordings: [StoredFileInfo]

    public init(
        primaryApplianceId: String,
        takenAt: Date,
        history: [SyncedHistoryRow],
        historyThrough: Int64,
        more: Bool,
        configDigest: String,
        config: SyncedConfig?,
        files: [StoredFileInfo],
        recordings: [StoredFileInfo]
    ) {
        self.primaryApplianceId = primaryApplianceId
        self.takenAt = takenAt
        self.history = history
        self.historyThrough = historyThrough
        self.more = more
        self.configDigest = configDigest
        self.config = config
        self.files = files
        self.recordings = recordings
    }
}

/// What the health probe tells of a failover pair (A1, A7).
public struct FailoverHealth: Codable, Sendable, Equatable {
    public var role: String
    public var peer: String?
    public var lastSyncAt: Date?
    /// `ok` or `failed`; nil before the first sync.
    public var lastSyncResult: String?
    public var conflict: String?

    public init(role: String, peer: String?, lastSyncAt: Date?, lastSyncResult: String?, conflict: String?) {
        self.role = role
        self.peer = peer
        self.lastSyncAt = lastSyncAt
        self.lastSyncResult = lastSyncResult
        self.conflict = conflict
    }
}
