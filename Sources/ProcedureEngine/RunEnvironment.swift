public import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// What a run reports as it goes, for spinners and progress bars on the terminal (with `--json` the report is
/// the one document printed).
public enum ProcedureEvent: Sendable {
    case stepStarted(name: String, title: String, resuming: Bool)
    case stepDone(name: String, StepDetail)
    case note(String)
    /// Bytes moved so far of a transfer named `label`; `total` when known.
    case bytes(label: String, done: Int64, total: Int64?)
    case transferFinished(label: String)
}

/// What a run needs from the world outside the appliances: where it keeps its files, how it asks and tells.
public struct RunEnvironment: Sendable {
    /// Where the run keeps its files (backups, staging, snapshots, report).
    public var runDirectory: URL
    /// Asks the operator before a destructive step; `--yes` answers true.
    public var confirm: @Sendable (String) async -> Bool
    public var events: @Sendable (ProcedureEvent) -> Void
    /// A named point where the process kills itself with SIGKILL: a test hook for crash recovery
    /// (`APPLIANCECTL_CRASH_AT`, e.g. `restore:intent`, `backup:acted`, `transfer:bytes=1000000`). Debug builds
    /// only: a release build has no such hook and ignores the variable.
    public var crashPoint: String?

    public init(
        runDirectory: URL,
        confirm: @escaping @Sendable (String) async -> Bool,
        events: @escaping @Sendable (ProcedureEvent) -> Void,
        crashPoint: String? = RunEnvironment.crashPointFromEnvironment
    ) {
        self.runDirectory = runDirectory
        self.confirm = confirm
        self.events = events
        self.crashPoint = crashPoint
    }

    /// `APPLIANCECTL_CRASH_AT` in a debug build; nil in a release build, which never reads it.
    public static var crashPointFromEnvironment: String? {
        #if DEBUG
            ProcessInfo.processInfo.environment["APPLIANCECTL_CRASH_AT"]
        #else
            nil
        #endif
    }

    /// Dies here if the crash point names this place (debug builds only).
    public func crash(at point: String) {
        #if DEBUG
            if crashPoint == point { kill(getpid(), SIGKILL) }
        #endif
    }

    /// A progress callback that also dies after `KIND:bytes=N` bytes of any transfer of this kind (debug builds).
    public func progress(_ label: String, kind: String, total: Int64?) -> @Sendable (Int64) -> Void {
        #if DEBUG
            let limit: Int64? =
                crashPoint.flatMap { point in
                    point.hasPrefix("\(kind):bytes=") ? Int64(point.dropFirst("\(kind):bytes=".count)) : nil
                }
        #else
            let limit: Int64? = nil
        #endif
        let events = events
        return { done in
            events(.bytes(label: label, done: done, total: total))
            if let limit, done >= limit { kill(getpid(), SIGKILL) }
        }
    }
}

/// What a step gets from the runner while it acts.
public struct StepContext: Sendable {
    public let runId: String
    public let environment: RunEnvironment
    /// Whether the step was begun before (a reconcile, or a redo after one).
    public let resuming: Bool
    let journalNote: @Sendable (StepDetail) throws -> Void

    public init(
        runId: String,
        environment: RunEnvironment,
        resuming: Bool,
        journalNote: @escaping @Sendable (StepDetail) throws -> Void
    ) {
        self.runId = runId
        self.environment = environment
        self.resuming = resuming
        self.journalNote = journalNote
    }

    /// Journals what the step is about to do (an intent with detail) before an action that a failure or resume
    /// must know of, e.g. "the old box let go of the site address".
    public func journal(_ detail: StepDetail) throws { try journalNote(detail) }

    public func event(_ event: ProcedureEvent) { environment.events(event) }

    public func crash(at point: String) { environment.crash(at: point) }
}
