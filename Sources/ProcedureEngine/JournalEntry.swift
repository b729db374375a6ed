public import Foundation

/// The journal's format and the appliancectl that writes it, named in every run and entry so that a journal
/// value this version does not know is an error naming the version that wrote it, never a guess.
public enum JournalFormat {
    /// 1: migration runs only, steps by name (appliancectl before the procedure engine). 2: runs typed by kind,
    /// steps as Codable values, the format and tool version in every run and entry.
    public static let version = 2
    /// The appliancectl release writing the journal.
    public static let toolVersion = "appliancectl 0.13 (journal format \(version))"

    /// Who wrote a row, as the journal recorded it.
    static func writer(_ toolVersion: String?, formatVersion: Int) -> String {
        toolVersion ?? "an appliancectl of journal format \(formatVersion) (before the procedure engine)"
    }
}

/// What a journal entry records of a step.
public enum JournalPhase: String, Codable, Sendable {
    /// Written before acting.
    case intent
    /// Written after the step succeeded.
    case done
    /// Written after the step failed, with the error.
    case failed
    /// A failure was put back (e.g. a freeze lifted): this step and those it made stale are to be done again.
    case reverted
    /// The operator abandoned the run.
    case aborted
}

/// One line of the journal: a step's intent before acting, or its outcome after.
public struct JournalEntry<Step: ProcedureStep>: Sendable, Equatable {
    public typealias Phase = JournalPhase

    public var sequence: Int64
    public var runId: String
    public var step: Step
    public var phase: Phase
    public var detail: StepDetail
    public var at: Date
    /// The appliancectl that wrote it (`JournalFormat.toolVersion`); nil for format 1.
    public var writtenBy: String?

    public init(
        sequence: Int64 = 0,
        runId: String,
        step: Step,
        phase: Phase,
        detail: StepDetail = [:],
        at: Date = Date(),
        writtenBy: String? = JournalFormat.toolVersion
    ) {
        self.sequence = sequence
        self.runId = runId
        self.step = step
        self.phase = phase
        self.detail = detail
        self.at = at
        self.writtenBy = writtenBy
    }
}

/// A run as the journal keeps it, typed by its procedure: what was asked (plan and settings), not how far it got.
public struct RunRecord<P: ProcedureRules>: Sendable, Equatable {
    public var id: String
    public var playbook: String
    public var inventory: String
    public var createdAt: Date
    public var plan: [P.Step]
    public var settings: P.Settings
    /// The journal format the run was created in.
    public var formatVersion: Int
    /// The appliancectl that created it.
    public var writtenBy: String

    public var kind: RunKind { P.kind }
}

/// A run as stored, before its kind is known: what `appliancectl runs` and the kind dispatch read.
public struct StoredRun: Sendable, Equatable {
    public var id: String
    public var kind: RunKind
    public var playbook: String
    public var inventory: String
    public var createdAt: Date
    /// The plan as JSON (an array of steps).
    public var plan: String
    /// The settings as JSON.
    public var settings: String
    public var formatVersion: Int
    public var toolVersion: String?

    /// Who wrote it, for errors.
    public var writer: String { JournalFormat.writer(toolVersion, formatVersion: formatVersion) }

    /// The run typed as procedure `P`; an error naming the writer when the kind, a step or the settings are
    /// unknown to this appliancectl.
    public func typed<P: ProcedureRules>(as type: P.Type) throws -> RunRecord<P> {
        guard kind == P.kind else {
            throw ProcedureError(
                .unreadableRun,
                "run \(id) is a \(kind) run, not \(P.kind); it was written by \(writer)"
            )
        }
        let plan: [P.Step]
        let settings: P.Settings
        do {
            plan = try JSONDecoder().decode([P.Step].self, from: Data(self.plan.utf8))
        } catch {
            throw unreadable("its plan \(self.plan)")
        }
        do {
            settings = try P.settings(from: Data(self.settings.utf8), formatVersion: formatVersion)
        } catch {
            throw unreadable("its settings")
        }
        return RunRecord(
            id: id,
            playbook: playbook,
            inventory: inventory,
            createdAt: createdAt,
            plan: plan,
            settings: settings,
            formatVersion: formatVersion,
            writtenBy: writer
        )
    }

    func unreadable(_ what: String) -> ProcedureError {
        ProcedureError(
            .unreadableRun,
            "run \(id) (\(kind)) holds \(what), which \(JournalFormat.toolVersion) does not know; it was written by "
                + "\(writer): resume or abort it with that version"
        )
    }
}
