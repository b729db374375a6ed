public import ApplianceInventory

/// One appliance of a run, as the journal remembers it: its inventory name and how to reach it.
public struct BoxReference: Codable, Sendable, Equatable {
    public var name: String
    /// HOST:PORT, known once the appliance exists (a virtual one gets it at step 1).
    public var address: String?
    /// The recorded TLS key pin, `sha256/…`.
    public var pin: String?
    public var isVirtual: Bool

    public init(name: String, address: String?, pin: String?, isVirtual: Bool) {
        self.name = name
        self.address = address
        self.pin = pin
        self.isVirtual = isVirtual
    }
}

/// How the site's clients are pointed at the new appliance (P5): the playbook's `cutover`, kept in the journal.
public typealias CutoverMethod = Cutover

/// What a migration run was asked to do: everything but secrets, which are read anew on every run and resume.
public struct MigrationSettings: Codable, Sendable, Equatable {
    public var old: BoxReference
    public var new: BoxReference
    /// Names of the secrets (environment variables or lines of the secrets file), never their values.
    public var oldPasswordSecret: String
    public var newPasswordSecret: String
    public var backupPasswordSecret: String
    public var certificatePassphraseSecret: String?
    public var includeHistory: Bool
    public var hostnameFromOld: Bool
    /// A package repository (directory or http(s) URL) for step 5.
    public var repository: String?
    public var cutover: CutoverMethod
    public var decommission: Bool
    /// How the site's data moves; absent in journals written before `method: live` existed (backup-restore), and in
    /// the settings of a playbook that names none until `RunSession.chooseMethod` has chosen.
    public var method: MigrationMethod?
    /// HOST:PORT by which the new box reaches the old one, where that is not the old box's own address: a virtual
    /// appliance on QEMU user networking connects through a guest forward (`GuestForward`) that its domain is
    /// defined with at step 1. Absent in journals written before, and for boxes that reach each other directly.
    public var oldAddressFromNew: String?

    public init(
        old: BoxReference,
        new: BoxReference,
        oldPasswordSecret: String,
        newPasswordSecret: String,
        backupPasswordSecret: String,
        certificatePassphraseSecret: String? = nil,
        includeHistory: Bool = true,
        hostnameFromOld: Bool = true,
        repository: String? = nil,
        cutover: CutoverMethod = .none,
        decommission: Bool = false,
        method: MigrationMethod? = .backupRestore,
        oldAddressFromNew: String? = nil
    ) {
        self.old = old
        self.new = new
        self.oldPasswordSecret = oldPasswordSecret
        self.newPasswordSecret = newPasswordSecret
        self.backupPasswordSecret = backupPasswordSecret
        self.certificatePassphraseSecret = certificatePassphraseSecret
        self.includeHistory = includeHistory
        self.hostnameFromOld = hostnameFromOld
        self.repository = repository
        self.cutover = cutover
        self.decommission = decommission
        self.method = method
        self.oldAddressFromNew = oldAddressFromNew
    }

    /// Whether the new box syncs as a failover backup of the old one (`method: live`).
    public var isLive: Bool { method == .live }

    /// The steps a migration with these settings runs.
    public var plan: [MigrationStep] { MigrationProcedure.plan(for: self) }

    /// Reads the secrets this run needs by their names; fails naming the first missing one.
    public func secrets(from source: SecretSource) throws -> MigrationSecrets {
        MigrationSecrets(
            oldPassword: try source.resolve(oldPasswordSecret).reveal(),
            newPassword: try source.resolve(newPasswordSecret).reveal(),
            backupPassword: try source.resolve(backupPasswordSecret).reveal(),
            certificatePassphrase: try certificatePassphraseSecret.map { try source.resolve($0).reveal() }
        )
    }
}

/// The secret values a run needs, read from the environment or the secrets file on every run and resume.
public struct MigrationSecrets: Sendable {
    public var oldPassword: String
    public var newPassword: String
    public var backupPassword: String
    /// Protects the certificate's key between export and import; a random one per attempt when nil.
    public var certificatePassphrase: String?

    public init(oldPassword: String, newPassword: String, backupPassword: String, certificatePassphrase: String?) {
        self.oldPassword = oldPassword
        self.newPassword = newPassword
        self.backupPassword = backupPassword
        self.certificatePassphrase = certificatePassphrase
    }
}
