import ApplianceAPI
import ApplianceClient
import ApplianceInventory
import Foundation
public import ProcedureEngine

extension UpgradeProcedure {
    // MARK: Automatic rollback (X4)

    /// After a failed install or verification: the box's own rollback (`BoxUpgrade.rollBack`), journaled as
    /// `install` reverted with the evidence, so a resumed run installs and verifies again.
    public func recover(after failure: any Error, machine: Machine) async -> Recovery<UpgradeStep> {
        guard machine.status[.install] != .pending, !machine.isDone(.verify) else { return .nothing }
        switch await unit.rollBack(after: failure) {
        case .nothing: return .nothing
        case .reverted(let evidence): return .reverted(.install, evidence)
        case .manual(let message): return .manual(message)
        }
    }

    /// The run's failure as the operator reads it: after a proven rollback, what failed, what was rolled back
    /// and that the box serves as before.
    func explainFailure(_ failure: any Error, runId: String) async -> any Error {
        guard let rollbackLine = await unit.rollbackLine else {
            if RunSession.isRefusal(failure) { return failure }  // refusals say themselves what to do
            return MigrationError(
                .upgrade,
                "\(failure)\nFix the cause, then continue with `appliancectl resume \(runId)`, or end the run with "
                    + "`appliancectl abort \(runId)`"
                    + (await unit.installBegun ? "" : " (nothing was installed on \(boxName))")
            )
        }
        return MigrationError(
            .rolledBack,
            "the upgrade of \(boxName) failed: \(failure)\n\(rollbackLine).\nThe run ended failed but rolled "
                + "back. Fix the cause (e.g. a fixed package in the repository), then `appliancectl resume \(runId)` "
                + "to try the upgrade again, or end it with `appliancectl abort \(runId)`"
        )
    }
}

/// The upgrade's part of the report: what was planned, the versions before and after, the verification, and
/// the rollback with its evidence.
public struct UpgradeSummary: ReportSummary, Equatable {
    public var plan: String?
    public var softwareBefore: String?
    public var softwareAfter: String?
    /// The site data before and after (every item but the site version).
    public var comparison: [ComparisonItem]
    public var verified: Bool
    /// The automatic rollback's journal entry (what failed, from and to, the evidence), when there was one.
    public var rollback: StepDetail?
    /// Offline: "offline from REPOSITORY", and the package files uploaded (manual install).
    public var packages: String?
    public var uploaded: String?

    public init(machine: ProcedureMachine<UpgradeProcedure>, entries: [JournalEntry<UpgradeStep>]) {
        var details: [UpgradeStep: StepDetail] = [:]
        for entry in entries where entry.phase == .done { details[entry.step, default: [:]].merge(entry.detail) { $1 } }
        let facts = try? UpgradeFacts(details[.preflight] ?? [:])
        plan = details[.preflight]?["planText"]
        softwareBefore = facts?.softwareBefore.map(UpgradePlanning.describe)
        let after: InstalledSoftware? = try? UpgradeFacts.decode(details[.verify] ?? [:], "softwareAfter")
        softwareAfter = after.map(UpgradePlanning.describe)
        comparison = (try? UpgradeFacts.decode(details[.verify] ?? [:], "comparison")) ?? []
        verified = machine.isDone(.verify)
        packages = details[.preflight]?["packages"]
        uploaded = details[.install]?["uploaded"]
        rollback =
            entries.last { $0.phase == .reverted && $0.step == .install && $0.detail["rolledBack"] == "yes" }?
            .detail
    }

    public var terminalLines: [String] {
        var lines: [String] = []
        if let packages, let uploaded { lines.append("Packages: \(packages); uploaded: \(uploaded)") }
        if verified, let softwareBefore, let softwareAfter {
            lines.append("Upgraded: \(softwareBefore) → \(softwareAfter)")
            lines.append(
                "Verified: healthy, site data \(comparison.filter(\.matches).count) of \(comparison.count) items "
                    + "equal to before, certificate still served"
            )
            if softwareBefore.contains("site ") && !softwareAfter.contains(softwareBefore.siteLabel) {
                lines.append(
                    "Note: the site update changed the site hash; client installers must be regenerated, and every "
                        + "user was logged out"
                )
            }
        }
        if let rollback, !verified {
            lines.append(
                "Rolled back automatically: \(rollback["rolledBackFrom"] ?? "?") → \(rollback["rolledBackTo"] ?? "?")"
            )
            lines.append("Failed: \(rollback["failure"] ?? rollback["error"] ?? "?")")
            lines.append("Evidence: \(rollback["evidence"] ?? "?")")
        }
        return lines
    }

    public var headlineMarkdown: [String] {
        guard let plan else { return [] }
        return ["", "Planned: \(plan) (from \(softwareBefore ?? "?"))."]
            + (packages.map { ["", "Packages: \($0); uploaded: \(uploaded ?? "nothing yet")."] } ?? [])
    }

    public var sectionsMarkdown: [String] {
        var lines: [String] = []
        if !comparison.isEmpty {
            lines += [
                "", "## Verification (\(comparison.allSatisfy(\.matches) ? "site data as before" : "MISMATCH"))", "",
                "| item | before | after | match |", "| --- | --- | --- | --- |",
            ]
            for item in comparison {
                lines.append("| \(item.item) | \(item.old) | \(item.new) | \(item.matches ? "yes" : "**no**") |")
            }
        }
        if let rollback {
            lines += [
                "", "## Automatic rollback", "",
                "- What failed: \(rollback["failure"] ?? rollback["error"] ?? "?")",
                "- Rolled back: \(rollback["rolledBackFrom"] ?? "?") → \(rollback["rolledBackTo"] ?? "?")",
                "- Evidence: \(rollback["evidence"] ?? "?")",
                "- Certificate: \(rollback["certificate"] ?? "?")",
            ]
        }
        return lines
    }
}

extension String {
    /// "site 24.1.0" out of "base 7.2.0, site 24.1.0".
    fileprivate var siteLabel: String {
        split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.first { $0.hasPrefix("site ") } ?? self
    }
}
