import ApplianceAPI
import ApplianceClient
import ApplianceInventory
import Foundation
public import ProcedureEngine

extension UpgradeProcedure {
    // MARK: Automatic rollback (X4)

    /// After a failed install or verification: the box goes back to the software it ran before the run (its
    /// previous slot), and the run proves it: healthy, the versions as before, the site data equal to the
    /// pre-upgrade snapshot (the pre-upgrade backup is restored when it is not). Journaled as `install` reverted
    /// with the evidence, so a resumed run installs and verifies again.
    public func recover(after failure: any Error, machine: Machine) async -> Recovery<UpgradeStep> {
        guard machine.status[.install] != .pending, !machine.isDone(.verify),
            let before = facts.softwareBefore, let summary = facts.summaryBefore
        else { return .nothing }
        let byHand =
            "`appliancectl updates rollback \(box.address)` returns it one step; \(backupFile.path) holds the "
            + "pre-upgrade backup (restore it if the site data differs)"
        do {
            let status: StatusResponse = try await session().call(.status)
            if status.software == before {
                environment.events(.note("\(box.name) still runs \(UpgradePlanning.describe(before)); no rollback"))
                return .nothing
            }
            guard settings.rollback == .automatic else {
                return .manual(
                    "\(box.name) runs \(UpgradePlanning.describe(status.software)) as the failure left it "
                        + "(rollback: manual); \(byHand)"
                )
            }
            return try await rollBack(after: failure, from: status.software, to: before, summary: summary, byHand)
        } catch {
            return .manual("the automatic rollback of \(box.name) failed (\(error)); \(byHand)")
        }
    }

    func rollBack(
        after failure: any Error,
        from current: InstalledSoftware,
        to before: InstalledSoftware,
        summary: SiteSummary,
        _ byHand: String
    ) async throws -> Recovery<UpgradeStep> {
        let slots = try await session().softwareSlots()
        guard let previous = slots.previous, previous.software == before else {
            return .manual(
                "\(box.name) cannot go back to \(UpgradePlanning.describe(before)) in one step: its previous "
                    + "software slot is \(slots.previous.map { UpgradePlanning.describe($0.software) } ?? "none") "
                    + "(an appliance keeps one step back); restore \(backupFile.path) on a box of that version"
            )
        }
        environment.events(
            .note(
                "rolling \(box.name) back automatically: \(UpgradePlanning.describe(current)) → "
                    + UpgradePlanning.describe(before)
            )
        )
        environment.crash(at: "rollback:intent")
        let answer = try await session().rollback()
        environment.crash(at: "rollback:acted")
        let (healthy, health, seconds) = try await waitUntilHealthy()
        guard healthy else {
            return .manual(
                "\(box.name) was rolled back to \(UpgradePlanning.describe(answer.software)) but is not healthy ("
                    + (health.map { "\($0.status): \($0.reason ?? "no reason")" } ?? "no answer") + "); \(byHand)"
            )
        }
        var connection = try await session()
        let status: StatusResponse = try await connection.call(.status)
        guard status.software == before else {
            return .manual(
                "\(box.name) runs \(UpgradePlanning.describe(status.software)) after the rollback, not "
                    + "\(UpgradePlanning.describe(before)); \(byHand)"
            )
        }
        var comparison = UpgradePlanning.dataComparison(before: summary, after: try await connection.call(.siteSummary))
        var siteData = "as before (no restore needed)"
        if !comparison.allSatisfy(\.matches) {
            environment.events(.note("the site data differs from the pre-upgrade snapshot; restoring the backup"))
            _ = try await connection.restore(
                file: backupFile.path,
                password: backupPassword,
                progress: environment.progress("restore \(box.name)", kind: "restore", total: nil)
            )
            environment.events(.transferFinished(label: "restore \(box.name)"))
            connection = try await session()
            comparison = UpgradePlanning.dataComparison(before: summary, after: try await connection.call(.siteSummary))
            guard comparison.allSatisfy(\.matches) else {
                let differing = comparison.filter { !$0.matches }.map(\.item).joined(separator: ", ")
                return .manual("the site data of \(box.name) differs after restoring the backup (\(differing))")
            }
            siteData = "restored from \(backupFile.lastPathComponent)"
        }
        let pin = try await self.connection().health().pin.description
        let evidence =
            "health 200 (\(health?.status ?? "ok")) after \(Int(seconds)) s; versions "
            + "\(UpgradePlanning.describe(status.software)) as before; site data \(comparison.count) of "
            + "\(comparison.count) items equal to the pre-upgrade snapshot (\(siteData))"
        rollbackLine =
            "\(box.name) was rolled back automatically from \(UpgradePlanning.describe(answer.rolledBack)) to "
            + "\(UpgradePlanning.describe(answer.software)) and proven: \(evidence)"
        return .reverted(
            .install,
            [
                "rolledBack": "yes",
                "failure": "\(failure)",
                "rolledBackFrom": UpgradePlanning.describe(answer.rolledBack),
                "rolledBackTo": UpgradePlanning.describe(answer.software),
                "evidence": evidence,
                "evidenceComparison": UpgradeFacts.encode(comparison),
                "siteData": siteData,
                "certificate": pin == facts.pinBefore ? "still served (\(pin))" : "key changed to \(pin)",
            ]
        )
    }

    /// The run's failure as the operator reads it: after a proven rollback, what failed, what was rolled back
    /// and that the box serves as before.
    func explainFailure(_ failure: any Error, runId: String) -> any Error {
        guard let rollbackLine else {
            if RunSession.isRefusal(failure) { return failure }  // refusals say themselves what to do
            return MigrationError(
                .upgrade,
                "\(failure)\nFix the cause, then continue with `appliancectl resume \(runId)`, or end the run with "
                    + "`appliancectl abort \(runId)`"
                    + (installBegun ? "" : " (nothing was installed on \(box.name))")
            )
        }
        return MigrationError(
            .rolledBack,
            "the upgrade of \(box.name) failed: \(failure)\n\(rollbackLine).\nThe run ended failed but rolled "
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
