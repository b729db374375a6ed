import CLibvirt

/// The run state of a domain (`virDomainState`).
public enum DomainState: String, Hashable, Sendable, CustomStringConvertible {
    case noState
    case running
    case blocked
    case paused
    case shutdown
    case shutoff
    case crashed
    case pmsuspended

    init(libvirt value: Int32) {
        switch virDomainState(rawValue: UInt32(bitPattern: value)) {
        case VIR_DOMAIN_RUNNING: self = .running
        case VIR_DOMAIN_BLOCKED: self = .blocked
        case VIR_DOMAIN_PAUSED: self = .paused
        case VIR_DOMAIN_SHUTDOWN: self = .shutdown
        case VIR_DOMAIN_SHUTOFF: self = .shutoff
        case VIR_DOMAIN_CRASHED: self = .crashed
        case VIR_DOMAIN_PMSUSPENDED: self = .pmsuspended
        default: self = .noState
        }
    }

    public var description: String {
        rawValue
    }
}

/// A domain's state and libvirt's reason for it (`virDomainGetState`). The reason's meaning depends on the state,
/// for example `VIR_DOMAIN_SHUTOFF_DESTROYED` (2) for `.shutoff`.
public struct DomainStatus: Hashable, Sendable {
    public var state: DomainState
    public var reason: Int32

    public init(state: DomainState, reason: Int32) {
        self.state = state
        self.reason = reason
    }
}

/// A snapshot of a domain, taken when the call returned.
public struct DomainInfo: Hashable, Sendable {
    public var name: String
    public var uuid: String
    public var state: DomainState
    public var maxMemoryKiB: UInt64
    public var vcpus: Int

    public init(name: String, uuid: String, state: DomainState, maxMemoryKiB: UInt64, vcpus: Int) {
        self.name = name
        self.uuid = uuid
        self.state = state
        self.maxMemoryKiB = maxMemoryKiB
        self.vcpus = vcpus
    }
}

/// What `undefine(domain:flags:)` removes besides the definition (`virDomainUndefineFlagsValues`).
public struct UndefineOptions: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32

    public init(rawValue: UInt32) {
        self.rawValue = rawValue
    }

    /// Also remove a managed-save image.
    public static let managedSave = UndefineOptions(rawValue: VIR_DOMAIN_UNDEFINE_MANAGED_SAVE.rawValue)
    /// Also remove snapshot metadata.
    public static let snapshotsMetadata = UndefineOptions(rawValue: VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA.rawValue)
    /// Also remove the UEFI NVRAM file.
    public static let nvram = UndefineOptions(rawValue: VIR_DOMAIN_UNDEFINE_NVRAM.rawValue)
    /// Also remove checkpoint metadata.
    public static let checkpointsMetadata = UndefineOptions(
        rawValue: VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA.rawValue
    )
}

extension LibvirtConnection {
    /// Defines (but does not start) a persistent domain from its XML description (`virDomainDefineXML`).
    public func defineDomain(xml: String) throws -> DomainInfo {
        let operation = "define a domain"
        let connection = try connection(operation)
        guard let pointer = virDomainDefineXML(connection.pointer, xml) else {
            throw LibvirtError.last(operation)
        }
        return try Self.info(of: DomainHandle(pointer, connection: connection))
    }

    /// The domain called `name`, or nil when there is none.
    public func domain(named name: String) throws -> DomainInfo? {
        do {
            return try withDomain(name, "look up domain '\(name)'") { try Self.info(of: $0) }
        } catch let error as LibvirtError where error.code == .notFound {
            return nil
        }
    }

    /// Every domain on the connection, active and inactive (`virConnectListAllDomains`).
    public func listDomains() throws -> [DomainInfo] {
        let operation = "list domains"
        let connection = try connection(operation)
        var list: UnsafeMutablePointer<OpaquePointer?>?
        let count = virConnectListAllDomains(connection.pointer, &list, 0)
        guard count >= 0, let list else {
            throw LibvirtError.last(operation)
        }
        // Own every pointer before anything can throw, so all are freed.
        let handles = (0..<Int(count)).compactMap { index in
            list[index].map { DomainHandle($0, connection: connection) }
        }
        shim_free(list)
        return try snapshots(of: handles) { try Self.info(of: $0) }
    }

    /// Starts a defined domain (`virDomainCreate`).
    public func start(domain name: String) throws {
        try withDomain(name, "start domain '\(name)'") { domain in
            guard virDomainCreate(domain.pointer) == 0 else {
                throw LibvirtError.last("start domain '\(name)'")
            }
        }
    }

    /// Asks the guest to shut down (`virDomainShutdown`); returns before it has stopped.
    public func shutdown(domain name: String) throws {
        try withDomain(name, "shut down domain '\(name)'") { domain in
            guard virDomainShutdown(domain.pointer) == 0 else {
                throw LibvirtError.last("shut down domain '\(name)'")
            }
        }
    }

    /// Stops the domain immediately, like pulling the plug (`virDomainDestroy`).
    public func destroy(domain name: String) throws {
        try withDomain(name, "destroy domain '\(name)'") { domain in
            guard virDomainDestroy(domain.pointer) == 0 else {
                throw LibvirtError.last("destroy domain '\(name)'")
            }
        }
    }

    /// Removes the domain's definition (`virDomainUndefineFlags`). A running domain becomes transient.
    public func undefine(domain name: String, flags: UndefineOptions = []) throws {
        try withDomain(name, "undefine domain '\(name)'") { domain in
            guard virDomainUndefineFlags(domain.pointer, flags.rawValue) == 0 else {
                throw LibvirtError.last("undefine domain '\(name)'")
            }
        }
    }

    /// The domain's state and libvirt's reason for it (`virDomainGetState`).
    public func status(domain name: String) throws -> DomainStatus {
        try withDomain(name, "read the state of domain '\(name)'") { domain in
            var state: Int32 = 0
            var reason: Int32 = 0
            guard virDomainGetState(domain.pointer, &state, &reason, 0) == 0 else {
                throw LibvirtError.last("read the state of domain '\(name)'")
            }
            return DomainStatus(state: DomainState(libvirt: state), reason: reason)
        }
    }

    /// The domain's state (`virDomainGetState`); `status(domain:)` also gives the reason.
    public func state(domain name: String) throws -> DomainState {
        try status(domain: name).state
    }

    /// The domain's current XML description (`virDomainGetXMLDesc`).
    public func xml(domain name: String) throws -> String {
        try withDomain(name, "read the XML of domain '\(name)'") { domain in
            guard let pointer = virDomainGetXMLDesc(domain.pointer, 0) else {
                throw LibvirtError.last("read the XML of domain '\(name)'")
            }
            return takeString(pointer)
        }
    }

    /// Looks the domain up and runs `body` with its handle kept alive until `body` returns.
    private func withDomain<Result>(
        _ name: String,
        _ operation: String,
        _ body: (DomainHandle) throws -> Result
    ) throws -> Result {
        let connection = try connection(operation)
        guard let pointer = virDomainLookupByName(connection.pointer, name) else {
            throw LibvirtError.last(operation)
        }
        let domain = DomainHandle(pointer, connection: connection)
        return try withExtendedLifetime(domain) { try body(domain) }
    }

    private static func info(of domain: DomainHandle) throws -> DomainInfo {
        try withExtendedLifetime(domain) {
            guard let namePointer = virDomainGetName(domain.pointer) else {
                throw LibvirtError.last("read a domain's name")
            }
            let name = String(cString: namePointer)
            guard let uuid = uuidString({ virDomainGetUUIDString(domain.pointer, $0) }) else {
                throw LibvirtError.last("read the UUID of domain '\(name)'")
            }
            var info = virDomainInfo()
            guard virDomainGetInfo(domain.pointer, &info) == 0 else {
                throw LibvirtError.last("read the information of domain '\(name)'")
            }
            return DomainInfo(
                name: name,
                uuid: uuid,
                state: DomainState(libvirt: Int32(info.state)),
                maxMemoryKiB: UInt64(info.maxMem),
                vcpus: Int(info.nrVirtCpu)
            )
        }
    }
}
