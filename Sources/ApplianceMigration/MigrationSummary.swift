import ApplianceAPI
import ApplianceInventory
public import Foundation
public import ProcedureEngine

/// The migration's part of the report: the verification side by side, and the downtime of the site's writers.
public struct MigrationSummary: ReportSummary, Equatable {
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

    public init(machine: MigrationMachine, entries: [JournalEntry<MigrationStep>]) {
        var details: [MigrationStep: StepDetail] = [:]
        for entry in entries where entry.phase != .intent || !entry.detail.isEmpty {
            details[entry.step, default: [:]].merge(entry.detail) { $1 }
        }
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

    public var terminalLines: [String] {
        var lines: [String] = []
        if !comparison.isEmpty {
            lines.append("Verification: \(comparison.filter(\.matches).count) of \(comparison.count) items matched")
        }
        if let downtimeSeconds {
            lines.append(
                "Downtime: \(String(format: "%.1f", downtimeSeconds)) s (site writes refused from the freeze on)"
            )
        }
        return lines
    }

    public var headlineMarkdown: [String] {
        guard let downtimeSeconds else { return [] }
        let end = siteMovedAt == nil ? "the old appliance serving again" : "the site answering from the new one"
        return [
            "",
            "Downtime: **\(String(format: "%.1f", downtimeSeconds)) s** (site writes refused from the freeze of the "
                + "old appliance to \(end)).",
        ]
    }

    public var sectionsMarkdown: [String] {
        guard !comparison.isEmpty else { return [] }
        var lines = [
            "", "## Verification (\(allMatched ? "every item matched" : "MISMATCH"))", "",
            "| item | old | new | match |", "| --- | --- | --- | --- |",
        ]
        for item in comparison {
            lines.append("| \(item.item) | \(item.old) | \(item.new) | \(item.matches ? "yes" : "**no**") |")
        }
        return lines
    }
}

extension MigrationProcedure {
    public static func summary(machine: MigrationMachine, entries: [JournalEntry<MigrationStep>]) -> MigrationSummary {
        MigrationSummary(machine: machine, entries: entries)
    }

    /// The old box before against the new one after: nothing should differ.
    public static func difference(before: [BoxSnapshot], after: [BoxSnapshot]) -> [String]? {
        guard let oldBefore = before.first?.site, let newAfter = after.dropFirst().first?.site else { return nil }
        return ComparisonItem.compare(oldBefore, newAfter).filter { !$0.matches }
            .map { "\($0.item): \($0.old) (old, before) → \($0.new) (new, after)" }
    }

    public static func markdown(before: [BoxSnapshot], after: [BoxSnapshot]) -> String {
        BoxSnapshot.markdownSection(before: before, after: after)
    }
}
