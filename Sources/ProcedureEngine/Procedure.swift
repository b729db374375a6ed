public import Foundation

/// What a step found or made (ids, checksums, pins, file names), as the journal and the report keep it; never a
/// secret.
public typealias StepDetail = [String: String]

/// One step of a procedure: a Codable value that may carry data (e.g. "upgrade box B").
public protocol ProcedureStep: Codable, Sendable, Hashable {
    /// A stable name: the journal's `step` column, crash points (`NAME:intent`) and the report.
    var name: String { get }
    /// What the step does, for plans, progress and reports.
    var title: String { get }
}

/// The kind of a run as the journal stores it (`migrate`, `decommission`, …).
public struct RunKind: RawRepresentable, Codable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: String

    public init(rawValue: String) {
        self.rawValue = rawValue
    }

    public var description: String { rawValue }
}

/// The declarative, pure part of a procedure: its steps, their order, its safety rules. No I/O, so every rule is
/// tested on values alone.
public protocol ProcedureRules: Sendable {
    associatedtype Step: ProcedureStep
    /// What a run was asked to do (everything but secrets), kept in the journal.
    associatedtype Settings: Codable & Sendable & Equatable

    /// The journal's name for runs of this procedure.
    static var kind: RunKind { get }

    /// The steps a run with these settings takes, in order.
    static func plan(for settings: Settings) -> [Step]

    /// `steps` in the procedure's own order (a journal's plan is put in order before it runs).
    static func ordered(_ steps: [Step]) -> [Step]

    /// Steps that change what cannot be had back or what clients reach; the runner asks before them unless
    /// `--yes`.
    static func isDestructive(_ step: Step) -> Bool

    /// Why `step` may not run now, given where every step stands; nil when it may.
    static func refusal(for step: Step, in machine: ProcedureMachine<Self>) -> String?

    /// The steps a `reverted` entry of `step` makes stale: they become pending again (default: `step` alone).
    static func invalidated(byRevertOf step: Step, in plan: [Step]) -> [Step]

    /// The appliances a run touches, by inventory name: the runner locks every one of them.
    static func appliances(_ settings: Settings) -> [String]

    /// Reads the settings a journal holds; `formatVersion` is the journal format the run was written in, so a
    /// procedure can read what an older appliancectl wrote (default: JSON of `Settings`).
    static func settings(from json: Data, formatVersion: Int) throws -> Settings

    /// What the report shows of a step's detail (default: all of it).
    static func reportDetail(_ step: Step, _ detail: StepDetail) -> StepDetail
}

extension ProcedureRules {
    public static func ordered(_ steps: [Step]) -> [Step] { steps }

    public static func invalidated(byRevertOf step: Step, in plan: [Step]) -> [Step] { [step] }

    public static func settings(from json: Data, formatVersion: Int) throws -> Settings {
        try JSONDecoder().decode(Settings.self, from: json)
    }

    public static func reportDetail(_ step: Step, _ detail: StepDetail) -> StepDetail { detail }
}

/// What `reconcile` decided after looking at the real state of the boxes for a step that was begun (or failed)
/// before.
public enum Reconciliation: Sendable, Equatable {
    /// Not (fully) done: perform the step again from the start, which is safe because it was never half-done in
    /// a way that perform cannot take up.
    case redo
    /// Its effect is all there: journal it done with what was observed.
    case finished(StepDetail)
    /// Nothing to do any more (e.g. what it would change is gone): journal it done, saying why.
    case skip(reason: String)
}

/// A procedure with its live parts: per step a `perform` and a `reconcile`, and the snapshots the report shows.
///
/// The runner alone journals intent and outcome, resumes, asks, reports and locks; a procedure only acts.
///
/// Adding one (e.g. an upgrade of a failover pair) takes no change here or in `ProcedureRunner`: an actor that
/// conforms, with a step enum (cases may carry data: `.upgrade(box: "b")`, named `upgrade-b` in the journal and
/// in crash points), its settings, its rules as static members (tested on `ProcedureMachine` values alone), and
/// its `perform`/`reconcile`; then an entry in the application's list of procedures (appliancectl's is
/// `RunSession.sessionProcedures`), so `run`, `resume`, `abort` and `runs` know its kind.
public protocol Procedure: ProcedureRules, Actor {
    /// What the report keeps of one appliance, before and after.
    associatedtype Snapshot: Codable & Sendable
    /// The procedure's own lines of the report (e.g. the verification and the downtime), from the journal alone.
    associatedtype Summary: ReportSummary

    /// Does a step that never began. Throws with what to do when it cannot.
    func perform(_ step: Step, context: StepContext) async throws -> StepDetail

    /// Looks at the real state of the boxes for a step that was begun or failed before, and decides.
    func reconcile(_ step: Step, context: StepContext) async throws -> Reconciliation

    /// After a failure, a refusal or an unconfirmed step: puts back what must not stay as the run left it (e.g. a
    /// frozen box). Returns the entry to journal, or what the operator must do by hand.
    func recover(after failure: any Error, machine: ProcedureMachine<Self>) async -> Recovery<Step>

    /// `appliancectl abort RUN`: what to undo before the run ends for good; the lines say what was done.
    func abort(machine: ProcedureMachine<Self>) async throws -> [String]

    /// What a destructive step will do, for the question before it.
    func consequence(of step: Step) -> String

    /// The appliances as they are now; unreachable ones say why.
    func snapshots(machine: ProcedureMachine<Self>) async -> [Snapshot]

    /// What changed between the snapshots, one line each; nil when it cannot be told.
    static func difference(before: [Snapshot], after: [Snapshot]) -> [String]?

    /// The snapshots as Markdown, for the report.
    static func markdown(before: [Snapshot], after: [Snapshot]) -> String

    /// The procedure's part of the report, from the plan, the machine and the journal's entries.
    static func summary(machine: ProcedureMachine<Self>, entries: [JournalEntry<Step>]) -> Summary

    /// How the report and the snapshots write dates (default ISO 8601).
    static func jsonEncoder() -> JSONEncoder
    static func jsonDecoder() -> JSONDecoder
}

extension Procedure {
    public static func jsonEncoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }

    public static func jsonDecoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}

/// What `recover(after:)` did.
public enum Recovery<Step: ProcedureStep>: Sendable {
    /// Nothing needed putting back.
    case nothing
    /// Put back; the runner journals `step` as reverted with `detail`, so the steps it made stale run again.
    case reverted(Step, StepDetail)
    /// Could not be put back: what the operator must do by hand.
    case manual(String)
}

/// A procedure's own part of the report: encoded into the report's JSON next to the common fields, and lines for
/// the terminal and the Markdown report.
public protocol ReportSummary: Encodable, Sendable {
    /// Short lines for the terminal after a run (e.g. "Downtime: 3.1 s").
    var terminalLines: [String] { get }
    /// Lines of the Markdown report under the heading, before the steps.
    var headlineMarkdown: [String] { get }
    /// Sections of the Markdown report after the steps.
    var sectionsMarkdown: [String] { get }
}

/// A summary with nothing to add.
public struct NoSummary: ReportSummary {
    public init() {}
    public var terminalLines: [String] { [] }
    public var headlineMarkdown: [String] { [] }
    public var sectionsMarkdown: [String] { [] }
}
