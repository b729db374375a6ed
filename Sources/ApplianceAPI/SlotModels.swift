public import Foundation

/// One software slot (X4): the software an appliance runs, or ran before its last install.
public struct SoftwareSlotInfo: Codable, Sendable, Equatable {
    public var id: String
    public var installedAt: Date
    public var software: InstalledSoftware
    /// `none`, `running`, `passed` or `failed`: the post-install self-test of the package that made the slot.
    public var selfTest: String
    /// "name version" of that package, when it had a self-test.
    public var selfTestPackage: String?
    public var selfTestMessage: String?

    public init(
        id: String,
        installedAt: Date,
        software: InstalledSoftware,
        selfTest: String,
        selfTestPackage: String? = nil,
        selfTestMessage: String? = nil
    ) {
        self.id = id
        self.installedAt = installedAt
        self.software = software
        self.selfTest = selfTest
        self.selfTestPackage = selfTestPackage
        self.selfTestMessage = selfTestMessage
    }
}

/// `GET /appliance/api/updates/slots`: the software installed now and the one step back a rollback may take.
public struct SoftwareSlotsResponse: Codable, Sendable, Equatable {
    public var current: SoftwareSlotInfo
    /// nil before the first install and after a rollback (only one step back is kept).
    public var previous: SoftwareSlotInfo?

    public init(current: SoftwareSlotInfo, previous: SoftwareSlotInfo?) {
        self.current = current
        self.previous = previous
    }
}

/// `POST /appliance/api/updates/rollback`: the software returned to the previous slot.
public struct RollbackResponse: Codable, Sendable, Equatable {
    public var software: InstalledSoftware
    /// The software that was installed before the rollback.
    public var rolledBack: InstalledSoftware
    public var siteHash: String?
    public var installersGeneration: Int
    public var message: String

    public init(
        software: InstalledSoftware,
        rolledBack: InstalledSoftware,
        siteHash: String?,
        installersGeneration: Int,
        message: String
    ) {
        self.software = software
        self.rolledBack = rolledBack
        self.siteHash = siteHash
        self.installersGeneration = installersGeneration
        self.message = message
    }
}

/// The outcome of a package's post-install self-test, in an install's answer.
public struct SelfTestReport: Codable, Sendable, Equatable {
    public var passed: Bool
    /// What failed (exit status or time limit, and the end of its output); nil when it passed.
    public var message: String?

    public init(passed: Bool, message: String?) {
        self.passed = passed
        self.message = message
    }
}
