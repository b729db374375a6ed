import ApplianceAPI
import ApplianceCrypto
import ApplianceServer
import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import UnixSignals

#if canImport(Glibc)
    import Glibc
#endif

/// The appliance daemon: `applianced --data-dir DIR --listen 127.0.0.11:8443`.
@main
struct Applianced: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "applianced",
        abstract: "The appliance management plane: HTTPS API, state under --data-dir."
    )

    @Option(help: "Directory holding the appliance's state (created if missing).")
    var dataDir: String

    @Option(help: "Factory management address and the TLS port of every address, as ADDRESS:PORT.")
    var listen: String = "127.0.0.11:8443"

    @Option(help: "Hostname at first start (default: appliance-<id>).")
    var hostname: String?

    @Option(help: "Site version the box ships with at first start and after a factory reset.")
    var factorySiteVersion: String = ApplianceVersions.site

    @Option(help: "Vendor public key (Ed25519, PEM) whose signed packages this appliance installs; repeatable.")
    var vendorKey: [String] = []

    @Option(help: "Appliance id (a UUID) to take at first start; an existing id is never changed.")
    var applianceId: String?

    @Option(help: "Free space (MiB) on the data file system below which /health reports degraded.")
    var minFreeSpaceMib: Int64 = 64

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    @Option(help: "Exit with this status on a reboot request, for an init that reboots the machine (the VM's does).")
    var rebootExitStatus: Int32?

    func validate() throws {
        guard HostPort(listen) != nil else {
            throw ValidationError("--listen must be ADDRESS:PORT, e.g. 127.0.0.11:8443 or [::1]:8443")
        }
        if let rebootExitStatus, !(1...125).contains(rebootExitStatus) {
            throw ValidationError("--reboot-exit-status must be between 1 and 125")
        }
        if let applianceId, UUID(uuidString: applianceId) == nil {
            throw ValidationError("--appliance-id must be a UUID, e.g. \(UUID().uuidString.lowercased())")
        }
        guard minFreeSpaceMib >= 0 else {
            throw ValidationError("--min-free-space-mib must be 0 or more (0 turns the low-space warning off)")
        }
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
    }

    func run() async throws {
        OpenSSLProcess.keepStateUntilExit()
        // Everything the appliance writes is its own: the databases hold every certificate's private key in clear,
        // and SQLite's WAL and SHM files take their mode from the umask.
        umask(0o077)
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "applianced")
        guard let listenAddress = HostPort(listen) else { throw ValidationError("bad --listen") }
        let appliance = try Appliance(
            configuration: ApplianceConfiguration(
                dataDirectory: dataDir,
                listenAddress: listenAddress.host,
                port: listenAddress.port,
                hostname: hostname,
                factorySiteVersion: factorySiteVersion,
                vendorKeyFiles: vendorKey,
                initialApplianceId: applianceId,
                minimumFreeBytes: minFreeSpaceMib * 1024 * 1024
            ),
            logger: logger
        )
        let group = ServiceGroup(
            configuration: .init(
                services: [
                    // A shutdown through the API ends the service on purpose: the process then exits 0.
                    .init(
                        service: ApplianceService(appliance: appliance),
                        successTerminationBehavior: .gracefullyShutdownGroup
                    )
                ],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        try await group.run()
        if appliance.rebootRequested {
            // Without --reboot-exit-status the process starts itself again, as a box comes back after a reboot.
            try Reboot.restart(exitStatus: rebootExitStatus, logger: logger)
        }
    }
}
