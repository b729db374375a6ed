import ApplianceAPI
public import ApplianceClient
public import ApplianceTemplates
import Foundation
public import Libvirt

#if canImport(Glibc)
    import Glibc
#endif

/// One virtual appliance to provision (from the inventory).
public struct VirtualApplianceRequest: Sendable, CustomStringConvertible {
    public var name: String
    /// The appliance id recorded in the inventory, if any: an existing domain must carry it to be adopted.
    public var recordedId: String?
    /// The TLS pin recorded in the inventory, if any: an adopted appliance must still present it.
    public var recordedPin: TLSPin?
    public var memoryMiB: Int
    public var vcpus: Int
    public var diskGiB: Int
    /// The administrator password to set at first login (a secret: never printed).
    public var adminPassword: String
    /// Vendor keys the appliance trusts for packages: the base64 body of each public key's PEM, passed on the
    /// kernel command line (`appliance.vendorkey=`).
    public var vendorKeys: [String] = []
    /// Host addresses the guest may connect to (QEMU user networking only; a libvirt network routes by itself).
    /// Set when the domain is defined: an adopted appliance keeps the forwards it was defined with.
    public var guestForwards: [GuestForward] = []

    public init(
        name: String,
        recordedId: String? = nil,
        recordedPin: TLSPin? = nil,
        memoryMiB: Int = 512,  // VirtualSpec.defaultMemoryMiB: a password-protected backup needs 512
        vcpus: Int = 1,
        diskGiB: Int = 4,
        adminPassword: String
    ) {
        self.name = name
        self.recordedId = recordedId
        self.recordedPin = recordedPin
        self.memoryMiB = memoryMiB
        self.vcpus = vcpus
        self.diskGiB = diskGiB
        self.adminPassword = adminPassword
    }

    public var description: String {
        "VirtualApplianceRequest(\(name), \(memoryMiB) MiB, \(vcpus) vCPU, password redacted)"
    }
}

/// What provisioning produced: what to record in the inventory, and how long each part took.
public struct ProvisionResult: Sendable, Codable, Equatable {
    public var name: String
    public var applianceId: String
    /// HOST:PORT the appliance answers on (a loopback forward with user networking).
    public var address: String
    public var pin: String
    public var adopted: Bool
    /// "kvm" or "qemu" (TCG).
    public var domainType: String
    /// Seconds from `virDomainCreate` to the health probe answering with the right id (nil when adopted running).
    public var startToReadySeconds: Double?
    /// Seconds for the whole run.
    public var totalSeconds: Double
}

/// Provisions, destroys and inspects virtual appliances on one hypervisor (P2).
public struct Provisioner: Sendable {
    public let hypervisor: Hypervisor
    public let templates: ApplianceTemplates
    /// How long to wait for the appliance's health probe.
    public var readyTimeout: Duration
    /// Keep what a failed run created, for inspection.
    public var keepFailed: Bool
    public var progress: @Sendable (String) -> Void

    public init(
        hypervisor: Hypervisor,
        templates: ApplianceTemplates,
        readyTimeout: Duration = .seconds(240),
        keepFailed: Bool = false,
        progress: @escaping @Sendable (String) -> Void = { _ in }
    ) {
        self.hypervisor = hypervisor
        self.templates = templates
        self.readyTimeout = readyTimeout
        self.keepFailed = keepFailed
        self.progress = progress
    }

    var connection: LibvirtConnection { hypervisor.connection }
    var pool: String { hypervisor.target.pool }

    public static func diskVolume(_ name: String) -> String { "\(name)-disk.qcow2" }
    public static func consoleVolume(_ name: String) -> String { "\(name)-console.log" }

    /// Creates the appliance (or adopts the matching one), waits for application readiness and sets its password.
    /// On failure everything this run created is removed (unless `keepFailed`), then the error is thrown.
    public func provision(
        _ request: VirtualApplianceRequest,
        image: ImageFiles
    ) async throws -> ProvisionResult {
        let started = ContinuousClock.now
        var plan = ProvisionPlan()
        plan.succeeded()  // connected: the hypervisor is open
        do {
            var applianceId = request.recordedId ?? UUID().uuidString.lowercased()
            var hostPort: Int
            var domainType: String
            // Inspect.
            if let existing = try await inspect(request) {
                progress("adopting the existing domain \(request.name) (\(existing.state))")
                applianceId = existing.applianceId
                hostPort = existing.hostPort
                domainType = existing.domainType
                plan.succeeded(existing: true, running: existing.state == .running)
            } else {
                plan.succeeded(existing: false)
                progress("installing the image in pool \(pool)")
                let volumes = try await hypervisor.install(image, templates: templates, progress: progress)
                plan.succeeded()
                applianceId = UUID().uuidString.lowercased()
                domainType = try await hypervisor.domainType(image: volumes, templates: templates)
                progress("creating the disk \(Self.diskVolume(request.name)) over the image")
                let disk = try await connection.createVolume(
                    pool: pool,
                    xml: try templates.render(
                        VolumeSpec(
                            name: Self.diskVolume(request.name),
                            capacityBytes: Int64(request.diskGiB) << 30,
                            backingPath: volumes.disk,
                            backingFormat: "qcow2"
                        )
                    )
                )
                plan.record(.volume(Self.diskVolume(request.name)))
                plan.succeeded()
                hostPort = try Self.freeLoopbackPort()
                let networking: ApplianceNetworking =
                    hypervisor.target.network.map { .libvirtNetwork($0) }
                    ?? .userMode(hostPort: hostPort, guestPort: volumes.guestPort)
                let spec = DomainSpec(
                    name: request.name,
                    uuid: UUID(),
                    applianceId: applianceId,
                    domainType: domainType,
                    memoryMiB: request.memoryMiB,
                    vcpus: request.vcpus,
                    kernel: volumes.kernel,
                    initrd: volumes.initrd,
                    cmdline:
                        "\(volumes.baseCommandLine) appliance.id=\(applianceId) appliance.hostname=\(request.name) "
                        + "appliance.port=\(volumes.guestPort)"
                        + request.vendorKeys.map { " appliance.vendorkey=\($0)" }.joined(),
                    dataDisk: disk.path,
                    consoleLog: "\(hypervisor.poolPath)/\(Self.consoleVolume(request.name))",
                    networking: networking,
                    guestForwards: hypervisor.target.network == nil ? request.guestForwards : []
                )
                progress("defining the domain \(request.name) (\(domainType == "kvm" ? "KVM" : "TCG, no KVM"))")
                let xml = try templates.render(spec)
                _ = try await connection.defineDomain(xml: xml)
                plan.record(.domain(request.name))
                plan.succeeded()
            }
            var startToReady: Double?
            let startedAt = ContinuousClock.now
            let starts = plan.step == .start
            if starts {
                progress("starting \(request.name)")
                try await connection.start(domain: request.name)
                if !plan.adopted { plan.record(.running(request.name)) }
                plan.succeeded()
            }
            let pin = try await waitReady(
                request,
                applianceId: applianceId,
                hostPort: hostPort,
                expectedPin: plan.adopted ? request.recordedPin : nil
            )
            if starts { startToReady = (ContinuousClock.now - startedAt).seconds }
            plan.succeeded()
            try await setPassword(request, hostPort: hostPort, pin: pin)
            plan.succeeded()
            return ProvisionResult(
                name: request.name,
                applianceId: applianceId,
                address: "127.0.0.1:\(hostPort)",
                pin: pin.description,
                adopted: plan.adopted,
                domainType: domainType,
                startToReadySeconds: startToReady,
                totalSeconds: (ContinuousClock.now - started).seconds
            )
        } catch {
            let failedStep = plan.step
            let undo = plan.failed(keepFailed: keepFailed)
            var notes: [String] = []
            for resource in undo {
                do {
                    try await remove(resource)
                    notes.append("removed \(resource)")
                } catch {
                    notes.append("could not remove \(resource): \(error)")
                }
            }
            if keepFailed, !plan.created.isEmpty {
                notes.append("kept \(plan.created.map(\.description).joined(separator: ", ")) (--keep-failed)")
            }
            let cleanup = notes.isEmpty ? "" : " (\(notes.joined(separator: "; ")))"
            throw ProvisioningError(
                (error as? ProvisioningError)?.code ?? .hypervisor,
                "provisioning \(request.name) failed at step '\(failedStep.rawValue)': \(error)\(cleanup)"
            )
        }
    }

    /// A domain of that name that appliancectl made: its appliance id, port, type and state.
    public struct ExistingAppliance: Sendable {
        public var applianceId: String
        public var hostPort: Int
        public var domainType: String
        public var state: DomainState
    }

    /// The existing domain called `request.name` when it can be adopted; nil when there is none. Throws when a
    /// domain of that name exists but is not this appliance.
    func inspect(_ request: VirtualApplianceRequest) async throws -> ExistingAppliance? {
        guard let info = try await connection.domain(named: request.name) else { return nil }
        let xml = try await connection.xml(domain: request.name)
        guard let id = Self.applianceId(inDomainXML: xml) else {
            throw ProvisioningError(
                .conflict,
                "a domain named \(request.name) exists on '\(hypervisor.target.name)' but appliancectl did not create "
                    + "it; choose another name or remove that domain"
            )
        }
        if let recorded = request.recordedId, recorded != id {
            throw ProvisioningError(
                .conflict,
                "the domain \(request.name) carries appliance id \(id) but the inventory records \(recorded); "
                    + "run `appliancectl destroy \(request.name)` or correct the inventory"
            )
        }
        guard let port = Self.forwardedPort(inDomainXML: xml) else {
            throw ProvisioningError(
                .conflict,
                "the domain \(request.name) has no loopback port forward; destroy and provision it again"
            )
        }
        let type = xml.contains("<domain type='kvm'") || xml.contains("<domain type=\"kvm\"") ? "kvm" : "qemu"
        return ExistingAppliance(applianceId: id, hostPort: port, domainType: type, state: info.state)
    }

    /// Polls the TLS health probe until it answers with `applianceId`. Fails early when the domain stops.
    func waitReady(
        _ request: VirtualApplianceRequest,
        applianceId: String,
        hostPort: Int,
        expectedPin: TLSPin?
    ) async throws -> TLSPin {
        progress("waiting for \(request.name) to answer on 127.0.0.1:\(hostPort)")
        let deadline = ContinuousClock.now + readyTimeout
        var lastProblem = "no answer yet"
        while ContinuousClock.now < deadline {
            let state = try await connection.state(domain: request.name)
            guard state == .running || state == .blocked else {
                throw ProvisioningError(
                    .notReady,
                    "\(request.name) stopped (\(state)) before it was ready\(consoleTail(request.name))"
                )
            }
            do {
                let probe = try await untilDeadline(deadline) {
                    let (pin, _) = try await PinnedHTTPClient.fetchPeerCertificate(host: "127.0.0.1", port: hostPort)
                    let (_, health, _) = try await ApplianceConnection(host: "127.0.0.1", port: hostPort, pin: pin)
                        .health()
                    return (pin: pin, id: health.applianceId)
                }
                guard let probe else { break }
                if let recorded = expectedPin, recorded != probe.pin {
                    throw ProvisioningError(
                        .conflict,
                        "127.0.0.1:\(hostPort) presents key \(probe.pin), not the recorded \(recorded); another "
                            + "appliance may hold that port. Check it, then correct the inventory's pin"
                    )
                }
                if probe.id == applianceId { return probe.pin }
                lastProblem = "127.0.0.1:\(hostPort) answered with appliance id \(probe.id), not \(applianceId)"
            } catch let error as ProvisioningError {
                throw error
            } catch {
                lastProblem = "\(error)"
            }
            try await Task.sleep(for: .milliseconds(500))
        }
        throw ProvisioningError(
            .notReady,
            "\(request.name) did not answer its health probe with id \(applianceId) within \(readyTimeout) "
                + "(last: \(lastProblem))\(consoleTail(request.name)); raise --ready-timeout on a slow machine"
        )
    }

    /// Logs in: replaces the factory password at first boot, otherwise checks the inventory's password works.
    func setPassword(_ request: VirtualApplianceRequest, hostPort: Int, pin: TLSPin) async throws {
        let connection = ApplianceConnection(host: "127.0.0.1", port: hostPort, pin: pin)
        if let login = try? await connection.login(username: "admin", password: "password") {
            guard login.passwordChangeRequired else { return }
            progress("first login: setting the administrator password of \(request.name)")
            try await connection.authenticated(login.token).perform(
                .changePassword,
                body: ChangePasswordRequest(currentPassword: "password", newPassword: request.adminPassword)
            )
            return
        }
        do {
            let login = try await connection.login(username: "admin", password: request.adminPassword)
            guard !login.passwordChangeRequired else { return }
        } catch {
            throw ProvisioningError(
                .login,
                "\(request.name) refused both the factory password and the inventory's password (\(error)); set the "
                    + "right password in its secret, or factory-reset the appliance"
            )
        }
    }

    /// The last lines of the console log (local session daemon only), to say why a guest did not come up.
    func consoleTail(_ name: String) -> String {
        guard hypervisor.isLocalSession,
            let text = try? String(
                contentsOfFile: "\(hypervisor.poolPath)/\(Self.consoleVolume(name))",
                encoding: .utf8
            )
        else { return "" }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: true).suffix(8)
        return lines.isEmpty ? "" : "; console:\n" + lines.joined(separator: "\n")
    }

    func remove(_ resource: ProvisionPlan.Resource) async throws {
        switch resource {
        case .running(let name):
            if try await connection.state(domain: name) != .shutoff { try await connection.destroy(domain: name) }
        case .domain(let name):
            try await connection.undefine(domain: name, flags: [.managedSave, .snapshotsMetadata, .nvram])
            try await connection.refreshPool(named: pool)
            if try await connection.volume(pool: pool, name: Self.consoleVolume(name)) != nil {
                try await connection.deleteVolume(pool: pool, name: Self.consoleVolume(name))
            }
        case .volume(let name):
            try await connection.deleteVolume(pool: pool, name: name)
        }
    }

    /// Removes the appliance's domain (stopping it hard first), its disk and its console log. Refuses a domain
    /// appliancectl did not create unless `force`. Returns what was removed.
    public func destroy(name: String, force: Bool = false) async throws -> [String] {
        var removed: [String] = []
        if try await connection.domain(named: name) != nil {
            let xml = try await connection.xml(domain: name)
            if Self.applianceId(inDomainXML: xml) == nil, !force {
                throw ProvisioningError(
                    .conflict,
                    "the domain \(name) was not created by appliancectl; refusing to destroy it without --force"
                )
            }
            if try await connection.state(domain: name) != .shutoff {
                try await connection.destroy(domain: name)
                removed.append("stopped domain \(name)")
            }
            try await connection.undefine(domain: name, flags: [.managedSave, .snapshotsMetadata, .nvram])
            removed.append("undefined domain \(name)")
        }
        try await connection.refreshPool(named: pool)
        for volume in [Self.diskVolume(name), Self.consoleVolume(name)]
        where try await connection.volume(pool: pool, name: volume) != nil {
            try await connection.deleteVolume(pool: pool, name: volume)
            removed.append("deleted volume \(volume)")
        }
        return removed
    }

    // MARK: Helpers

    /// The appliance id in appliancectl's `<metadata>` of a domain, nil for domains it did not create.
    public static func applianceId(inDomainXML xml: String) -> String? {
        guard xml.contains("appliance-tools.example/schemas/appliance/1"),
            let start = xml.range(of: ":id>"),
            let end = xml.range(of: "</", range: start.upperBound..<xml.endIndex)
        else { return nil }
        let id = String(xml[start.upperBound..<end.lowerBound])
        return UUID(uuidString: id) == nil ? nil : id
    }

    /// The loopback port of the `hostfwd=tcp:127.0.0.1:PORT-:…` forward in a domain's XML.
    public static func forwardedPort(inDomainXML xml: String) -> Int? {
        guard let range = xml.range(of: "hostfwd=tcp:127.0.0.1:") else { return nil }
        let digits = xml[range.upperBound...].prefix { $0.isNumber }
        return Int(digits)
    }

    /// A loopback port nobody listens on now (the kernel picks it).
    static func freeLoopbackPort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw ProvisioningError(.hypervisor, "cannot open a socket (errno \(errno))") }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) }
        }
        guard bound == 0,
            withUnsafeMutablePointer(
                to: &address,
                { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) } }
            )
                == 0
        else { throw ProvisioningError(.hypervisor, "cannot find a free loopback port (errno \(errno))") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

extension Duration {
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
