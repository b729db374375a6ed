import ApplianceAPI
import ApplianceClient
import ApplianceImage
import ApplianceInventory
import ApplianceProvisioning
import ApplianceTemplates
import ArgumentParser
import Foundation

/// `appliancectl image build`: the virtual appliance image (P11), built once and cached.
struct Image: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Build the virtual appliance image (kernel, initramfs, root disk) from Debian packages.",
        subcommands: [Build.self]
    )

    struct Build: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Build the image, or report the cached one when nothing changed."
        )

        @OptionGroup var image: ImageOptions

        @Option(help: "Where pins, locks and built images are kept (default: $APPLIANCECTL_HOME or ~/.appliancectl).")
        var stateDir: String?

        @Flag(help: "Print machine-readable JSON instead of text.")
        var json = false

        func run() async throws {
            let state = StateDirectory(stateDir)
            let started = ContinuousClock.now
            let built = try image.build(stateDirectory: state, quiet: json)
            if json {
                try printJSON(built)
                return
            }
            print("Image \(built.key.prefix(16)) in \(built.directory.path) (\(ContinuousClock.now - started))")
            print("Kernel      \(built.kernelVersion)")
            for file in built.manifest.files {
                print("  \(file.name.padding(toLength: 16, withPad: " ", startingAt: 0)) \(Terminal.bytes(file.size))")
            }
        }
    }
}

/// `appliancectl provision NAME`: a virtual appliance from the image, ready and logged in (P2).
struct Provision: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create (or adopt) the virtual appliance NAME from the inventory and wait until it is ready.",
        discussion: """
            The disk is a copy-on-write overlay of the image in the hypervisor's storage pool. Ready means the \
            appliance's TLS health probe answers with the appliance id given to it at creation. The factory \
            password is then replaced by the inventory's secret, and the address, id and TLS pin are recorded in \
            the inventory. Running it again adopts the appliance it made. A failed run removes what it created \
            unless --keep-failed.
            """
    )

    @Argument(help: "The appliance's name in the inventory.")
    var name: String

    @OptionGroup var options: InventoryOptions
    @OptionGroup var image: ImageOptions

    @Flag(help: "Keep the domain and volumes of a failed run for inspection.")
    var keepFailed = false

    @Option(help: "Seconds to wait for the appliance to answer (TCG boots are slow).")
    var readyTimeout: Int = 300

    @Option(
        name: .customLong("guest-forward"),
        help: ArgumentHelp(
            "A HOST:PORT of this machine the new appliance may connect to, e.g. an update repository; repeatable.",
            discussion: """
                On QEMU user networking (no network in the inventory) the guest cannot open connections to the \
                host's addresses; it reaches HOST:PORT as \(GuestForward.guestHost):PORT instead. Set only when \
                the domain is created (an adopted appliance keeps the forwards it has).
                """,
            valueName: "host:port"
        )
    )
    var guestForwards: [String] = []

    func validate() throws {
        for text in guestForwards where HostPort(text) == nil {
            throw ValidationError("--guest-forward must be HOST:PORT, e.g. 127.0.0.1:8080; got '\(text)'")
        }
    }

    func run() async throws {
        let forwards = guestForwards.compactMap(HostPort.init).map {
            GuestForward(guestPort: $0.port, targetHost: $0.host, targetPort: $0.port)
        }
        let (result, hypervisorURI) = try await options.provisioner(
            image: image,
            readyTimeout: readyTimeout,
            keepFailed: keepFailed
        ).provision(
            name: name,
            inventoryFile: options.inventoryFile,
            secrets: try options.secretSource(),
            guestForwards: forwards
        )
        if options.json {
            try printJSON(result)
        } else {
            let how = result.adopted ? "adopted" : "created"
            let timing = result.startToReadySeconds.map { String(format: ", ready %.1f s after start", $0) } ?? ""
            print("\(name) \(how): \(result.address), id \(result.applianceId), pin \(result.pin)")
            print(
                String(
                    format: "%@ on %@%@; %.1f s in all",
                    result.domainType == "kvm" ? "KVM" : "TCG (no KVM)",
                    hypervisorURI,
                    timing,
                    result.totalSeconds
                )
            )
        }
    }
}

/// `appliancectl destroy NAME`: removes a virtual appliance and its volumes.
struct Destroy: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stop and remove the virtual appliance NAME: its domain, disk and console log.",
        discussion: "The image in the pool stays (other appliances use it). The inventory entry stays too."
    )

    @Argument(help: "The appliance's name in the inventory.")
    var name: String

    @OptionGroup var options: InventoryOptions

    @Flag(help: "Also remove a domain of that name that appliancectl did not create.")
    var force = false

    func run() async throws {
        let inventory = try options.loadInventory()
        let entry = try inventory.appliance(named: name)
        guard case .virtual(let spec) = entry.kind else {
            throw CommandError(
                "\(name) is a physical appliance; use `appliancectl factory-reset` and `shutdown` to return it"
            )
        }
        let lock = try NameLock.acquire(
            name: name,
            directory: options.stateDirectory.locks,
            command: "appliancectl destroy \(name)"
        )
        defer { lock.release() }
        let hypervisor = try await Hypervisor.open(
            options.target(for: try inventory.hypervisor(named: spec.hypervisor))
        )
        let provisioner = Provisioner(hypervisor: hypervisor, templates: try options.loadTemplates())
        let removed = try await provisioner.destroy(name: name, force: force)
        if let address = entry.address { try? options.pinStore.remove(address) }
        if options.json {
            try printJSON(["name": name, "removed": removed.joined(separator: "; ")])
        } else if removed.isEmpty {
            print("\(name): nothing to remove on \(hypervisor.uri)")
        } else {
            for line in removed { print("\(name): \(line)") }
        }
    }
}

/// `appliancectl session status|stop`: appliancectl's own libvirt session daemon.
struct Session: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show or stop appliancectl's own unprivileged libvirt daemon (used when no --connect is given).",
        subcommands: [SessionStatus.self, SessionStop.self]
    )

    struct SessionStatus: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "status", abstract: "Is the daemon running?")
        func run() async throws {
            let daemon = SessionDaemon.standard()
            if let pid = daemon.runningPid() {
                print("running, pid \(pid), \(daemon.uri)")
            } else {
                print("not running (starts with the next provision); home \(daemon.root.path)")
            }
        }
    }

    struct SessionStop: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "stop",
            abstract: "Stop the daemon; running appliances keep running."
        )
        func run() async throws {
            let daemon = SessionDaemon.standard()
            guard daemon.runningPid() != nil else {
                print("not running")
                return
            }
            daemon.stop()
            print("stopped")
        }
    }
}

extension Provision {
    /// A provision playbook: the appliance made (or adopted), with a report in the state directory.
    static func run(_ name: String, options: InventoryOptions, run: RunOptions, dryRun: Bool) async throws {
        if dryRun {
            print("Plan (dry run, nothing changes): provision \(name) from the image, wait until ready, first login")
            return
        }
        let (result, uri) = try await options.provisioner(
            image: run.image,
            readyTimeout: run.readyTimeout,
            keepFailed: false
        ).provision(name: name, inventoryFile: options.inventoryFile, secrets: try options.secretSource())
        let directory = options.stateDirectory.runs
            .appendingPathComponent("provision-\(name)-\(Int(Date().timeIntervalSince1970))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let encoder = APICoding.encoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(result).write(to: directory.appendingPathComponent("report.json"))
        let markdown = """
            # provision \(name)

            | item | value |
            | --- | --- |
            | result | \(result.adopted ? "adopted" : "created") |
            | address | \(result.address) |
            | appliance id | \(result.applianceId) |
            | pin | \(result.pin) |
            | hypervisor | \(uri) (\(result.domainType)) |
            | ready after start | \(result.startToReadySeconds.map { String(format: "%.1f s", $0) } ?? "-") |

            """
        try Data(markdown.utf8).write(to: directory.appendingPathComponent("report.md"))
        print("\(name) \(result.adopted ? "adopted" : "created") at \(result.address); report in \(directory.path)")
    }
}
