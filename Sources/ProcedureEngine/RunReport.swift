public import Foundation

/// The report of a run (P8): steps, before/after snapshots of the appliances and their difference, and the
/// procedure's own summary (encoded next to the common fields).
public struct RunReport<P: Procedure>: Encodable, Sendable {
    public struct StepLine: Codable, Sendable {
        public var step: String
        public var title: String
        public var status: StepStatus
        public var detail: StepDetail
    }

    public var runId: String
    public var kind: RunKind
    public var playbook: String
    public var state: RunState
    public var error: String?
    public var writtenAt: Date
    public var steps: [StepLine]
    public var before: [P.Snapshot]
    public var after: [P.Snapshot]
    /// What changed between the snapshots; nil when an appliance was unreachable.
    public var difference: [String]?
    public var summary: P.Summary
    /// The appliancectl that wrote the report.
    public var writtenBy: String

    public init(
        record: RunRecord<P>,
        machine: ProcedureMachine<P>,
        entries: [JournalEntry<P.Step>],
        error: String?,
        before: [P.Snapshot],
        after: [P.Snapshot]
    ) {
        runId = record.id
        kind = record.kind
        playbook = record.playbook
        state = machine.summary
        self.error = error
        writtenAt = Date()
        var details: [P.Step: StepDetail] = [:]
        for entry in entries where entry.phase != .intent || !entry.detail.isEmpty {
            details[entry.step, default: [:]].merge(entry.detail) { $1 }
        }
        steps = machine.plan.map { step in
            StepLine(
                step: step.name,
                title: step.title,
                status: machine.status[step] ?? .pending,
                detail: P.reportDetail(step, details[step] ?? [:])
            )
        }
        self.before = before
        self.after = after
        difference = P.difference(before: before, after: after)
        summary = P.summary(machine: machine, entries: entries)
        writtenBy = JournalFormat.toolVersion
    }

    enum CodingKeys: String, CodingKey {
        case runId, kind, playbook, state, error, writtenAt, steps, before, after, difference, writtenBy
    }

    /// The common fields, then the summary's own in the same JSON object.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(runId, forKey: .runId)
        try container.encode(kind, forKey: .kind)
        try container.encode(playbook, forKey: .playbook)
        try container.encode(state, forKey: .state)
        try container.encodeIfPresent(error, forKey: .error)
        try container.encode(writtenAt, forKey: .writtenAt)
        try container.encode(steps, forKey: .steps)
        try container.encode(before, forKey: .before)
        try container.encode(after, forKey: .after)
        try container.encodeIfPresent(difference, forKey: .difference)
        try container.encode(writtenBy, forKey: .writtenBy)
        try summary.encode(to: encoder)
    }

    /// The procedure's dates, pretty-printed with sorted keys.
    static var encoder: JSONEncoder {
        let encoder = P.jsonEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return encoder
    }

    static var decoder: JSONDecoder { P.jsonDecoder() }

    /// The report as one JSON document (`--json`, `report.json`).
    public func json() throws -> Data { try Self.encoder.encode(self) }

    /// Writes `report.json` and `report.md` into `directory`; returns their paths.
    @discardableResult
    public func write(to directory: URL) throws -> (json: URL, markdown: URL) {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let json = directory.appendingPathComponent("report.json")
        let markdown = directory.appendingPathComponent("report.md")
        try self.json().write(to: json, options: .atomic)
        try Data(self.markdown.utf8).write(to: markdown, options: .atomic)
        return (json, markdown)
    }

    public var markdown: String {
        var lines = ["# Run \(runId) (\(kind))", ""]
        lines.append("Playbook: `\(playbook)` · state: **\(state.rawValue)** · written \(writtenAt) by \(writtenBy)")
        if let error { lines += ["", "> Stopped: \(error)"] }
        lines += summary.headlineMarkdown
        lines += ["", "## Steps", "", "| step | status | detail |", "| --- | --- | --- |"]
        for line in steps {
            let detail = line.detail.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }
                .joined(separator: "; ")
            lines.append(
                "| \(line.title) | \(line.status.rawValue) | \(detail.replacingOccurrences(of: "|", with: "/")) |"
            )
        }
        lines += summary.sectionsMarkdown
        lines.append(P.markdown(before: before, after: after))
        lines += ["", "## Difference (before → after)", ""]
        if let difference {
            lines.append(difference.isEmpty ? "None." : difference.map { "- \($0)" }.joined(separator: "\n"))
        } else {
            lines.append("Not available (an appliance was unreachable).")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
