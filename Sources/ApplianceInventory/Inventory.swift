public import Foundation

/// The hypervisors and appliances `appliancectl` manages, as read from an inventory file (YAML).
///
/// An inventory is only ever handed out fully validated: `load(from:)` and `parse(_:file:)` refuse unknown keys,
/// wrong types, bad names and addresses, out-of-range sizes, duplicate keys, references to undeclared
/// hypervisors and anything that looks like a secret value. Both lists keep the order of the file.
public struct Inventory: Sendable, Hashable {
    /// The file name used in messages (as given to `parse(_:file:)`, or the path given to `load(from:)`).
    public var file: String
    /// The hypervisors, in file order; names are unique.
    public var hypervisors: [Hypervisor]
    /// The appliances, in file order; names are unique.
    public var appliances: [ApplianceEntry]

    public init(file: String, hypervisors: [Hypervisor] = [], appliances: [ApplianceEntry] = []) {
        self.file = file
        self.hypervisors = hypervisors
        self.appliances = appliances
    }

    /// Reads and validates the inventory file at `url`.
    ///
    /// - Parameter url: The inventory file.
    /// - Throws: `InventoryError` naming the file, line and column at fault and what to do.
    public static func load(from url: URL) throws -> Inventory {
        let text = try InventoryFile.readText(of: url)
        return try parse(text, file: InventoryFile.displayName(of: url))
    }

    /// Validates inventory text.
    ///
    /// - Parameters:
    ///   - text: The YAML text.
    ///   - file: The file name to put in messages, such as `inventory.yml`.
    /// - Throws: `InventoryError` naming the file, line and column at fault and what to do.
    public static func parse(_ text: String, file: String) throws -> Inventory {
        try InventoryDocument(text: text, file: file).inventory
    }

    /// The appliance called `name`.
    ///
    /// - Throws: `InventoryError` with code `.unknownAppliance`, listing the names the inventory knows.
    public func appliance(named name: String) throws -> ApplianceEntry {
        if let entry = appliances.first(where: { $0.name == name }) { return entry }
        throw InventoryError(
            code: .unknownAppliance,
            message: "no appliance '\(name)' in \(file)\(Self.suggestion(for: name, among: appliances.map(\.name)))"
                + "; \(Self.known("appliances", appliances.map(\.name))) — add it under 'appliances:'"
        )
    }

    /// The hypervisor called `name`.
    ///
    /// - Throws: `InventoryError` with code `.unknownHypervisor`, listing the names the inventory knows.
    public func hypervisor(named name: String) throws -> Hypervisor {
        if let hypervisor = hypervisors.first(where: { $0.name == name }) { return hypervisor }
        throw InventoryError(
            code: .unknownHypervisor,
            message: "no hypervisor '\(name)' in \(file)\(Self.suggestion(for: name, among: hypervisors.map(\.name)))"
                + "; \(Self.known("hypervisors", hypervisors.map(\.name))) — add it under 'hypervisors:'"
        )
    }

    static func known(_ what: String, _ names: [String]) -> String {
        names.isEmpty ? "it declares no \(what)" : "known \(what): \(names.joined(separator: ", "))"
    }

    static func suggestion(for name: String, among names: [String]) -> String {
        guard let close = Spelling.closest(to: name, among: names) else { return "" }
        return " (did you mean '\(close)'?)"
    }
}

/// A libvirt host that runs virtual appliances.
public struct Hypervisor: Sendable, Hashable {
    /// The name appliances refer to, matching `[a-z0-9][a-z0-9-]{0,62}`.
    public var name: String
    public var uri: HypervisorURI
    /// The libvirt storage pool that holds appliance volumes.
    public var pool: String
    public var network: HypervisorNetwork

    /// The storage pool used when the inventory names none.
    public static let defaultPool = "appliances"

    public init(
        name: String,
        uri: HypervisorURI = .session,
        pool: String = Hypervisor.defaultPool,
        network: HypervisorNetwork = .user
    ) {
        self.name = name
        self.uri = uri
        self.pool = pool
        self.network = network
    }
}

/// How to reach a hypervisor's libvirt daemon.
public enum HypervisorURI: Sendable, Hashable {
    /// `appliancectl`'s own unprivileged libvirt session daemon (`uri: session`, or no `uri` key).
    case session
    /// Any libvirt URI, such as `qemu+ssh://host/system` or `test:///default`.
    case uri(String)
}

/// How a virtual appliance's network interface is connected.
public enum HypervisorNetwork: Sendable, Hashable {
    /// QEMU user networking with a port forward on 127.0.0.1 (`network: user`, or no `network` key).
    case user
    /// The libvirt network of this name (NAT or bridge).
    case libvirt(String)
}

/// One appliance in the inventory.
public struct ApplianceEntry: Sendable, Hashable {
    /// The appliance's name, matching `[a-z0-9][a-z0-9-]{0,62}`.
    public var name: String
    public var kind: ApplianceKind
    /// Where the appliance answers, `HOST:PORT`. For a physical appliance this is its `physical.address`; for a
    /// virtual one it is recorded by provisioning and nil before.
    public var address: String?
    /// The appliance id (its stable UUID), recorded by provisioning.
    public var id: String?
    /// The pin of the appliance's TLS key, recorded at first contact; opaque to this module.
    public var pin: String?
    /// The NAME of the secret holding the admin password (never the password itself).
    public var passwordSecret: String

    public init(
        name: String,
        kind: ApplianceKind,
        address: String? = nil,
        id: String? = nil,
        pin: String? = nil,
        passwordSecret: String? = nil
    ) {
        self.name = name
        self.kind = kind
        if case .physical(let physicalAddress) = kind {
            self.address = physicalAddress
        } else {
            self.address = address
        }
        self.id = id
        self.pin = pin
        self.passwordSecret = passwordSecret ?? Self.defaultPasswordSecret(for: name)
    }

    /// The secret name used when an appliance has no `password:` key: `APPLIANCE_PASSWORD_<NAME>` with the name
    /// upper-cased and '-' turned into '_'.
    public static func defaultPasswordSecret(for name: String) -> String {
        "APPLIANCE_PASSWORD_" + name.uppercased().replacingOccurrences(of: "-", with: "_")
    }

    /// True for an appliance that runs on a hypervisor.
    public var isVirtual: Bool {
        if case .virtual = kind { return true }
        return false
    }
}

/// Whether an appliance is a box at an address or a virtual machine on a hypervisor.
public enum ApplianceKind: Sendable, Hashable {
    case physical(address: String)
    case virtual(VirtualSpec)
}

/// The shape of a virtual appliance.
public struct VirtualSpec: Sendable, Hashable {
    /// The name of the hypervisor in the inventory.
    public var hypervisor: String
    public var memoryMiB: Int
    public var vcpus: Int
    public var diskGiB: Int

    public static let defaultMemoryMiB = 512
    public static let defaultVCPUs = 1
    public static let defaultDiskGiB = 4
    public static let memoryMiBRange = 96...65536
    public static let vcpusRange = 1...64
    public static let diskGiBRange = 1...16384

    public init(
        hypervisor: String,
        memoryMiB: Int = VirtualSpec.defaultMemoryMiB,
        vcpus: Int = VirtualSpec.defaultVCPUs,
        diskGiB: Int = VirtualSpec.defaultDiskGiB
    ) {
        self.hypervisor = hypervisor
        self.memoryMiB = memoryMiB
        self.vcpus = vcpus
        self.diskGiB = diskGiB
    }
}
