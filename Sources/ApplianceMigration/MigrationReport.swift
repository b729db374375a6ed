public import ApplianceAPI
import ApplianceClient
public import Foundation

/// What one appliance looked like at a moment: identity, versions, site counts and checksums, certificates.
public struct BoxSnapshot: Codable, Sendable, Equatable {
    public var name: String
    public var address: String?
    public var takenAt: Date
    public var reachable: Bool
    public var note: String?
    public var applianceId: String?
    public var hostname: String?
    public var software: InstalledSoftware?
    public var site: SiteSummary?
    /// `name (sha256 fingerprint)` of every certificate.
    public var certificates: [String]
    /// `address (access)` of every enabled address.
    public var addresses: [String]

    public init(name: String, address: String?, note: String) {
        self.name = name
        self.address = address
        self.takenAt = Date()
        self.reachable = false
        self.note = note
        self.certificates = []
        self.addresses = []
    }
}

extension MigrationRunner {
    /// Snapshots of both boxes as they are now; unreachable ones say why.
    public func snapshots() async -> [BoxSnapshot] {
        var result: [BoxSnapshot] = []
        // Ask for the factory password first only where it is expected, so no snapshot costs a failed login.
        var oldBox = old
        result.append(await Self.snapshot(&oldBox, factoryFirst: facts["oldReset"] == "yes"))
        if record.plan == [.decommission] { return result }
        if var box = new {
            result.append(await Self.snapshot(&box, factoryFirst: !machine.isDone(.install)))
        } else {
            result.append(
                BoxSnapshot(name: record.settings.new.name, address: nil, note: "does not exist yet (step 1 makes it)")
            )
        }
        return result
    }

    static func snapshot(_ box: inout BoxClient, factoryFirst: Bool) async -> BoxSnapshot {
        var snapshot = BoxSnapshot(name: box.name, address: box.address, note: "")
        do {
            if factoryFirst, try await box.hasFactoryPassword() {
                snapshot.note = "factory password (factory-fresh or factory-reset)"
                snapshot.reachable = true
                return snapshot
            }
            let connection: ApplianceConnection
            do {
                connection = try await box.session()
            } catch let error as MigrationError where error.code == .appliance {
                guard try await box.hasFactoryPassword() else { throw error }
                snapshot.note = "factory password (factory-fresh or factory-reset)"
                snapshot.reachable = true
                return snapshot
            }
            let status: StatusResponse = try await connection.call(.status)
            snapshot.reachable = true
            snapshot.note = nil
            snapshot.applianceId = status.applianceId
            snapshot.hostname = status.hostname
            snapshot.software = status.software
            snapshot.site = try await connection.call(.siteSummary)
            let certificates: [CertificateEntry] = try await connection.call(.listCertificates)
            snapshot.certificates = certificates.map { "\($0.name) (\($0.details.sha256Fingerprint.prefix(23)))" }
            let network: NetworkResponse = try await connection.call(.network)
            snapshot.addresses = network.addresses.filter(\.enabled).map { "\($0.address) (\($0.access.rawValue))" }
        } catch {
            snapshot.note = "\(error)"
        }
        return snapshot
    }
}

/// The report of a run (P8): steps, before/after snapshots of both boxes, and their difference.
public struct MigrationReport: Codable, Sendable {
    public struct StepLine: Codable, Sendable {
        public var step: MigrationStep
        public var title: String
        public var status: StepStatus
        public var detail: [String: String]
    }

    public var runId: String
    public var kind: String
    public var playbook: String
    public var state: RunState
    public var error: String?
    public var writtenAt: Date
    public var steps: [StepLine]
    public var before: [BoxSnapshot]
    public var after: [BoxSnapshot]
    /// The verification: old and new side by side, as checked before anything destructive.
    public var comparison: [ComparisonItem]
    /// True when the verification ran and every item matched.
    public var allMatched: Bool
    /// When the old box was frozen (maintenance on, site writes refused) for the last time.
    public var frozenAt: Date?
    /// When the site address first answered from the new box.
    public var siteMovedAt: Date?
    /// The downtime of the site's writers: from the freeze to the site answering from the new box (seconds).
    public var downtimeSeconds: Double?

    public init(
        record: RunRecord,
        machine: MigrationMachine,
        entries: [JournalEntry],
        error: String?,
        before: [BoxSnapshot],
        after: [BoxSnapshot]
    ) {
        runId = record.id
        kind = record.kind
        playbook = record.playbook
        state = machine.summary
        self.error = error
        writtenAt = Date()
        var details: [MigrationStep: [String: String]] = [:]
        for entry in entries where entry.phase != .intent || !entry.detail.isEmpty {
            details[entry.step, default: [:]].merge(entry.detail) { $1 }
        }
        steps = machine.plan.map { step in
            var detail = details[step] ?? [:]
            detail["comparison"] = nil
            return StepLine(step: step, title: step.title, status: machine.status[step] ?? .pending, detail: detail)
        }
        self.before = before
        self.after = after
        let verified = details[.verify]?["comparison"].flatMap {
            try? JSONDecoder().decode([ComparisonItem].self, from: Data($0.utf8))
        }
        comparison = verified ?? []
        allMatched = machine.isDone(.verify) && !comparison.isEmpty && comparison.allSatisfy(\.matches)
        frozenAt = details[.freeze]?["frozenAt"].flatMap(APICoding.parseDate)
        siteMovedAt = details[.cutover]?["siteMovedAt"].flatMap(APICoding.parseDate)
        if let frozenAt, let end = siteMovedAt ?? details[.verify]?["thawedAt"].flatMap(APICoding.parseDate) {
            downtimeSeconds = end.timeIntervalSince(frozenAt)
        }
    }

    /// Writes `report.json` and `report.md` into `directory`; returns their paths.
    @discardableResult
    public func write(to directory: URL) throws -> (json: URL, markdown: URL) {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let encoder = APICoding.encoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let json = directory.appendingPathComponent("report.json")
        let markdown = directory.appendingPathComponent("report.md")
        try encoder.encode(self).write(to: json, options: .atomic)
        try Data(self.markdown.utf8).write(to: markdown, options: .atomic)
        return (json, markdown)
    }

    public var markdown: String {
        var lines = ["# Run \(runId) (\(kind))", ""]
        lines.append(
            "Playbook: `\(playbook)` · state: **\(state.rawValue)** · written \(APICoding.formatDate(writtenAt))"
        )
        if let error { lines += ["", "> Stopped: \(error)"] }
        if let downtimeSeconds {
            let end = siteMovedAt == nil ? "the old appliance serving again" : "the site answering from the new one"
            lines += [
                "",
                "Downtime: **\(String(format: "%.1f", downtimeSeconds)) s** (site writes refused from the freeze of the "
                    + "old appliance to \(end)).",
            ]
        }
        lines += ["", "## Steps", "", "| step | status | detail |", "| --- | --- | --- |"]
        for line in steps {
            let detail = line.detail.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }
                .joined(separator: "; ")
            lines.append(
                "| \(line.title) | \(line.status.rawValue) | \(detail.replacingOccurrences(of: "|", with: "/")) |"
            )
        }
        if !comparison.isEmpty {
            lines += [
                "", "## Verification (\(allMatched ? "every item matched" : "MISMATCH"))", "",
                "| item | old | new | match |", "| --- | --- | --- | --- |",
            ]
            for item in comparison {
                lines.append("| \(item.item) | \(item.old) | \(item.new) | \(item.matches ? "yes" : "**no**") |")
            }
        }
        lines += ["", "## Before and after", ""]
        lines += ["| appliance | when | reachable | id | hostname | site | history | files | recordings | note |"]
        lines += ["| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for (when, snapshots) in [("before", before), ("after", after)] {
            for box in snapshots {
                let site = box.site
                lines.append(
                    "| \(box.name) | \(when) | \(box.reachable ? "yes" : "no") | \(box.applianceId ?? "-") | "
                        + "\(box.hostname ?? "-") | \(box.software?.siteVersion ?? "-") | "
                        + "\(site.map { "\($0.historyRows)" } ?? "-") | "
                        + "\(site.map { "\($0.fileCount) (\($0.fileBytes) B)" } ?? "-") | "
                        + "\(site.map { "\($0.recordingCount) (\($0.recordingBytes) B)" } ?? "-") | \(box.note ?? "") |"
                )
            }
        }
        lines += ["", "## Difference (old before → new after)", ""]
        if let oldBefore = before.first?.site, let newAfter = after.dropFirst().first?.site {
            let differing = ComparisonItem.compare(oldBefore, newAfter).filter { !$0.matches }
            lines.append(
                differing.isEmpty
                    ? "None: the new appliance holds what the old one held."
                    : differing.map { "- \($0.item): \($0.old) → \($0.new)" }.joined(separator: "\n")
            )
        } else {
            lines.append("Not available (a box was unreachable).")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
