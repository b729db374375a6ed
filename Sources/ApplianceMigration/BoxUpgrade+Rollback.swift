import ApplianceAPI
import ApplianceClient
import ApplianceInventory
import Foundation
import ProcedureEngine

/// What the automatic rollback of one box did.
enum BoxRollback: Sendable {
    /// The box still runs what it ran before: nothing to roll back.
    case nothing
    /// Rolled back and proven; the evidence, under the box's prefix.
    case reverted(StepDetail)
    /// Could not be rolled back (or `rollback: manual`): what the operator must do by hand.
    case manual(String)
}

extension BoxUpgrade {
    // MARK: Automatic rollback (X4)

    /// After a failed install or verification: the box goes back to the software it ran before the run (its
    /// previous slot), and the run proves it: healthy, the versions as before, the site data equal to the
    /// pre-upgrade snapshot (the pre-upgrade backup is restored when it is not).
    func rollBack(after failure: any Error) async -> BoxRollback {
        guard let before = facts.softwareBefore, let summary = facts.summaryBefore else { return .nothing }
        let byHand =
            "`appliancectl updates rollback \(box.address)` returns it one step; \(backupFile.path) holds the "
            + "pre-upgrade backup (restore it if the site data differs)"
        do {
            let status: StatusResponse = try await session().call(.status)
            if status.software == before {
                environment.events(.note("\(box.name) still runs \(UpgradePlanning.describe(before)); no rollback"))
                return .nothing
            }
            guard options.rollback == .automatic else {
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
    ) async throws -> BoxRollback {
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
            prefixed([
                "rolledBack": "yes",
                "failure": "\(failure)",
                "rolledBackFrom": UpgradePlanning.describe(answer.rolledBack),
                "rolledBackTo": UpgradePlanning.describe(answer.software),
                "evidence": evidence,
                "evidenceComparison": UpgradeFacts.encode(comparison),
                "siteData": siteData,
                "certificate": pin == facts.pinBefore ? "still served (\(pin))" : "key changed to \(pin)",
            ])
        )
    }
}
