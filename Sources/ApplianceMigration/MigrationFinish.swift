public import ApplianceAPI
import ApplianceClient
import ApplianceInventory
import Foundation
import ProcedureEngine
import ProcessSpawn

/// One line of the verification: what was compared, on both boxes.
public struct ComparisonItem: Codable, Sendable, Equatable {
    public var item: String
    public var old: String
    public var new: String
    public var matches: Bool

    public init(item: String, old: String, new: String, matches: Bool? = nil) {
        self.item = item
        self.old = old
        self.new = new
        self.matches = matches ?? (old == new)
    }

    /// Site summaries side by side: settings, users, record counts and every checksum.
    public static func compare(_ old: SiteSummary, _ new: SiteSummary) -> [ComparisonItem] {
        [
            ComparisonItem(item: "site version", old: old.siteVersion, new: new.siteVersion),
            ComparisonItem(item: "settings", old: "\(old.settingsCount)", new: "\(new.settingsCount)"),
            ComparisonItem(item: "settings digest", old: old.settingsDigest, new: new.settingsDigest),
            ComparisonItem(item: "users", old: "\(old.userCount)", new: "\(new.userCount)"),
            ComparisonItem(item: "users digest", old: old.usersDigest, new: new.usersDigest),
            ComparisonItem(item: "history rows", old: "\(old.historyRows)", new: "\(new.historyRows)"),
            ComparisonItem(item: "history digest", old: old.historyDigest, new: new.historyDigest),
            ComparisonItem(item: "files", old: "\(old.fileCount)", new: "\(new.fileCount)"),
            ComparisonItem(item: "file bytes", old: "\(old.fileBytes)", new: "\(new.fileBytes)"),
            ComparisonItem(item: "files SHA-256 digest", old: old.filesDigest, new: new.filesDigest),
            ComparisonItem(item: "recordings", old: "\(old.recordingCount)", new: "\(new.recordingCount)"),
            ComparisonItem(item: "recording bytes", old: "\(old.recordingBytes)", new: "\(new.recordingBytes)"),
            ComparisonItem(item: "recordings SHA-256 digest", old: old.recordingsDigest, new: new.recordingsDigest),
        ]
    }
}

extension MigrationProcedure {
    // MARK: Verify

    func verify() async throws -> [String: String] {
        let oldConnection = try await oldSession()
        let newConnection = try await newSession()
        let oldSummary: SiteSummary = try await oldConnection.call(.siteSummary)
        let newSummary: SiteSummary = try await newConnection.call(.siteSummary)
        let oldStatus: StatusResponse = try await oldConnection.call(.status)
        let newStatus: StatusResponse = try await newConnection.call(.status)
        var items = ComparisonItem.compare(oldSummary, newSummary)
        items.append(
            ComparisonItem(
                item: "installed site version",
                old: oldStatus.software.siteVersion,
                new: newStatus.software.siteVersion
            )
        )
        if settings.hostnameFromOld {
            items.append(ComparisonItem(item: "hostname", old: oldStatus.hostname, new: newStatus.hostname))
        }
        let box = try newBox()
        let served = try await PinnedHTTPClient.fetchPeerCertificate(host: box.host, port: box.port).pin.description
        if let expected = facts.certificatePin?.description {
            items.append(ComparisonItem(item: "certificate served on \(box.address)", old: expected, new: served))
        }
        let mismatches = items.filter { !$0.matches }
        guard mismatches.isEmpty else {
            throw MigrationError(
                .verification,
                "\(settings.new.name) does not hold what \(old.name) holds: "
                    + mismatches.map { "\($0.item) \($0.old) ≠ \($0.new)" }.joined(separator: "; ")
                    + ". Nothing destructive ran. `appliancectl resume \(runId)` freezes \(old.name) again and "
                    + "copies anew from a new backup; if the same items differ again, \(settings.new.name) "
                    + "does not keep what it is given (see its log): end the run with `appliancectl abort "
                    + "\(runId)`"
            )
        }
        var result = [
            "verifiedItems": "\(items.count)",
            "comparison": (try? Journal.json(items)) ?? "",
            "oldApplianceId": oldStatus.applianceId,
        ]
        if plan.contains(.freeze) && !plan.contains(.cutover) {
            // No cutover: the site stays on the old box, which serves again; the new one holds it as of the freeze.
            try await thaw()
            result["thawedAt"] = Self.timestamp(Date())
            environment.events(.note("\(old.name) serves again (no cutover in this playbook)"))
        }
        return result
    }

    // MARK: Cutover (P5)

    /// The cutover's result when the site address already answers from the new box; nil otherwise.
    func siteMovedAlready() async throws -> [String: String]? {
        guard let siteAddress = settings.cutover.siteAddress, let site = HostPort(siteAddress) else { return nil }
        guard try await answersFromNew(site, id: try required(facts.newApplianceId, "newApplianceId")) else {
            return nil
        }
        return ["cutover": "already", "siteAddress": siteAddress, "siteMovedAt": Self.timestamp(Date())]
    }

    func cutover(context: StepContext) async throws -> [String: String] {
        guard let siteAddress = settings.cutover.siteAddress, let site = HostPort(siteAddress) else {
            return ["cutover": "none"]
        }
        let box = try newBox()
        let newId = try required(facts.newApplianceId, "newApplianceId")
        if let moved = try await siteMovedAlready() { return moved }
        // The old box lets go of the site address first, so the two never answer on it at once.
        let oldConnection = try await oldSession()
        let oldNetwork: NetworkResponse = try await oldConnection.call(.network)
        if let entry = oldNetwork.addresses.first(where: { $0.address == site.host }), entry.enabled {
            // Journaled first: a failure from here on enables it again (the old box serves as before).
            try context.journal(["oldReleasedAddressId": "\(entry.id)"])
            facts.oldReleasedAddressId = "\(entry.id)"
            try await oldConnection.perform(
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
            // The old box closes its listener shortly after answering; the new one cannot bind the address before.
            let oldId = try required(facts.oldApplianceId, "oldApplianceId")
            let released = try await waitUntil(tries: 101, every: .milliseconds(100)) {
                await whoAnswers(site)?.id != oldId
            }
            guard released else {
                throw MigrationError(
                    .cutover,
                    "\(old.name) still answers on \(siteAddress) after disabling it; check its network page, then "
                        + "run resume"
                )
            }
            environment.events(.note("\(old.name) no longer answers on \(site.host)"))
        }
        context.crash(at: "cutover:released")
        switch settings.cutover {
        case .none:
            break
        case .sharedIP:
            let connection = try await newSession()
            let network: NetworkResponse = try await connection.call(.network)
            let template = try newAddressEntry(network)
            var entry = network.addresses.first(where: { $0.address == site.host })
            if entry == nil {
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
            if let entry, let certificateId = facts.certificateId,
                entry.certificateId != certificateId
            {
                try await connection.perform(
                    .assignCertificate,
                    parameters: ["id": "\(entry.id)"],
                    body: CertificateAssignment(certificateId: certificateId)
                )
            }
        case .hook(_, let command):
            try await runHook(command, site: siteAddress, new: box)
        }
        let moved = try await waitUntil(tries: 61, every: .milliseconds(500)) {
            try await answersFromNew(site, id: newId)
        }
        guard moved else {
            throw MigrationError(
                .cutover,
                "\(siteAddress) does not answer from \(settings.new.name) (id \(newId)) after the cutover; "
                    + "check the hook or the network, then run resume"
            )
        }
        return ["cutover": "done", "siteAddress": siteAddress, "siteMovedAt": Self.timestamp(Date())]
    }

    /// The appliance id and key pin of whatever answers the health probe on `site`; nil when nothing does.
    func whoAnswers(_ site: HostPort) async -> (id: String, pin: String)? {
        let probe = ApplianceConnection(host: site.host, port: site.port, pin: nil, requestTimeout: .seconds(5))
        guard let (_, health, pin) = try? await probe.health() else { return nil }
        return (health.applianceId, pin.description)
    }

    func answersFromNew(_ site: HostPort, id: String) async throws -> Bool {
        guard let answer = await whoAnswers(site) else { return false }
        let expectedPin = facts.certificatePin?.description ?? (try? newBox().pin.description)
        return answer.id == id && answer.pin == expectedPin
    }

    func runHook(_ command: String, site: String, new box: BoxClient) async throws {
        let variables = CutoverHookEnvironment.variables(
            inherited: ProcessInfo.processInfo.environment,
            site: site,
            oldAddress: old.address,
            newAddress: box.address,
            newHost: box.host,
            newPort: box.port
        )
        let log = self.environment.runDirectory.appendingPathComponent("cutover-hook.log")
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
        for line in output.split(separator: "\n") { self.environment.events(.note("hook: \(line)")) }
        guard status == 0 else {
            throw MigrationError(
                .cutover,
                "the cutover hook exited with status \(status) (output in \(log.path)); fix it, then run resume"
            )
        }
    }

    // MARK: Decommission (P6)

    func decommission(context: StepContext) async throws -> [String: String] {
        var box = old
        defer { old = box }
        var decommissioner = Decommissioner(
            box: box,
            resetDone: facts.oldReset,
            hostname: facts.oldHostname
        )
        defer {
            box = decommissioner.box
            if decommissioner.resetDone { facts.oldReset = true }
        }
        return try await decommissioner.run(context: context)
    }
}
