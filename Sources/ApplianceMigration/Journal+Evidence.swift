public import ProcedureEngine

extension Journal {
    /// Whether any migration verified a migration (`verify` done) or a backup (`backup` done, proven restorable)
    /// of the appliance with this id — the evidence a decommission needs (P6). A verified migration wins over a
    /// backup, the latest of each wins.
    public func verifiedEvidence(applianceId: String) throws -> String? {
        var found: [(sequence: Int64, step: MigrationStep, runId: String)] = []
        for stored in try storedRuns() where stored.kind == MigrationProcedure.kind {
            // A run another version wrote and this one cannot read is no evidence here.
            guard let record = try? stored.typed(as: MigrationProcedure.self),
                let entries = try? self.entries(record)
            else { continue }
            for entry in entries
            where entry.phase == .done && [.verify, .backup].contains(entry.step)
                && entry.detail["oldApplianceId"] == applianceId
            {
                found.append((entry.sequence, entry.step, entry.runId))
            }
        }
        found.sort { $0.sequence > $1.sequence }
        guard let best = found.first(where: { $0.step == .verify }) ?? found.first else { return nil }
        return best.step == .verify
            ? "a verified migration (run \(best.runId))" : "a verified backup (run \(best.runId))"
    }
}
