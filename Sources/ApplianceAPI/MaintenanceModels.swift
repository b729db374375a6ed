public import Foundation

/// A8 maintenance mode: while it is on, users are logged out, logins of site users and every site write answer
/// 503 with `message` and a Retry-After, and the management API (reads, network, certificates, backup, reset)
/// keeps working for administrators.
public struct MaintenanceStatus: Codable, Sendable, Equatable {
    public var enabled: Bool
    /// Why the site is closed, in the operator's words; every refusal quotes it.
    public var reason: String?
    /// When it was turned on (the start of a migration's downtime).
    public var since: Date?
    /// The Retry-After (seconds) the refusals give.
    public var retryAfterSeconds: Int

    public init(enabled: Bool, reason: String? = nil, since: Date? = nil, retryAfterSeconds: Int = 30) {
        self.enabled = enabled
        self.reason = reason
        self.since = since
        self.retryAfterSeconds = retryAfterSeconds
    }

    public static let off = MaintenanceStatus(enabled: false)

    /// What a refused client reads.
    public var refusal: String {
        "the appliance is in maintenance: \(reason ?? "the site is closed for maintenance"); "
            + "try again in \(retryAfterSeconds) s"
    }
}

/// `PUT /appliance/api/maintenance`.
public struct MaintenanceRequest: Codable, Sendable, Equatable {
    public var enabled: Bool
    /// Shown to every refused client; 1 to 200 characters. Defaults to a generic maintenance message.
    public var reason: String?
    /// 1 to 3600; default 30.
    public var retryAfterSeconds: Int?

    public init(enabled: Bool, reason: String? = nil, retryAfterSeconds: Int? = nil) {
        self.enabled = enabled
        self.reason = reason
        self.retryAfterSeconds = retryAfterSeconds
    }
}
