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
        guard let siteAddress = settings.cutover.siteAddress else { return nil }
        guard try await siteCutover().movedAlready() else { return nil }
        return ["cutover": "already", "siteAddress": siteAddress, "siteMovedAt": Self.timestamp(Date())]
    }

    /// The site address moves from the old box to the new one (`SiteCutover`).
    func siteCutover() throws -> SiteCutover {
        let box = try newBox()
        return SiteCutover(
            cutover: settings.cutover,
            from: old,
            fromId: try required(facts.oldApplianceId, "oldApplianceId"),
            to: box,
            toId: try required(facts.newApplianceId, "newApplianceId"),
            toPin: facts.certificatePin?.description ?? box.pin.description,
            certificateId: facts.certificateId,
            environment: environment,
            fromName: old.name,
            toName: settings.new.name
        )
    }

    func cutover(context: StepContext) async throws -> [String: String] {
        guard settings.cutover.siteAddress != nil else { return ["cutover": "none"] }
        var move = try siteCutover()
        // Journaled first: a failure from then on enables the released address again (the old box serves).
        defer {
            if let id = move.releasedAddressId { facts.oldReleasedAddressId = id }
            old = move.from
            new = move.to
        }
        return try await move.move(context: context, journalKey: "oldReleasedAddressId")
    }

    /// The appliance id and key pin of whatever answers the health probe on `site`; nil when nothing does.
    func whoAnswers(_ site: HostPort) async -> (id: String, pin: String)? { await SiteCutover.whoAnswers(site) }

    func answersFromNew(_ site: HostPort, id: String) async throws -> Bool {
        let expectedPin = facts.certificatePin?.description ?? (try? newBox().pin.description) ?? ""
        return await SiteCutover.answers(site, id: id, pin: expectedPin)
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
