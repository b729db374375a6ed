import ApplianceAPI
import ApplianceClient
import ApplianceInventory
import Foundation
public import ProcedureEngine

extension PairUpgradeProcedure {
    // MARK: Automatic rollback (X4)

    /// After a failure: a failed swing gives the site back to A; a failed install or verification rolls that box
    /// back (`BoxUpgrade.rollBack`) and proves it. When it was the first box (sync A, async B: the other was
    /// never touched) the pair is set up again as it was, A primary, and `break` is journaled reverted, so a
    /// resumed run syncs, breaks and upgrades again; otherwise `upgrade` of that box is.
    public func recover(after failure: any Error, machine: Machine) async -> Recovery<PairUpgradeStep> {
        if machine.status[.swing] != nil, machine.status[.swing] != .pending, !machine.isDone(.swing) {
            do {
                try await thaw(.a)
                return .reverted(.swing, ["thawed": settings.a.name, "error": "\(failure)"])
            } catch {
                return .manual(
                    "\(settings.a.name) could not be given the site back (\(error)); turn its maintenance off "
                        + "(`appliancectl maintenance \(settings.a.address ?? settings.a.name) off`)"
                )
            }
        }
        for box in [settings.first, settings.first.other]
        where machine.status[.upgrade(box)] != .pending && !machine.isDone(.verify(box)) {
            let outcome = await unit(box).rollBack(after: failure)
            if case .manual(let message) = outcome { return .manual(message) }
            do {
                if box == .a && settings.mode == .sync { try await thaw(.a) }
                guard case .reverted(var evidence) = outcome else { return .nothing }
                guard box == settings.first else { return .reverted(.upgrade(box), evidence) }
                try await establish(primary: .a)
                evidence.merge(try await firstSync(primary: .a)) { $1 }
                evidence["pairRestored"] = "\(settings.a.name) primary, \(settings.b.name) its backup, first sync done"
                restoredLine =
                    "The pair is established again as it was: \(settings.a.name) primary, \(settings.b.name) its "
                    + "backup (first sync done)"
                    + (box == .b ? "; \(settings.a.name) was never touched and served throughout" : "")
                return .reverted(.breakPair, evidence)
            } catch {
                return .manual(
                    "\(name(box)) was rolled back, but the pair could not be set up again (\(error)); establish it "
                        + "on \(settings.a.name) (`appliancectl failover establish`) once both answer"
                )
            }
        }
        return .nothing
    }

    /// The run's failure as the operator reads it: after a proven rollback, what failed, what was rolled back,
    /// and where the pair stands.
    func explainFailure(_ failure: any Error, runId: String) async -> any Error {
        var lines: [String] = []
        for box in PairBox.allCases {
            if let line = await unit(box).rollbackLine { lines.append(line) }
        }
        guard !lines.isEmpty else {
            if RunSession.isRefusal(failure) { return failure }
            return MigrationError(
                .upgrade,
                "\(failure)\nFix the cause, then continue with `appliancectl resume \(runId)`, or end the run with "
                    + "`appliancectl abort \(runId)`"
            )
        }
        return MigrationError(
            .rolledBack,
            "the pair upgrade failed: \(failure)\n\(lines.joined(separator: ".\n")).\n"
                + (restoredLine.map { "\($0).\n" } ?? "")
                + "The run ended failed but rolled back. Fix the cause (e.g. a fixed package in the repository), then "
                + "`appliancectl resume \(runId)` to try again, or end it with `appliancectl abort \(runId)`"
        )
    }
}

/// The pair upgrade's part of the report: the method, each box's versions, the downtime the run measured on the
/// site address, the primary afterwards, and a rollback with its evidence.
public struct PairUpgradeSummary: ReportSummary, Equatable {
    public var mode: String
    public var plan: String?
    /// "name: before → after" per box, once verified.
    public var upgraded: [String]
    /// Seconds the site address did not answer (health 200, not in maintenance), summed over the run's steps.
    public var downtimeSeconds: Double
    public var primary: String?
    public var firstSyncAt: String?
    public var rollback: StepDetail?

    public init(machine: ProcedureMachine<PairUpgradeProcedure>, entries: [JournalEntry<PairUpgradeStep>]) {
        mode = machine.settings.mode.rawValue
        var details: [PairUpgradeStep: StepDetail] = [:]
        var downtime = 0.0
        for entry in entries where entry.phase == .done {
            details[entry.step, default: [:]].merge(entry.detail) { $1 }
            downtime += entry.detail["downtimeSeconds"].flatMap(Double.init) ?? 0
        }
        downtimeSeconds = downtime
        plan = details[.preflight]?["a.planText"]
        upgraded = PairBox.allCases.compactMap { box in
            let name = machine.settings.reference(box).name
            guard machine.isDone(.verify(box)),
                let before: InstalledSoftware = try? UpgradeFacts.decode(
                    details[.preflight] ?? [:],
                    "\(box.rawValue).softwareBefore"
                ),
                let after: InstalledSoftware = try? UpgradeFacts.decode(
                    details[.verify(box)] ?? [:],
                    "\(box.rawValue).softwareAfter"
                )
            else { return nil }
            return "\(name): \(UpgradePlanning.describe(before)) → \(UpgradePlanning.describe(after))"
        }
        primary = details[.reestablish]?["primary"]
        firstSyncAt = details[.reestablish]?["firstSyncAt"]
        rollback =
            entries.last {
                $0.phase == .reverted && ($0.detail["a.rolledBack"] == "yes" || $0.detail["b.rolledBack"] == "yes")
            }?
            .detail
    }

    public var terminalLines: [String] {
        var lines = upgraded.map { "Upgraded \($0)" }
        lines.append("Downtime (site address not answering): \(String(format: "%.1f", downtimeSeconds)) s")
        if let primary { lines.append("Paired again: \(primary) primary, first sync \(firstSyncAt ?? "done")") }
        if let rollback {
            let box = rollback["a.rolledBack"] == "yes" ? "a" : "b"
            lines.append(
                "Rolled back automatically: \(rollback["\(box).rolledBackFrom"] ?? "?") → "
                    + "\(rollback["\(box).rolledBackTo"] ?? "?")"
            )
            lines.append("Evidence: \(rollback["\(box).evidence"] ?? "?")")
            if let restored = rollback["pairRestored"] { lines.append("Pair: \(restored)") }
        }
        return lines
    }

    public var headlineMarkdown: [String] {
        ["", "Method: \(mode); planned: \(plan ?? "?"); downtime \(String(format: "%.1f", downtimeSeconds)) s."]
    }

    public var sectionsMarkdown: [String] {
        var lines = ["", "## Pair", ""] + upgraded.map { "- \($0)" }
        if let primary { lines.append("- Primary afterwards: \(primary) (first sync \(firstSyncAt ?? "?"))") }
        if let rollback {
            lines += ["", "## Automatic rollback", ""]
            lines += rollback.sorted { $0.key < $1.key }.map { "- \($0.key): \($0.value)" }
        }
        return lines
    }
}
