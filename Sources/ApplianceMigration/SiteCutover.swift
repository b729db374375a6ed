import ApplianceAPI
import ApplianceClient
import ApplianceInventory
import Foundation
import ProcedureEngine
import ProcessSpawn

/// Moves the site address from one box to another (the manual's "Wechsel von freigegebener IP", or a hook for a
/// DNS or NAT swing): the box that serves lets go of the address first, so the two never answer on it at once;
/// then the other takes it (`shared-ip`) or the hook moves it; then the address must answer from the other box
/// with the expected key. The migration's cutover and the failover pair's swing both use it.
struct SiteCutover: Sendable {
    var cutover: Cutover
    /// The box that serves the site now, and its appliance id.
    var from: BoxClient
    var fromId: String
    /// The box that is to serve it, its appliance id and the key pin it must answer with.
    var to: BoxClient
    var toId: String
    var toPin: String
    /// The certificate to assign to the new site address on `to` (a migration's imported one); nil: as it is.
    var certificateId: Int64?
    var environment: RunEnvironment
    /// The names in messages: "the old box", "the new one".
    var fromName: String
    var toName: String

    /// Whether the site address already answers from `to`.
    func movedAlready() async -> Bool {
        guard let site = cutover.siteAddress.flatMap(HostPort.init) else { return false }
        return await Self.answers(site, id: toId, pin: toPin)
    }

    /// The id of the address `from` let go of, once it did (kept when `move` throws).
    var releasedAddressId: String?

    /// Moves the site address; journals the id of the address `from` releases (under `journalKey`) before it
    /// changes anything, so a failure can enable it again.
    mutating func move(context: StepContext, journalKey: String) async throws -> StepDetail {
        guard let siteAddress = cutover.siteAddress, let site = HostPort(siteAddress) else {
            return ["cutover": "none"]
        }
        if await movedAlready() {
            return ["cutover": "already", "siteAddress": siteAddress, "siteMovedAt": APICoding.formatDate(Date())]
        }
        let fromConnection = try await from.session()
        let fromNetwork: NetworkResponse = try await fromConnection.call(.network)
        if let entry = fromNetwork.addresses.first(where: { $0.address == site.host }), entry.enabled {
            try context.journal([journalKey: "\(entry.id)"])
            releasedAddressId = "\(entry.id)"
            try await fromConnection.perform(
                .updateAddress,
                parameters: ["id": "\(entry.id)"],
                body: AddressInput(
                    enabled: false,
                    port: entry.port,
                    address: entry.address,
                    subnetMask: entry.subnetMask,
                    access: entry.access
                )
            )
            // The box closes its listener shortly after answering; the other cannot bind the address before.
            let fromId = fromId
            let released = try await Self.waitUntil(tries: 101, every: .milliseconds(100)) {
                await Self.whoAnswers(site)?.id != fromId
            }
            guard released else {
                throw MigrationError(
                    .cutover,
                    "\(fromName) still answers on \(siteAddress) after disabling it; check its network page, then "
                        + "run resume"
                )
            }
            environment.events(.note("\(fromName) no longer answers on \(site.host)"))
        }
        context.crash(at: "cutover:released")
        switch cutover {
        case .none:
            break
        case .sharedIP:
            try await takeAddress(site)
        case .hook(_, let command):
            try await runHook(command, site: siteAddress)
        }
        let (toId, toPin) = (toId, toPin)
        let moved = try await Self.waitUntil(tries: 61, every: .milliseconds(500)) {
            await Self.answers(site, id: toId, pin: toPin)
        }
        guard moved else {
            throw MigrationError(
                .cutover,
                "\(siteAddress) does not answer from \(toName) (id \(toId)) after the cutover; check the hook or the "
                    + "network, then run resume"
            )
        }
        return ["cutover": "done", "siteAddress": siteAddress, "siteMovedAt": APICoding.formatDate(Date())]
    }

    /// `shared-ip`: the address is added to `to` (like the one clients reach it by) or enabled there.
    mutating func takeAddress(_ site: HostPort) async throws {
        let connection = try await to.session()
        let network: NetworkResponse = try await connection.call(.network)
        var entry = network.addresses.first(where: { $0.address == site.host })
        if let existing = entry, !existing.enabled {
            try await connection.perform(
                .updateAddress,
                parameters: ["id": "\(existing.id)"],
                body: AddressInput(
                    enabled: true,
                    port: existing.port,
                    address: existing.address,
                    subnetMask: existing.subnetMask,
                    access: existing.access
                )
            )
        }
        if entry == nil {
            let template = try Self.addressTemplate(network, host: to.host, name: toName)
            let added: AddressChangeResponse = try await connection.call(
                .addAddress,
                body: AddressInput(
                    enabled: true,
                    port: template.port,
                    address: site.host,
                    subnetMask: template.subnetMask,
                    access: .both
                )
            )
            entry = added.address
        }
        if let entry, let certificateId, entry.certificateId != certificateId {
            try await connection.perform(
                .assignCertificate,
                parameters: ["id": "\(entry.id)"],
                body: CertificateAssignment(certificateId: certificateId)
            )
        }
    }

    /// The address clients reach a box by (at `host`, or its one enabled address): its port and mask are the
    /// new site address's.
    static func addressTemplate(_ network: NetworkResponse, host: String, name toName: String) throws -> AddressEntry {
        if let entry = network.addresses.first(where: { $0.address == host && $0.enabled }) { return entry }
        let enabled = network.addresses.filter { $0.enabled && $0.access.servesAppliance }
        guard enabled.count == 1 else {
            throw MigrationError(
                .appliance,
                "cannot tell which of \(toName)'s addresses clients use; reach it by that address"
            )
        }
        return enabled[0]
    }

    /// Enables the address `id` on a box again (one that let go of the site address), if it is disabled.
    static func enable(addressId id: String, on connection: ApplianceConnection) async throws {
        let network: NetworkResponse = try await connection.call(.network)
        guard let entry = network.addresses.first(where: { "\($0.id)" == id }), !entry.enabled else { return }
        try await connection.perform(
            .updateAddress,
            parameters: ["id": id],
            body: AddressInput(
                enabled: true,
                port: entry.port,
                address: entry.address,
                subnetMask: entry.subnetMask,
                access: entry.access
            )
        )
    }

    /// The appliance id and key pin of whatever answers the health probe on `site`; nil when nothing does.
    static func whoAnswers(_ site: HostPort) async -> (id: String, pin: String)? {
        let probe = ApplianceConnection(host: site.host, port: site.port, pin: nil, requestTimeout: .seconds(5))
        guard let (_, health, pin) = try? await probe.health() else { return nil }
        return (health.applianceId, pin.description)
    }

    static func answers(_ site: HostPort, id: String, pin: String) async -> Bool {
        guard let answer = await whoAnswers(site) else { return false }
        return answer.id == id && answer.pin == pin
    }

    /// Checks `condition` up to `tries` times, `interval` apart; whether it held by the last check.
    nonisolated(nonsending) static func waitUntil(
        tries: Int,
        every interval: Duration,
        _ condition: () async throws -> Bool
    ) async throws -> Bool {
        for attempt in 1...tries {
            if try await condition() { return true }
            if attempt < tries { try await Task.sleep(for: interval) }
        }
        return false
    }

    func runHook(_ command: String, site: String) async throws {
        let variables = CutoverHookEnvironment.variables(
            inherited: ProcessInfo.processInfo.environment,
            site: site,
            oldAddress: from.address,
            newAddress: to.address,
            newHost: to.host,
            newPort: to.port
        )
        let log = environment.runDirectory.appendingPathComponent("cutover-hook.log")
        let status: Int32
        do {
            // On a thread of its own: a hook may take minutes (DNS), and the cooperative pool is as small as the
            // machine's core count.
            status = try await withCheckedThrowingContinuation { continuation in
                Thread.detachNewThread {
                    continuation.resume(
                        with: Result {
                            try Spawn.runAndWait(
                                "/bin/sh",
                                arguments: ["-c", command],
                                environment: variables,
                                output: log.path
                            )
                        }
                    )
                }
            }
        } catch {
            throw MigrationError(.cutover, "cannot run the cutover hook (\(error)); check cutover.hook")
        }
        let output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        for line in output.split(separator: "\n") { environment.events(.note("hook: \(line)")) }
        guard status == 0 else {
            throw MigrationError(
                .cutover,
                "the cutover hook exited with status \(status) (output in \(log.path)); fix it, then run resume"
            )
        }
    }
}
