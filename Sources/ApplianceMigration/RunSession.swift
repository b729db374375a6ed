import ApplianceAPI
import ApplianceClient
public import ApplianceInventory
public import ApplianceProvisioning
import ApplianceTemplates
public import Foundation
public import ProcedureEngine

/// Where a run stands after `run`, `resume` or `abort`, for the command to print: the report (one JSON
/// document), its files, the procedure's terminal lines, and the failure if any.
public struct RunOutcome: Sendable {
    public var runId: String
    public var state: RunState
    public var terminalLines: [String]
    public var json: Data
    public var reportFiles: (json: URL, markdown: URL)
    public var failure: (any Error & Sendable)?
}

/// Opens, runs, resumes and aborts the journaled runs of every procedure with the inventory, the secrets, the
/// pins and the hypervisor wired in. The commands only parse flags and print.
public struct RunSession: Sendable {
    public var state: StateDirectory
    /// The inventory given on the command line (`--inventory`); a resumed run falls back to its own.
    public var inventory: URL?
    public var secrets: SecretSource
    /// Asks the operator (destructive steps, EULAs); `--yes` answers.
    public var confirm: @Sendable (String) async -> Bool
    public var events: @Sendable (ProcedureEvent) -> Void
    /// A line for the operator outside any step ("Run X: a → b", first contacts).
    public var note: @Sendable (String) -> Void
    /// Makes the virtual targets of migrations.
    public var provisioner: InventoryProvisioner?

    /// The procedures this appliancectl runs, by journal kind: a new procedure is one more entry here.
    static let sessionProcedures: [any SessionProcedure.Type] = [
        MigrationProcedure.self, DecommissionProcedure.self, UpgradeProcedure.self, PairUpgradeProcedure.self,
    ]

    /// The procedures this appliancectl knows, by journal kind.
    public static var procedures: [any ProcedureRules.Type] { sessionProcedures.map { $0 as any ProcedureRules.Type } }

    public init(
        state: StateDirectory,
        inventory: URL?,
        secrets: SecretSource,
        confirm: @escaping @Sendable (String) async -> Bool,
        events: @escaping @Sendable (ProcedureEvent) -> Void,
        note: @escaping @Sendable (String) -> Void,
        provisioner: InventoryProvisioner?
    ) {
        self.state = state
        self.inventory = inventory
        self.secrets = secrets
        self.confirm = confirm
        self.events = events
        self.note = note
        self.provisioner = provisioner
    }

    public func journal() throws -> Journal { try Journal(url: state.journal) }

    var pins: PinStore { PinStore(directory: state.url) }

    /// `appliancectl runs`.
    public func runs() throws -> (lines: [RunLine], journal: URL) {
        let journal = try journal()
        return (try RunListing.lines(journal: journal, procedures: Self.procedures), journal.url)
    }

    // MARK: Resume and abort

    /// The procedure of a stored run's kind; an error naming the writer for a kind this version does not know.
    func procedure(of stored: StoredRun) throws -> any SessionProcedure.Type {
        guard let found = Self.sessionProcedures.first(where: { $0.kind == stored.kind }) else {
            throw RunListing.unknownKind(stored, known: Self.procedures)
        }
        return found
    }

    /// The session for a journaled run: its own inventory unless `--inventory` was given.
    func session(for stored: StoredRun) -> RunSession {
        var session = self
        if session.inventory == nil { session.inventory = URL(fileURLWithPath: stored.inventory) }
        return session
    }

    /// `appliancectl resume RUN`: continues where the journal says the run stopped.
    public func resume(_ id: String) async throws -> RunOutcome {
        let journal = try journal()
        let stored = try journal.storedRun(id)
        return try await procedure(of: stored).resume(stored, journal: journal, session: session(for: stored))
    }

    /// `appliancectl abort RUN`: ends the run for good, after its procedure put back what it must. Returns what
    /// was done and the report.
    public func abort(_ id: String) async throws -> (done: [String], outcome: RunOutcome) {
        let journal = try journal()
        let stored = try journal.storedRun(id)
        return try await procedure(of: stored).abort(stored, journal: journal, session: session(for: stored))
    }

    func abort<P: Procedure>(_ runner: ProcedureRunner<P>) async throws -> (done: [String], outcome: RunOutcome) {
        let done = try await runner.abort()
        let report = try await runner.report(failure: nil)
        return (done, try outcome(report, directory: runner.environment.runDirectory, failure: nil))
    }

    // MARK: Running

    func runEnvironment(_ runId: String) throws -> RunEnvironment {
        let directory = state.run(runId)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return RunEnvironment(runDirectory: directory, confirm: confirm, events: events)
    }

    /// The runner of a journaled run: its entries read, its environment made, `make` builds the procedure from
    /// the facts of the entries.
    func runner<P: Procedure>(
        _ record: RunRecord<P>,
        journal: Journal,
        _ make: (_ facts: StepDetail, _ environment: RunEnvironment) throws -> P
    ) throws -> ProcedureRunner<P> {
        let entries = try journal.entries(record)
        let environment = try runEnvironment(record.id)
        return try ProcedureRunner(
            record: record,
            journal: journal,
            procedure: try make(ProcedureMachine<P>.facts(entries), environment),
            environment: environment,
            entries: entries
        )
    }

    func migrationRunner(
        _ record: RunRecord<MigrationProcedure>,
        journal: Journal
    ) throws -> ProcedureRunner<MigrationProcedure> {
        try runner(record, journal: journal) { facts, environment in
            try MigrationProcedure(
                record: record,
                facts: facts,
                secrets: try record.settings.secrets(from: secrets),
                services: services(record.settings),
                environment: environment
            )
        }
    }

    func decommissionRunner(
        _ record: RunRecord<DecommissionProcedure>,
        journal: Journal,
        password: String
    ) throws -> ProcedureRunner<DecommissionProcedure> {
        try runner(record, journal: journal) { facts, environment in
            try DecommissionProcedure(record: record, facts: facts, password: password, environment: environment)
        }
    }

    /// Step 1 through the inventory's hypervisor; pins recorded in the pin store and the inventory.
    func services(_ settings: MigrationSettings) -> MigrationServices {
        let newName = settings.new.name
        // The live method's new box syncs from the old one: a virtual one on user networking needs a way there.
        let forwards: [GuestForward]
        if settings.isLive, let old = settings.old.address.flatMap(HostPort.init),
            let port = settings.oldAddressFromNew.flatMap(HostPort.init)?.port
        {
            forwards = [GuestForward(guestPort: port, targetHost: old.host, targetPort: old.port)]
        } else {
            forwards = []
        }
        let provisioner = provisioner
        let inventory = inventory ?? URL(fileURLWithPath: "inventory.yml")
        let secrets = secrets
        let pins = pins
        var installVirtual: (@Sendable () async throws -> BoxReference)?
        if let provisioner {
            installVirtual = {
                let (result, _) = try await provisioner.provision(
                    name: newName,
                    inventoryFile: inventory,
                    secrets: secrets,
                    lockHeld: true,
                    guestForwards: forwards
                )
                return BoxReference(name: newName, address: result.address, pin: result.pin, isVirtual: true)
            }
        }
        return MigrationServices(
            installVirtual: installVirtual,
            recordPin: { name, address, pin in
                if let parsed = TLSPin(pin) { try pins.record(parsed, for: address) }
                _ = try Inventory.record(appliance: name, address: nil, id: nil, pin: pin, in: inventory)
            }
        )
    }

    /// Runs the remaining steps and writes the report, whatever happened.
    func execute<P: SessionProcedure>(_ runner: ProcedureRunner<P>) async throws -> RunOutcome {
        let (report, failure) = try await runner.execute()
        var explained: (any Error)?
        if let failure { explained = await runner.procedure.explain(failure, runId: report.runId) }
        return try outcome(report, directory: runner.environment.runDirectory, failure: explained)
    }

    func outcome<P: Procedure>(
        _ report: RunReport<P>,
        directory: URL,
        failure: (any Error)?
    ) throws -> RunOutcome {
        let files = try report.write(to: directory)
        return RunOutcome(
            runId: report.runId,
            state: report.state,
            terminalLines: report.summary.terminalLines,
            json: try report.json(),
            reportFiles: files,
            failure: failure
        )
    }

    /// The failure with what to do next: resume where resuming can help, abort otherwise.
    public static func advice(_ failure: any Error, runId: String) -> String {
        if let error = failure as? ProcedureError, [.refused, .declined].contains(error.code) {
            return "\(failure)"  // these say themselves what to do
        }
        if let error = failure as? MigrationError,
            [.refused, .declined, .verification, .upgrade, .rolledBack].contains(error.code)
        {
            return "\(failure)"
        }
        return "\(failure)\nFix the cause, then continue with `appliancectl resume \(runId)`, or end the run with "
            + "`appliancectl abort \(runId)` (the old appliance serves as before)"
    }

    /// Whether an error is a refusal by a safety rule (nothing was changed) rather than a failure.
    public static func isRefusal(_ error: any Error) -> Bool {
        if let error = error as? ProcedureError {
            if [.refused, .declined].contains(error.code) { return true }
            return error.cause.map(isRefusal) ?? false
        }
        if let error = error as? MigrationError { return [.refused, .declined, .preflight].contains(error.code) }
        return false
    }
}
