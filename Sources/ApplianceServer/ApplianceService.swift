import Foundation
import Hummingbird
import Logging
public import ServiceLifecycle

/// Runs the appliance: configures the listeners, binds every enabled address, and stops them all on graceful
/// shutdown or when the API asks for a shutdown (A8).
public struct ApplianceService: Service {
    let appliance: Appliance

    public init(appliance: Appliance) {
        self.appliance = appliance
    }

    public func run() async throws {
        let router = ApplianceRouter.build(appliance)
        await appliance.listeners.configure(
            responder: router.buildResponder(),
            tlsConfiguration: { [served = appliance.served] address in try served.tlsConfiguration(for: address) }
        )
        await appliance.listeners.reconcile(try appliance.desiredListeners())
        let listening = await appliance.listeners.addresses
        guard !listening.isEmpty else {
            throw ApplianceServerError(
                .internalServerError,
                "no_listener",
                "no configured address could be bound; check --listen and the network configuration"
            )
        }
        appliance.logger.notice(
            "Appliance ready",
            metadata: [
                "appliance.id": "\(appliance.applianceId)",
                "appliance.addresses": "\(listening.sorted().joined(separator: ","))",
            ]
        )
        // The backup's syncs (A7) run beside the listeners until the appliance stops.
        let syncs = Task.detached { [appliance] in await appliance.runSyncLoop() }
        // A primary watches for a peer that claims to be primary too (A7 conflict).
        let conflicts = Task.detached { [appliance] in await appliance.runConflictWatch() }
        // Ends on SIGTERM/SIGINT (graceful shutdown) or on POST /appliance/api/shutdown, whichever comes first.
        await withGracefulShutdownHandler {
            for await _ in appliance.shutdownRequests { break }
        } onGracefulShutdown: {
            appliance.requestShutdown()
        }
        syncs.cancel()
        conflicts.cancel()
        await appliance.listeners.stopAll()
        appliance.logger.notice("Appliance stopped")
    }
}
