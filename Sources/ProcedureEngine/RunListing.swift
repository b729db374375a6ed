/// One run as `appliancectl runs` lists it.
public struct RunLine: Codable, Sendable, Equatable {
    public var id: String
    public var kind: String
    /// The first appliance the run touches (the old one of a migration).
    public var old: String
    /// The second, or `-`.
    public var new: String
    /// Nil when this appliancectl cannot read the run (`error` says why).
    public var state: RunState?
    public var next: String?
    public var error: String?
}

extension ProcedureRules {
    /// The line of one stored run of this kind.
    public static func line(_ stored: StoredRun, journal: Journal) throws -> RunLine {
        let record = try stored.typed(as: Self.self)
        let machine = ProcedureMachine(record: record, entries: try journal.entries(record))
        let next: Step? =
            switch machine.next() {
            case .perform(let step), .reconcile(let step), .refuse(let step, _): step
            case .finished: nil
            }
        let names = appliances(record.settings)
        return RunLine(
            id: record.id,
            kind: record.kind.rawValue,
            old: names.first ?? "-",
            new: names.dropFirst().first ?? "-",
            state: machine.summary,
            next: next?.name,
            error: next.flatMap { machine.lastError[$0] }
        )
    }
}

/// `appliancectl runs`: every run of the journal, newest first, read by the procedure of its kind.
public enum RunListing {
    /// A run whose kind, steps or settings this appliancectl does not know is listed with the error that names
    /// the version that wrote it, and no state.
    public static func lines(journal: Journal, procedures: [any ProcedureRules.Type]) throws -> [RunLine] {
        try journal.storedRuns().map { stored in
            do {
                guard let procedure = procedures.first(where: { $0.kind == stored.kind }) else {
                    throw unknownKind(stored, known: procedures)
                }
                return try procedure.line(stored, journal: journal)
            } catch let error as ProcedureError where error.code == .unreadableRun {
                return RunLine(
                    id: stored.id,
                    kind: stored.kind.rawValue,
                    old: "?",
                    new: "?",
                    state: nil,
                    next: nil,
                    error: error.message
                )
            }
        }
    }

    /// The error for a run of a kind no procedure here has.
    public static func unknownKind(_ stored: StoredRun, known: [any ProcedureRules.Type]) -> ProcedureError {
        ProcedureError(
            .unreadableRun,
            "run \(stored.id) is a '\(stored.kind)' run, a kind \(JournalFormat.toolVersion) does not know (it knows "
                + "\(known.map { $0.kind.rawValue }.joined(separator: ", "))); it was written by \(stored.writer): resume "
                + "or abort it with that version"
        )
    }
}
