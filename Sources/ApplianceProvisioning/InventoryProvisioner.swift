import ApplianceClient
public import ApplianceInventory
public import ApplianceTemplates
public import Foundation

/// Provisions (or adopts) the virtual appliances of an inventory and records their address, id and pin there
/// and in the pin store: what `appliancectl provision` and a migration's step 1 share.
public struct InventoryProvisioner: Sendable {
    public var state: StateDirectory
    /// A libvirt URI to use instead of the inventory's (`--connect`).
    public var connect: String?
    /// The libvirt XML templates.
    public var templates: @Sendable () throws -> ApplianceTemplates
    /// The image, built or found in the cache (only called when an appliance is provisioned).
    public var image: @Sendable () throws -> ImageFiles
    /// The new appliances trust these vendor keys (base64 bodies) for packages.
    public var vendorKeys: [String]
    public var readyTimeout: Duration
    public var keepFailed: Bool
    public var progress: @Sendable (String) -> Void

    public init(
        state: StateDirectory,
        connect: String?,
        templates: @escaping @Sendable () throws -> ApplianceTemplates,
        image: @escaping @Sendable () throws -> ImageFiles,
        vendorKeys: [String] = [],
        readyTimeout: Duration = .seconds(300),
        keepFailed: Bool = false,
        progress: @escaping @Sendable (String) -> Void
    ) {
        self.state = state
        self.connect = connect
        self.templates = templates
        self.image = image
        self.vendorKeys = vendorKeys
        self.readyTimeout = readyTimeout
        self.keepFailed = keepFailed
        self.progress = progress
    }

    /// The hypervisor an appliance lives on, with `connect` applied.
    public static func target(for hypervisor: ApplianceInventory.Hypervisor, connect: String?) -> HypervisorTarget {
        var uri: String?
        if case .uri(let configured) = hypervisor.uri { uri = configured }
        var network: String?
        if case .libvirt(let name) = hypervisor.network { network = name }
        return HypervisorTarget(name: hypervisor.name, uri: connect ?? uri, pool: hypervisor.pool, network: network)
    }

    /// Provisions (or adopts) the virtual appliance `name` of the inventory in `inventoryFile`.
    ///
    /// - Parameters:
    ///   - lockHeld: the caller holds `name`'s lock already (a run locks every appliance it touches).
    ///   - guestForwards: host addresses the new appliance may connect to (see `GuestForward`).
    /// - Returns: the result and the hypervisor's URI.
    public func provision(
        name: String,
        inventoryFile: URL,
        secrets: SecretSource,
        lockHeld: Bool = false,
        guestForwards: [GuestForward] = []
    ) async throws -> (result: ProvisionResult, hypervisorURI: String) {
        let inventory = try Inventory.load(from: inventoryFile)
        let entry = try inventory.appliance(named: name)
        guard case .virtual(let spec) = entry.kind else {
            throw ProvisioningError(
                .invalid,
                "\(name) is a physical appliance; provision makes virtual ones. Check it with `appliancectl status`"
            )
        }
        let hypervisorEntry = try inventory.hypervisor(named: spec.hypervisor)
        let password = try secrets.adminPassword(for: entry)
        let lock =
            lockHeld
            ? nil
            : try NameLock.acquire(name: name, directory: state.locks, command: "appliancectl provision \(name)")
        defer { lock?.release() }

        let loadedTemplates = try templates()
        let files = try image()
        let hypervisor = try await Hypervisor.open(Self.target(for: hypervisorEntry, connect: connect))
        let provisioner = Provisioner(
            hypervisor: hypervisor,
            templates: loadedTemplates,
            readyTimeout: readyTimeout,
            keepFailed: keepFailed,
            progress: progress
        )
        var request = VirtualApplianceRequest(
            name: name,
            recordedId: entry.id,
            recordedPin: entry.pin.flatMap(TLSPin.init),
            memoryMiB: spec.memoryMiB,
            vcpus: spec.vcpus,
            diskGiB: spec.diskGiB,
            adminPassword: password.reveal()
        )
        request.vendorKeys = vendorKeys
        request.guestForwards = guestForwards
        let result = try await provisioner.provision(request, image: files)
        try Inventory.record(
            appliance: name,
            address: result.address,
            id: result.applianceId,
            pin: result.pin,
            in: inventoryFile
        )
        if let pin = TLSPin(result.pin) { try PinStore(directory: state.url).record(pin, for: result.address) }
        return (result, hypervisor.uri)
    }

    /// Stops and removes the virtual appliance `name` of the inventory: its domain, disk and console log.
    public func destroy(name: String, inventory: Inventory, force: Bool = false) async throws -> (
        removed: [String], hypervisorURI: String
    ) {
        let entry = try inventory.appliance(named: name)
        guard case .virtual(let spec) = entry.kind else {
            throw ProvisioningError(
                .invalid,
                "\(name) is a physical appliance; use `appliancectl factory-reset` and `shutdown` to return it"
            )
        }
        let hypervisor = try await Hypervisor.open(
            Self.target(for: try inventory.hypervisor(named: spec.hypervisor), connect: connect)
        )
        let removed = try await Provisioner(hypervisor: hypervisor, templates: try templates())
            .destroy(name: name, force: force)
        return (removed, hypervisor.uri)
    }
}
