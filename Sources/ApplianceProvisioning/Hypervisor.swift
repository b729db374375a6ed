public import ApplianceTemplates
import Foundation
public import Libvirt

/// Where virtual appliances are created: a libvirt URI (nil: appliancectl's own session daemon), a storage pool
/// and how their network is attached.
public struct HypervisorTarget: Sendable, Equatable {
    public var name: String
    /// A libvirt URI such as `qemu+ssh://host/system`; nil starts and uses the local session daemon.
    public var uri: String?
    public var pool: String
    /// A libvirt network name; nil means QEMU user networking with a 127.0.0.1 port forward.
    public var network: String?

    public init(name: String, uri: String? = nil, pool: String = "appliances", network: String? = nil) {
        self.name = name
        self.uri = uri
        self.pool = pool
        self.network = network
    }
}

/// An open hypervisor with its storage pool ready.
public struct Hypervisor: Sendable {
    public let target: HypervisorTarget
    public let connection: LibvirtConnection
    /// The URI actually connected to.
    public let uri: String
    /// The pool's directory on the hypervisor host (volumes and console logs live there).
    public let poolPath: String
    /// True when the hypervisor is this machine's own session daemon (its files are readable here).
    public let isLocalSession: Bool

    /// Connects: starts the session daemon when the target names no URI, then makes sure the pool exists and runs.
    /// On the session daemon a missing pool is created as a directory pool; elsewhere it must exist already.
    public static func open(_ target: HypervisorTarget, daemon: SessionDaemon = .standard()) async throws -> Hypervisor
    {
        let uri = try target.uri ?? daemon.ensureRunning()
        let connection: LibvirtConnection
        do {
            connection = try await LibvirtConnection.open(uri)
        } catch {
            throw ProvisioningError(.hypervisor, "cannot connect to hypervisor '\(target.name)' at \(uri): \(error)")
        }
        let poolPath: String
        do {
            poolPath = try await Self.preparePool(
                target,
                connection: connection,
                daemon: target.uri == nil ? daemon : nil
            )
        } catch let error as ProvisioningError {
            throw error
        } catch {
            throw ProvisioningError(.hypervisor, "storage pool '\(target.pool)' on '\(target.name)': \(error)")
        }
        if let network = target.network {
            guard let info = try await connection.network(named: network) else {
                throw ProvisioningError(
                    .hypervisor,
                    "hypervisor '\(target.name)' has no libvirt network '\(network)'; define it (virsh net-define) or "
                        + "use network: user"
                )
            }
            if !info.isActive { try await connection.startNetwork(named: network) }
        }
        return Hypervisor(
            target: target,
            connection: connection,
            uri: uri,
            poolPath: poolPath,
            isLocalSession: target.uri == nil
        )
    }

    private static func preparePool(
        _ target: HypervisorTarget,
        connection: LibvirtConnection,
        daemon: SessionDaemon?
    ) async throws -> String {
        var info = try await connection.pool(named: target.pool)
        if info == nil {
            guard let daemon else {
                throw ProvisioningError(
                    .hypervisor,
                    "hypervisor '\(target.name)' has no storage pool '\(target.pool)'; create one, e.g. "
                        + "`virsh pool-define-as \(target.pool) dir --target /var/lib/libvirt/images/\(target.pool)` "
                        + "then pool-build and pool-start"
                )
            }
            let directory = daemon.poolDirectory.appendingPathComponent(target.pool).path
            let xml = """
                <pool type='dir'>
                  <name>\(target.pool)</name>
                  <target><path>\(directory)</path><permissions><mode>0700</mode></permissions></target>
                </pool>
                """
            _ = try await connection.definePool(xml: xml)
            try await connection.buildPool(named: target.pool)
            try await connection.setPoolAutostart(named: target.pool, true)
            info = try await connection.pool(named: target.pool)
        }
        if info?.state != .running {
            try await connection.startPool(named: target.pool)
        }
        try await connection.refreshPool(named: target.pool)
        let xml = try await connection.poolXML(named: target.pool)
        guard let path = Self.element("path", inside: "target", of: xml) else {
            throw ProvisioningError(
                .hypervisor,
                "storage pool '\(target.pool)' has no target directory; use a directory (dir) pool"
            )
        }
        return path
    }

    /// The text of `<name>` inside the first `<parent>` of `xml` (enough for libvirt's own descriptions).
    static func element(_ name: String, inside parent: String, of xml: String) -> String? {
        guard let start = xml.range(of: "<\(parent)>"),
            let end = xml.range(of: "</\(parent)>", range: start.upperBound..<xml.endIndex)
        else { return nil }
        let section = xml[start.upperBound..<end.lowerBound]
        guard let open = section.range(of: "<\(name)>"), let close = section.range(of: "</\(name)>") else { return nil }
        return String(section[open.upperBound..<close.lowerBound])
    }

    /// "kvm" when the hypervisor offers KVM *and* a probe guest boots with it; "qemu" (TCG) otherwise. KVM can be
    /// offered and still fail (nested KVM stops the guest with an emulation error), so offering is not enough.
    public func domainType(image: ImageVolumes, templates: ApplianceTemplates) async throws -> String {
        guard try await connection.offersDomainType("kvm") else { return "qemu" }
        return try await probeBoot(domainType: "kvm", image: image, templates: templates) ? "kvm" : "qemu"
    }

    /// Boots the image's probe (its init prints a marker and powers off at once) as a `domainType` guest without a
    /// disk: true when the guest powers itself off within `timeout`, false when it pauses, crashes, does not start
    /// or does not finish. The probe domain and its console log are removed either way.
    public func probeBoot(
        domainType: String,
        image: ImageVolumes,
        templates: ApplianceTemplates,
        timeout: Duration = .seconds(60)
    ) async throws -> Bool {
        let name = "appliancectl-probe-\(UInt32.random(in: 0...UInt32.max))"
        let spec = DomainSpec(
            name: name,
            uuid: UUID(),
            applianceId: UUID().uuidString.lowercased(),
            domainType: domainType,
            memoryMiB: 128,
            vcpus: 1,
            kernel: image.kernel,
            initrd: image.initrd,
            cmdline: image.baseCommandLine + " appliance.probe=1",
            dataDisk: nil,
            consoleLog: "\(poolPath)/\(name).log",
            networking: .userMode(hostPort: try Provisioner.freeLoopbackPort(), guestPort: image.guestPort)
        )
        _ = try await connection.defineDomain(xml: try templates.render(spec))
        var poweredOff = false
        do {
            try await connection.start(domain: name)
            let deadline = ContinuousClock.now + timeout
            poll: while ContinuousClock.now < deadline {
                // KVM that cannot run the guest leaves it paused (emulation failure) or crashed.
                switch try await connection.state(domain: name) {
                case .shutoff:
                    poweredOff = true
                    break poll
                case .paused, .crashed: break poll
                default: try await Task.sleep(for: .milliseconds(200))
                }
            }
        } catch {
            poweredOff = false
        }

        try? await connection.destroy(domain: name)
        try? await connection.undefine(domain: name)
        try? await connection.refreshPool(named: target.pool)
        try? await connection.deleteVolume(pool: target.pool, name: "\(name).log")
        return poweredOff
    }
}
