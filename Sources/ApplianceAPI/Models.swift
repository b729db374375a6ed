public import Foundation

// The JSON bodies of the management API. Field names are the wire names; `docs/openapi.yaml` describes them.

/// The answer of the unauthenticated health probe.
public struct HealthResponse: Codable, Sendable, Equatable {
    public var status: String
    public var applianceId: String
    public var hostname: String
    public var reason: String?
    /// Present while the appliance is in maintenance mode (A8); the probe still answers 200.
    public var maintenance: MaintenanceStatus?
    /// Addresses serving the factory certificate because their assigned one cannot serve TLS; the box still
    /// answers (status "degraded", HTTP 200). Absent when there are none.
    public var certificateProblems: [CertificateProblem]?
    /// The failover role, peer and last sync (A7); absent while standalone.
    public var failover: FailoverHealth?

    public init(
        status: String,
        applianceId: String,
        hostname: String,
        reason: String? = nil,
        maintenance: MaintenanceStatus? = nil,
        certificateProblems: [CertificateProblem]? = nil,
        failover: FailoverHealth? = nil
    ) {
        self.failover = failover
        self.status = status
        self.applianceId = applianceId
        self.hostname = hostname
        self.reason = reason
        self.maintenance = maintenance
        self.certificateProblems = certificateProblems
    }
}

/// Every error the appliance answers with: a stable machine code and a message for the operator.
public struct ErrorResponse: Codable, Sendable, Equatable {
    public var error: String
    public var message: String

    public init(error: String, message: String) {
        self.error = error
        self.message = message
    }
}

public struct LoginRequest: Codable, Sendable {
    public var username: String
    public var password: String

    public init(username: String, password: String) {
        self.username = username
        self.password = password
    }
}

public struct LoginResponse: Codable, Sendable {
    public var token: String
    public var expiresAt: Date
    public var passwordChangeRequired: Bool

    public init(token: String, expiresAt: Date, passwordChangeRequired: Bool) {
        self.token = token
        self.expiresAt = expiresAt
        self.passwordChangeRequired = passwordChangeRequired
    }
}

public struct ChangePasswordRequest: Codable, Sendable {
    public var currentPassword: String
    public var newPassword: String

    public init(currentPassword: String, newPassword: String) {
        self.currentPassword = currentPassword
        self.newPassword = newPassword
    }
}

public struct InstalledSoftware: Codable, Sendable, Equatable {
    public var baseVersion: String
    public var siteVersion: String
    public var addons: [String]

    public init(baseVersion: String, siteVersion: String, addons: [String]) {
        self.baseVersion = baseVersion
        self.siteVersion = siteVersion
        self.addons = addons
    }
}

public struct ClockStatus: Codable, Sendable, Equatable {
    public var utc: Date
    public var ntpServers: [String]
    public var lastNtpSync: Date?
    public var source: String

    public init(utc: Date, ntpServers: [String], lastNtpSync: Date?, source: String) {
        self.utc = utc
        self.ntpServers = ntpServers
        self.lastNtpSync = lastNtpSync
        self.source = source
    }
}

/// A1: what the status page shows.
public struct StatusResponse: Codable, Sendable {
    public var hostname: String
    public var applianceId: String
    public var software: InstalledSoftware
    public var clock: ClockStatus
    public var uptimeSeconds: Double
    public var failoverRole: String
    /// The file system holding the appliance's data; absent from appliances older than this field.
    public var storage: StorageStatus?
    /// Maintenance mode (A8); absent from appliances older than this field.
    public var maintenance: MaintenanceStatus?
    /// Addresses serving the factory certificate because their assigned one cannot serve TLS; absent when none.
    public var certificateProblems: [CertificateProblem]?

    public init(
        hostname: String,
        applianceId: String,
        software: InstalledSoftware,
        clock: ClockStatus,
        uptimeSeconds: Double,
        failoverRole: String,
        storage: StorageStatus? = nil,
        maintenance: MaintenanceStatus? = nil,
        certificateProblems: [CertificateProblem]? = nil
    ) {
        self.maintenance = maintenance
        self.certificateProblems = certificateProblems
        self.hostname = hostname
        self.applianceId = applianceId
        self.software = software
        self.clock = clock
        self.uptimeSeconds = uptimeSeconds
        self.failoverRole = failoverRole
        self.storage = storage
    }
}

/// Space on the file system that holds the appliance's data (site database, file store, recordings).
public struct StorageStatus: Codable, Sendable, Equatable {
    public var totalBytes: Int64
    /// What applianced may still write (blocks available to unprivileged users).
    public var freeBytes: Int64

    public init(totalBytes: Int64, freeBytes: Int64) {
        self.totalBytes = totalBytes
        self.freeBytes = freeBytes
    }
}

/// A3: which parts of the appliance an address serves.
public enum AccessType: String, Codable, Sendable, CaseIterable {
    /// `/appliance` and `/login`.
    case both
    /// `/login` only.
    case publicOnly = "public"
    /// `/appliance` only.
    case adminOnly = "admin"

    public var servesAppliance: Bool { self != .publicOnly }
    public var servesSite: Bool { self != .adminOnly }
}

/// A3: one IP configuration entry as the client sends it.
public struct AddressInput: Codable, Sendable, Equatable {
    public var enabled: Bool
    public var port: String
    public var address: String
    public var subnetMask: String
    public var access: AccessType

    public init(enabled: Bool, port: String, address: String, subnetMask: String, access: AccessType) {
        self.enabled = enabled
        self.port = port
        self.address = address
        self.subnetMask = subnetMask
        self.access = access
    }
}

/// A3: one IP configuration entry as stored, with whether a listener answers on it right now.
public struct AddressEntry: Codable, Sendable, Equatable {
    public var id: Int64
    public var enabled: Bool
    public var port: String
    public var address: String
    public var subnetMask: String
    public var access: AccessType
    public var listening: Bool
    /// The certificate this address serves; nil: the factory certificate.
    public var certificateId: Int64?

    public init(
        id: Int64,
        enabled: Bool,
        port: String,
        address: String,
        subnetMask: String,
        access: AccessType,
        listening: Bool,
        certificateId: Int64? = nil
    ) {
        self.id = id
        self.enabled = enabled
        self.port = port
        self.address = address
        self.subnetMask = subnetMask
        self.access = access
        self.listening = listening
        self.certificateId = certificateId
    }
}

public struct NetworkSettings: Codable, Sendable, Equatable {
    public var hostname: String
    public var defaultGateway: String?
    public var dnsServers: [String]
    public var ntpServers: [String]

    public init(hostname: String, defaultGateway: String?, dnsServers: [String], ntpServers: [String]) {
        self.hostname = hostname
        self.defaultGateway = defaultGateway
        self.dnsServers = dnsServers
        self.ntpServers = ntpServers
    }
}

public struct NetworkResponse: Codable, Sendable {
    public var settings: NetworkSettings
    public var addresses: [AddressEntry]
    /// Shown on every network page: network changes interrupt users.
    public var warning: String

    public init(settings: NetworkSettings, addresses: [AddressEntry], warning: String) {
        self.settings = settings
        self.addresses = addresses
        self.warning = warning
    }
}

public struct AddressChangeResponse: Codable, Sendable {
    public var address: AddressEntry?
    public var warning: String

    public init(address: AddressEntry?, warning: String) {
        self.address = address
        self.warning = warning
    }
}

/// A2: password policy, lockout and session lifetime (the security page).
public struct SecurityPolicy: Codable, Sendable, Equatable {
    public var minimumPasswordLength: Int
    public var requireUppercase: Bool
    public var requireLowercase: Bool
    public var requireDigit: Bool
    public var requireSymbol: Bool
    /// Consecutive failed logins after which the account locks.
    public var maxFailedLogins: Int
    public var lockoutSeconds: Int
    /// After n consecutive failures the next attempt waits `backoffBaseSeconds * 2^(n-1)` seconds (at most 60).
    public var backoffBaseSeconds: Double
    public var sessionLifetimeSeconds: Int

    public init(
        minimumPasswordLength: Int,
        requireUppercase: Bool,
        requireLowercase: Bool,
        requireDigit: Bool,
        requireSymbol: Bool,
        maxFailedLogins: Int,
        lockoutSeconds: Int,
        backoffBaseSeconds: Double,
        sessionLifetimeSeconds: Int
    ) {
        self.minimumPasswordLength = minimumPasswordLength
        self.requireUppercase = requireUppercase
        self.requireLowercase = requireLowercase
        self.requireDigit = requireDigit
        self.requireSymbol = requireSymbol
        self.maxFailedLogins = maxFailedLogins
        self.lockoutSeconds = lockoutSeconds
        self.backoffBaseSeconds = backoffBaseSeconds
        self.sessionLifetimeSeconds = sessionLifetimeSeconds
    }

    public static let factoryDefault = SecurityPolicy(
        minimumPasswordLength: 10,
        requireUppercase: true,
        requireLowercase: true,
        requireDigit: true,
        requireSymbol: false,
        maxFailedLogins: 5,
        lockoutSeconds: 300,
        backoffBaseSeconds: 1,
        sessionLifetimeSeconds: 8 * 3600
    )
}

public struct UserInput: Codable, Sendable {
    public var username: String
    public var displayName: String
    public var email: String
    public var password: String

    public init(username: String, displayName: String, email: String, password: String) {
        self.username = username
        self.displayName = displayName
        self.email = email
        self.password = password
    }
}

public struct UserInfo: Codable, Sendable, Equatable {
    public var username: String
    public var displayName: String
    public var email: String
    public var isAdministrator: Bool

    public init(username: String, displayName: String, email: String, isAdministrator: Bool) {
        self.username = username
        self.displayName = displayName
        self.email = email
        self.isAdministrator = isAdministrator
    }
}

/// One row of logged session history.
public struct HistoryRow: Codable, Sendable, Equatable {
    public var id: Int64?
    public var sessionId: String
    public var username: String
    public var target: String
    public var proto: String
    public var startedAt: Date
    public var endedAt: Date
    public var bytesTransferred: Int64
    public var summary: String

    public init(
        id: Int64? = nil,
        sessionId: String,
        username: String,
        target: String,
        proto: String,
        startedAt: Date,
        endedAt: Date,
        bytesTransferred: Int64,
        summary: String
    ) {
        self.id = id
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

public struct HistoryPage: Codable, Sendable {
    public var total: Int
    public var rows: [HistoryRow]

    public init(total: Int, rows: [HistoryRow]) {
        self.total = total
        self.rows = rows
    }
}

public struct AppendHistoryRequest: Codable, Sendable {
    public var rows: [HistoryRow]

    public init(rows: [HistoryRow]) { self.rows = rows }
}

/// A file of the file store or a session recording.
public struct StoredFileInfo: Codable, Sendable, Equatable {
    public var name: String
    public var size: Int64
    public var sha256: String
    public var modifiedAt: Date

    public init(name: String, size: Int64, sha256: String, modifiedAt: Date) {
        self.name = name
        self.size = size
        self.sha256 = sha256
        self.modifiedAt = modifiedAt
    }
}

/// What a site holds, with digests, so two boxes can be compared after a restore or a migration.
public struct SiteSummary: Codable, Sendable, Equatable {
    public var siteVersion: String
    public var settingsCount: Int
    public var settingsDigest: String
    public var userCount: Int
    public var usersDigest: String
    public var historyRows: Int
    public var historyDigest: String
    public var fileCount: Int
    public var fileBytes: Int64
    public var filesDigest: String
    public var recordingCount: Int
    public var recordingBytes: Int64
    public var recordingsDigest: String

    public init(
        siteVersion: String,
        settingsCount: Int,
        settingsDigest: String,
        userCount: Int,
        usersDigest: String,
        historyRows: Int,
        historyDigest: String,
        fileCount: Int,
        fileBytes: Int64,
        filesDigest: String,
        recordingCount: Int,
        recordingBytes: Int64,
        recordingsDigest: String
    ) {
        self.siteVersion = siteVersion
        self.settingsCount = settingsCount
        self.settingsDigest = settingsDigest
        self.userCount = userCount
        self.usersDigest = usersDigest
        self.historyRows = historyRows
        self.historyDigest = historyDigest
        self.fileCount = fileCount
        self.fileBytes = fileBytes
        self.filesDigest = filesDigest
        self.recordingCount = recordingCount
        self.recordingBytes = recordingBytes
        self.recordingsDigest = recordingsDigest
    }
}

public struct GenerateSiteDataRequest: Codable, Sendable {
    /// Total bytes to generate across history, file store and recordings.
    public var bytes: Int64
    public var seed: UInt64

    public init(bytes: Int64, seed: UInt64) {
        self.bytes = bytes
        self.seed = seed
    }
}

public struct BackupRequest: Codable, Sendable {
    /// Optional; when nil or empty the backup is a plain tar archive.
    public var password: String?
    public var includeHistory: Bool

    public init(password: String?, includeHistory: Bool) {
        self.password = password
        self.includeHistory = includeHistory
    }
}

public struct RestoreResponse: Codable, Sendable {
    public var siteVersion: String
    public var createdAt: Date
    public var sourceApplianceId: String
    public var counts: [String: Int]

    public init(siteVersion: String, createdAt: Date, sourceApplianceId: String, counts: [String: Int]) {
        self.siteVersion = siteVersion
        self.createdAt = createdAt
        self.sourceApplianceId = sourceApplianceId
        self.counts = counts
    }
}

public struct FactoryResetRequest: Codable, Sendable {
    /// The appliance's hostname typed back, so a reset is never an accident.
    public var confirmHostname: String
    /// Power the appliance off once it is reset, in the same request (P6): a factory-fresh box answers nothing
    /// but the password change, so it could not be asked afterwards.
    public var powerOff: Bool?

    public init(confirmHostname: String, powerOff: Bool? = nil) {
        self.confirmHostname = confirmHostname
        self.powerOff = powerOff
    }
}

/// A4: what the certificates page shows for one certificate.
public struct CertificateDetails: Codable, Sendable, Equatable {
    public var subject: String
    public var commonName: String
    public var issuer: String
    public var serialHex: String
    public var notBefore: Date
    public var notAfter: Date
    public var dnsNames: [String]
    public var ipAddresses: [String]
    public var keyType: String
    public var keyBits: Int
    public var isSelfSigned: Bool
    public var isCA: Bool
    public var sha256Fingerprint: String
    public var pin: String

    public init(
        subject: String,
        commonName: String,
        issuer: String,
        serialHex: String,
        notBefore: Date,
        notAfter: Date,
        dnsNames: [String],
        ipAddresses: [String],
        keyType: String,
        keyBits: Int,
        isSelfSigned: Bool,
        isCA: Bool,
        sha256Fingerprint: String,
        pin: String
    ) {
        self.subject = subject
        self.commonName = commonName
        self.issuer = issuer
        self.serialHex = serialHex
        self.notBefore = notBefore
        self.notAfter = notAfter
        self.dnsNames = dnsNames
        self.ipAddresses = ipAddresses
        self.keyType = keyType
        self.keyBits = keyBits
        self.isSelfSigned = isSelfSigned
        self.isCA = isCA
        self.sha256Fingerprint = sha256Fingerprint
        self.pin = pin
    }
}

/// A4: one warning about a certificate: a stable code (expired, notYetValid, expiresSoon, hostnameMismatch,
/// chainIncomplete, privateKeyMissing, keyMismatch, weakKey, selfSigned) and a message.
public struct CertificateWarningEntry: Codable, Sendable, Equatable {
    public var code: String
    public var message: String

    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }
}

public struct CertificateEntry: Codable, Sendable, Equatable {
    public var id: Int64
    public var name: String
    public var isFactory: Bool
    public var hasPrivateKey: Bool
    public var chainLength: Int
    public var details: CertificateDetails
    public var warnings: [CertificateWarningEntry]
    /// Addresses serving this certificate.
    public var assignedTo: [String]

    public init(
        id: Int64,
        name: String,
        isFactory: Bool,
        hasPrivateKey: Bool,
        chainLength: Int,
        details: CertificateDetails,
        warnings: [CertificateWarningEntry],
        assignedTo: [String]
    ) {
        self.id = id
        self.name = name
        self.isFactory = isFactory
        self.hasPrivateKey = hasPrivateKey
        self.chainLength = chainLength
        self.details = details
        self.warnings = warnings
        self.assignedTo = assignedTo
    }
}

/// A4 import: a PEM bundle (certificate, chain, key — plain or encrypted) or a PKCS#12 file, base64.
public struct CertificateImportRequest: Codable, Sendable {
    public var name: String
    public var pem: String?
    public var pkcs12Base64: String?
    /// The key's (PEM) or the file's (PKCS#12) passphrase.
    public var passphrase: String?

    public init(name: String, pem: String? = nil, pkcs12Base64: String? = nil, passphrase: String? = nil) {
        self.name = name
        self.pem = pem
        self.pkcs12Base64 = pkcs12Base64
        self.passphrase = passphrase
    }
}

public enum CertificateExportFormat: String, Codable, Sendable, CaseIterable {
    case pem
    case pkcs12
}

/// A4 export: the certificate, optionally with chain and key; a key only ever leaves encrypted.
public struct CertificateExportRequest: Codable, Sendable {
    public var format: CertificateExportFormat
    public var includeChain: Bool
    public var includeKey: Bool
    public var passphrase: String?

    public init(format: CertificateExportFormat, includeChain: Bool, includeKey: Bool, passphrase: String?) {
        self.format = format
        self.includeChain = includeChain
        self.includeKey = includeKey
        self.passphrase = passphrase
    }
}

public struct CertificateAssignment: Codable, Sendable {
    /// nil: serve the factory certificate again.
    public var certificateId: Int64?

    public init(certificateId: Int64?) { self.certificateId = certificateId }
}

/// A5: where the appliance looks for updates: a repository directory or an http(s) URL of one.
public struct UpdateSourceRequest: Codable, Sendable {
    public var repository: String

    public init(repository: String) { self.repository = repository }
}

/// A5: one package the repository offers this appliance.
public struct UpdateEntry: Codable, Sendable, Equatable {
    public var name: String
    public var kind: String
    public var version: String
    public var description: String
    public var eula: String
    /// `applicable`, or `blocked` while a required package is not installed yet.
    public var status: String
    public var waitingFor: String?
    public var message: String?

    public init(
        name: String,
        kind: String,
        version: String,
        description: String,
        eula: String,
        status: String,
        waitingFor: String?,
        message: String?
    ) {
        self.name = name
        self.kind = kind
        self.version = version
        self.description = description
        self.eula = eula
        self.status = status
        self.waitingFor = waitingFor
        self.message = message
    }
}

public struct UpdatesResponse: Codable, Sendable {
    public var source: String?
    public var installed: [String: String]
    /// In installation order: dependencies first.
    public var updates: [UpdateEntry]

    public init(source: String?, installed: [String: String], updates: [UpdateEntry]) {
        self.source = source
        self.installed = installed
        self.updates = updates
    }
}

public struct InstallRequest: Codable, Sendable {
    public var name: String
    /// nil: the newest applicable version.
    public var version: String?
    /// The package's EULA must be accepted explicitly.
    public var acceptEula: Bool

    public init(name: String, version: String?, acceptEula: Bool) {
        self.name = name
        self.version = version
        self.acceptEula = acceptEula
    }
}

public struct InstallResponse: Codable, Sendable {
    public var name: String
    public var kind: String
    public var version: String
    public var software: InstalledSoftware
    public var siteHash: String?
    public var installersGeneration: Int
    public var message: String
    /// The package's post-install self-test; nil when it has none. A failed one leaves `/health` at 500.
    public var selfTest: SelfTestReport?

    public init(
        name: String,
        kind: String,
        version: String,
        software: InstalledSoftware,
        siteHash: String?,
        installersGeneration: Int,
        message: String,
        selfTest: SelfTestReport? = nil
    ) {
        self.selfTest = selfTest
        self.name = name
        self.kind = kind
        self.version = version
        self.software = software
        self.siteHash = siteHash
        self.installersGeneration = installersGeneration
        self.message = message
    }
}

public struct DownloadKeyResponse: Codable, Sendable {
    public var key: String
    public var issuedAt: Date

    public init(key: String, issuedAt: Date) {
        self.key = key
        self.issuedAt = issuedAt
    }
}

/// The header that accepts a package's EULA on an upload (the body is the package file).
public let acceptEulaHeader = "X-Accept-EULA"

/// The header carrying the backup password on a restore upload (the body is the backup file itself).
public let backupPasswordHeader = "X-Backup-Password"

/// JSON coding used on both sides: ISO 8601 dates with fractional seconds.
public enum APICoding {
    public static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(formatDate(date))
        }
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }

    public static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            guard let date = parseDate(text) else {
                throw DecodingError.dataCorruptedError(
                    in: container,
                    debugDescription: "expected an ISO 8601 date, got \(text)"
                )
            }
            return date
        }
        return decoder
    }

    /// RFC 3339 with milliseconds, rounded to the nearest one. (The formatter truncates, and a parsed ".123" is
    /// a binary fraction just below it, so every write-read-write lost a millisecond: a file's time drifted by
    /// one with each sync hop.)
    public static func formatDate(_ date: Date) -> String {
        Date.ISO8601FormatStyle(includingFractionalSeconds: true).format(date.addingTimeInterval(0.0005))
    }

    /// An RFC 3339 date-time (what `formatDate` writes, and what the OpenAPI document allows); nil otherwise.
    public static func parseDate(_ text: String) -> Date? {
        RFC3339.parse(text)
    }
}
