public import Foundation
import Mustache

/// Renders the libvirt XML in `Templates/` (domain, volume, network) from checked values.
///
/// Values are validated before rendering (names, paths, numbers), and Mustache escapes `{{…}}` for XML, so a
/// value can never change the document's structure.
public struct ApplianceTemplates: Sendable {
    let domain: MustacheTemplate
    let volume: MustacheTemplate
    let network: MustacheTemplate

    /// Loads the templates from `directory` (the repository's `Templates/`).
    public init(directory: URL) throws {
        func load(_ name: String) throws -> MustacheTemplate {
            let url = directory.appendingPathComponent("\(name).xml.mustache")
            guard let text = try? String(contentsOf: url, encoding: .utf8) else {
                throw TemplateError(
                    "cannot read \(url.path); point --templates at the repository's Templates/ directory"
                )
            }
            do {
                return try MustacheTemplate(string: text)
            } catch {
                throw TemplateError("\(url.path) is not a valid Mustache template (\(error))")
            }
        }
        domain = try load("domain")
        volume = try load("volume")
        network = try load("network")
    }

    /// The `Templates/` directory of a checkout: `APPLIANCE_TEMPLATES`, or found upward from `start`.
    public static func locate(from start: URL) -> URL? {
        if let path = ProcessInfo.processInfo.environment["APPLIANCE_TEMPLATES"] {
            return URL(fileURLWithPath: path, isDirectory: true)
        }
        var directory = start
        while directory.path != "/" {
            let candidate = directory.appendingPathComponent("Templates/domain.xml.mustache")
            if FileManager.default.fileExists(atPath: candidate.path) {
                return directory.appendingPathComponent("Templates", isDirectory: true)
            }
            directory = directory.deletingLastPathComponent()
        }
        return nil
    }

    public func render(_ spec: DomainSpec) throws -> String {
        try spec.validate()
        return domain.render(spec.context)
    }

    public func render(_ spec: VolumeSpec) throws -> String {
        try spec.validate()
        return volume.render(spec.context)
    }

    public func render(_ spec: NetworkSpec) throws -> String {
        try spec.validate()
        return network.render(spec.context)
    }
}

/// A template value that cannot be used, with what to do instead.
public struct TemplateError: Error, Sendable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) { self.message = message }

    public var description: String { message }
}

/// A connection the guest opens to `guestAddress` that QEMU user networking carries to `target` on the host
/// (`guestfwd`, one `socat` per connection). This is how a virtual appliance on user networking, which cannot
/// open connections to the host's addresses, reaches a box on this machine, e.g. the old box it syncs from.
public struct GuestForward: Sendable, Equatable {
    /// The address the guest sees, on QEMU's user network (10.0.2.0/24); the guest's own is 10.0.2.15.
    public static let guestHost = "10.0.2.100"

    public var guestPort: Int
    /// HOST:PORT on the host.
    public var targetHost: String
    public var targetPort: Int

    public init(guestPort: Int, targetHost: String, targetPort: Int) {
        self.guestPort = guestPort
        self.targetHost = targetHost
        self.targetPort = targetPort
    }

    /// HOST:PORT the guest connects to.
    public var guestAddress: String { "\(Self.guestHost):\(guestPort)" }

    func validate() throws {
        guard (1...65535).contains(guestPort), (1...65535).contains(targetPort) else {
            throw TemplateError("guest forward ports must be 1 to 65535; got \(guestPort) and \(targetPort)")
        }
        // The target ends up inside a QEMU option (commas separate options) and a shell command (socat's).
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-")
        guard !targetHost.isEmpty, targetHost.count <= 253, targetHost.allSatisfy(allowed.contains) else {
            throw TemplateError(
                "a guest forward's target must be a host name or IPv4 address (letters, digits, '.', '-'); "
                    + "got '\(targetHost)'"
            )
        }
    }
}

/// How a virtual appliance's NIC is attached.
public enum ApplianceNetworking: Sendable, Equatable {
    /// QEMU user mode: the guest's `guestPort` is forwarded from 127.0.0.1:`hostPort`.
    case userMode(hostPort: Int, guestPort: Int)
    /// A libvirt network (NAT or bridge) by name.
    case libvirtNetwork(String)
}

public struct DomainSpec: Sendable {
    public var name: String
    public var uuid: UUID
    public var applianceId: String
    /// `kvm` where a probe boot works, `qemu` (TCG) otherwise.
    public var domainType: String
    public var memoryMiB: Int
    public var vcpus: Int
    public var kernel: String
    public var initrd: String
    public var cmdline: String
    /// The appliance's disk (qcow2); nil boots without one (the hypervisor probe).
    public var dataDisk: String?
    public var consoleLog: String
    public var networking: ApplianceNetworking
    /// Connections the guest may open to the host (user networking only).
    public var guestForwards: [GuestForward]
    public var tbCacheMiB: Int

    public init(
        name: String,
        uuid: UUID,
        applianceId: String,
        domainType: String,
        memoryMiB: Int,
        vcpus: Int,
        kernel: String,
        initrd: String,
        cmdline: String,
        dataDisk: String?,
        consoleLog: String,
        networking: ApplianceNetworking,
        guestForwards: [GuestForward] = [],
        tbCacheMiB: Int = 32
    ) {
        self.name = name
        self.uuid = uuid
        self.applianceId = applianceId
        self.domainType = domainType
        self.memoryMiB = memoryMiB
        self.vcpus = vcpus
        self.kernel = kernel
        self.initrd = initrd
        self.cmdline = cmdline
        self.dataDisk = dataDisk
        self.consoleLog = consoleLog
        self.networking = networking
        self.guestForwards = guestForwards
        self.tbCacheMiB = tbCacheMiB
    }

    func validate() throws {
        try TemplateCheck.name(name, what: "appliance name")
        guard ["kvm", "qemu"].contains(domainType) else {
            throw TemplateError("domain type must be kvm or qemu (TCG), not '\(domainType)'")
        }
        guard (96...65_536).contains(memoryMiB) else {
            throw TemplateError("memory must be 96 to 65536 MiB (a guest below 96 MiB does not boot); got \(memoryMiB)")
        }
        guard (1...64).contains(vcpus) else { throw TemplateError("vcpus must be 1 to 64; got \(vcpus)") }
        for (path, what) in [
            (kernel, "kernel"), (initrd, "initrd"), (dataDisk ?? "/", "data disk"), (consoleLog, "console log"),
        ] {
            try TemplateCheck.absolutePath(path, what: what)
        }
        guard !cmdline.contains("\n") else { throw TemplateError("the kernel command line must be one line") }
        switch networking {
        case .userMode(let hostPort, let guestPort):
            guard (1...65535).contains(hostPort), (1...65535).contains(guestPort) else {
                throw TemplateError("ports must be 1 to 65535; got \(hostPort) and \(guestPort)")
            }
        case .libvirtNetwork(let network):
            try TemplateCheck.name(network, what: "libvirt network name")
            guard guestForwards.isEmpty else {
                throw TemplateError("guest forwards need QEMU user networking; a libvirt network routes by itself")
            }
        }
        for forward in guestForwards { try forward.validate() }
    }

    var context: [String: Any] {
        var values: [String: Any] = [
            "name": name, "uuid": uuid.uuidString.lowercased(), "applianceId": applianceId, "domainType": domainType,
            "memoryMiB": memoryMiB, "vcpus": vcpus, "kernel": kernel, "initrd": initrd, "cmdline": cmdline,
            "consoleLog": consoleLog, "tcg": domainType == "qemu", "tbCacheMiB": tbCacheMiB,
        ]
        if let dataDisk { values["dataDisk"] = dataDisk }
        switch networking {
        case .userMode(let hostPort, let guestPort):
            values["userNetworkPort"] = hostPort
            values["guestPort"] = guestPort
            values["guestForwards"] = guestForwards.map { forward in
                [
                    "guestAddress": forward.guestAddress,
                    "target": "\(forward.targetHost):\(forward.targetPort)",
                ]
            }
        case .libvirtNetwork(let network):
            values["libvirtNetwork"] = network
        }
        return values
    }
}

public struct VolumeSpec: Sendable {
    public var name: String
    public var capacityBytes: Int64
    /// A base image this volume is a copy-on-write overlay of.
    public var backingPath: String?
    public var backingFormat: String
    /// The volume's own format: qcow2 (an appliance disk) or raw (uploaded image files).
    public var format: String

    public init(
        name: String,
        capacityBytes: Int64,
        backingPath: String? = nil,
        backingFormat: String = "qcow2",
        format: String = "qcow2"
    ) {
        self.name = name
        self.capacityBytes = capacityBytes
        self.backingPath = backingPath
        self.backingFormat = backingFormat
        self.format = format
    }

    func validate() throws {
        try TemplateCheck.name(name, what: "volume name", allowDot: true)
        guard capacityBytes >= 1 << 20 else { throw TemplateError("a volume needs at least 1 MiB") }
        if let backingPath { try TemplateCheck.absolutePath(backingPath, what: "backing image") }
        guard ["qcow2", "raw"].contains(backingFormat), ["qcow2", "raw"].contains(format) else {
            throw TemplateError("volume formats must be qcow2 or raw, not '\(format)' / '\(backingFormat)'")
        }
        guard backingPath == nil || format == "qcow2" else {
            throw TemplateError("only a qcow2 volume can have a backing image")
        }
    }

    var context: [String: Any] {
        var values: [String: Any] = [
            "name": name, "capacityBytes": capacityBytes, "backingFormat": backingFormat, "format": format,
        ]
        if let backingPath { values["backingPath"] = backingPath }
        return values
    }
}

public struct NetworkSpec: Sendable {
    public enum Mode: Sendable, Equatable {
        /// NAT with DHCP on a private /24 (inside a network namespace on test machines).
        case nat(gateway: String, netmask: String, dhcpStart: String, dhcpEnd: String)
        /// An existing host bridge.
        case bridge(String)
    }

    public var name: String
    public var mode: Mode

    public init(name: String, mode: Mode) {
        self.name = name
        self.mode = mode
    }

    func validate() throws {
        try TemplateCheck.name(name, what: "network name")
        switch mode {
        case .bridge(let bridge):
            try TemplateCheck.name(bridge, what: "bridge name")
        case .nat(let gateway, let netmask, let start, let end):
            for address in [gateway, netmask, start, end] {
                let parts = address.split(separator: ".")
                guard parts.count == 4, parts.allSatisfy({ UInt8($0) != nil }) else {
                    throw TemplateError("'\(address)' is not an IPv4 address")
                }
            }
        }
    }

    var context: [String: Any] {
        switch mode {
        case .bridge(let bridge):
            return ["name": name, "bridge": bridge]
        case .nat(let gateway, let netmask, let start, let end):
            return ["name": name, "gateway": gateway, "netmask": netmask, "dhcpStart": start, "dhcpEnd": end]
        }
    }
}

enum TemplateCheck {
    static func name(_ value: String, what: String, allowDot: Bool = false) throws {
        let allowed = value.unicodeScalars.allSatisfy {
            ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) || $0 == "-" || $0 == "_"
                || (allowDot && $0 == ".")
        }
        guard allowed, !value.isEmpty, value.count <= 64, !value.hasPrefix("-"), !value.hasPrefix(".") else {
            throw TemplateError("\(what) '\(value)' must be 1 to 64 letters, digits, '-' or '_'")
        }
    }

    static func absolutePath(_ value: String, what: String) throws {
        guard value.hasPrefix("/"), !value.contains("\n"), !value.contains("\0"), !value.contains("/../") else {
            throw TemplateError("\(what) must be an absolute path, not '\(value)'")
        }
    }
}
