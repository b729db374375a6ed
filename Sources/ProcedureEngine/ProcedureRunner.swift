import Foundation

/// Runs (or resumes, or aborts) one journaled run of any procedure: journal first, then act, then journal the
/// outcome; asks before destructive steps; puts back what a failure left; writes the report.
public actor ProcedureRunner<P: Procedure> {
    nonisolated public let record: RunRecord<P>
    nonisolated public let journal: Journal
    nonisolated public let procedure: P
    nonisolated public let environment: RunEnvironment
    public private(set) var machine: ProcedureMachine<P>

    /// - Parameters:
    ///   - entries: the run's journal entries, as read to build `procedure` (read again when nil).
    public init(
        record: RunRecord<P>,
        journal: Journal,
        procedure: P,
        environment: RunEnvironment,
        entries: [JournalEntry<P.Step>]? = nil
    ) throws {
        self.record = record
        self.journal = journal
        self.procedure = procedure
        self.environment = environment
        machine = ProcedureMachine(record: record, entries: try entries ?? journal.entries(record))
    }

    /// Runs every remaining step. Throws at the first failure, with the failure journaled, after the procedure
    /// put back what must not stay as the failure left it.
    public func run() async throws {
        do {
            try await runSteps()
        } catch {
            switch await procedure.recover(after: error, machine: machine) {
            case .nothing:
                throw error
            case .reverted(let step, let found):
                var detail = found
                detail["error"] = detail["error"] ?? "\(error)"
                try note(JournalEntry(runId: record.id, step: step, phase: .reverted, detail: detail))
                throw error
            case .manual(let instructions):
                let code: ProcedureError.Code = (error as? ProcedureError)?.code ?? .failed
                throw ProcedureError(code, "\(error)\nAlso: \(instructions)", cause: error)
            }
        }
    }

    func runSteps() async throws {
        while true {
            let decision = machine.next()
            switch decision {
            case .finished:
                return
            case .refuse(let step, let reason):
                throw ProcedureError(.refused, "\(step.name) refused: \(reason)")
            case .perform(let step), .reconcile(let step):
                try await runStep(step, resuming: decision == .reconcile(step))
            }
        }
    }

    func runStep(_ step: P.Step, resuming: Bool) async throws {
        if P.isDestructive(step) {
            let question = "\(step.title) — \(await procedure.consequence(of: step)). Go ahead?"
            guard await environment.confirm(question) else {
                throw ProcedureError(
                    .declined,
                    "\(step.name) not confirmed; nothing was changed. Run `appliancectl resume \(record.id)` (with "
                        + "--yes to skip the question) when ready"
                )
            }
        }
        environment.events(.stepStarted(name: step.name, title: step.title, resuming: resuming))
        try note(JournalEntry(runId: record.id, step: step, phase: .intent))
        environment.crash(at: "\(step.name):intent")
        let context = stepContext(step, resuming: resuming)
        let detail: StepDetail
        do {
            detail = try await outcome(step, resuming: resuming, context: context)
        } catch {
            try note(JournalEntry(runId: record.id, step: step, phase: .failed, detail: ["error": "\(error)"]))
            throw error
        }
        environment.crash(at: "\(step.name):acted")
        try note(JournalEntry(runId: record.id, step: step, phase: .done, detail: detail))
        environment.events(.stepDone(name: step.name, detail))
    }

    /// A fresh step is performed; a step begun before is reconciled first: redone, finished or skipped.
    func outcome(_ step: P.Step, resuming: Bool, context: StepContext) async throws -> StepDetail {
        guard resuming else { return try await procedure.perform(step, context: context) }
        switch try await procedure.reconcile(step, context: context) {
        case .redo:
            return try await procedure.perform(step, context: context)
        case .finished(let observed):
            environment.events(.note("\(step.name) was already done before the interruption"))
            return observed
        case .skip(let reason):
            environment.events(.note("\(step.name) skipped: \(reason)"))
            return ["skipped": reason]
        }
    }

    func stepContext(_ step: P.Step, resuming: Bool) -> StepContext {
        let journal = journal
        let runId = record.id
        return StepContext(runId: runId, environment: environment, resuming: resuming) { detail in
            // An intent of a started step: the machine's state does not change, the facts are the procedure's.
            try journal.append(JournalEntry(runId: runId, step: step, phase: .intent, detail: detail))
        }
    }

    func note(_ entry: JournalEntry<P.Step>) throws {
        machine.apply(try journal.append(entry))
    }

    /// `appliancectl abort RUN`: ends the run for good, after the procedure put back what it must. Returns what
    /// was done.
    public func abort() async throws -> [String] {
        guard !machine.aborted else {
            throw ProcedureError(.refused, "run \(record.id) was already aborted; start a new run")
        }
        guard let step = machine.current else {
            throw ProcedureError(.refused, "run \(record.id) is finished; there is nothing to abort")
        }
        let done = try await procedure.abort(machine: machine)
        try note(
            JournalEntry(
                runId: record.id,
                step: step,
                phase: .aborted,
                detail: ["abortedAt": ISO8601DateFormatter().string(from: Date())]
            )
        )
        return done
    }

    // MARK: Report

    var beforeFile: URL { environment.runDirectory.appendingPathComponent("before.json") }

    /// The snapshots taken before the run's first step (taken now, and kept, on the first call).
    public func before() async throws -> [P.Snapshot] {
        if let data = try? Data(contentsOf: beforeFile),
            let saved = try? RunReport<P>.decoder.decode([P.Snapshot].self, from: data)
        {
            return saved
        }
        let taken = await procedure.snapshots(machine: machine)
        try FileManager.default.createDirectory(at: environment.runDirectory, withIntermediateDirectories: true)
        try RunReport<P>.encoder.encode(taken).write(to: beforeFile, options: .atomic)
        return taken
    }

    /// The report as the run stands: steps, the snapshots before (if taken) and now, their difference.
    public func report(failure: (any Error)?) async throws -> RunReport<P> {
        let before =
            (try? Data(contentsOf: beforeFile)).flatMap {
                try? RunReport<P>.decoder.decode([P.Snapshot].self, from: $0)
            }
            ?? []
        let after = await procedure.snapshots(machine: machine)
        return RunReport(
            record: record,
            machine: machine,
            entries: try journal.entries(record),
            error: failure.map { "\($0)" },
            before: before,
            after: after
        )
    }

    /// Runs every remaining step with the snapshots and the report around it: `before.json` at the first start,
    /// `report.json` and `report.md` at the end whatever happened. Returns the report and the failure.
    public func execute() async throws -> (report: RunReport<P>, failure: (any Error)?) {
        _ = try await before()
        var failure: (any Error)?
        do {
            try await run()
        } catch {
            failure = error
        }
        let report = try await report(failure: failure)
        try report.write(to: environment.runDirectory)
        return (report, failure)
    }
}
