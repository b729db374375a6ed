import ApplianceAPI
import ApplianceClient
import ApplianceInventory
import BackupFormat
public import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// What a run reports as it goes, for spinners, progress bars and `--json`.
public enum MigrationEvent: Sendable {
    case stepStarted(MigrationStep, resuming: Bool)
    case stepDone(MigrationStep, [String: String])
    case note(String)
    /// Bytes moved so far of a transfer named `label`; `total` when known.
    case bytes(label: String, done: Int64, total: Int64?)
    case transferFinished(label: String)
}

/// What the run needs from the world outside the two appliances.
public struct MigrationEnvironment: Sendable {
    /// Where the run keeps its backup file and transfer staging.
    public var runDirectory: URL
    /// Asks the operator before a destructive step; `--yes` answers true.
    public var confirm: @Sendable (String) async -> Bool
    public var events: @Sendable (MigrationEvent) -> Void
    /// Creates (or adopts) the new appliance when it is virtual; returns where it answers.
    public var installVirtual: (@Sendable () async throws -> BoxReference)?
    /// Records an appliance's new address or pin (inventory and pin store).
    public var recordPin: @Sendable (_ name: String, _ address: String, _ pin: String) throws -> Void
    /// A named point where the process kills itself with SIGKILL: a test hook for crash recovery
    /// (`APPLIANCECTL_CRASH_AT`, e.g. `restore:intent`, `backup:acted`, `transfer:bytes=1000000`). Debug builds
    /// only: a release build has no such hook and ignores the variable.
    public var crashPoint: String?

    public init(
        runDirectory: URL,
        confirm: @escaping @Sendable (String) async -> Bool,
        events: @escaping @Sendable (MigrationEvent) -> Void,
        installVirtual: (@Sendable () async throws -> BoxReference)?,
        recordPin: @escaping @Sendable (String, String, String) throws -> Void,
        crashPoint: String? = MigrationEnvironment.crashPointFromEnvironment
    ) {
        self.runDirectory = runDirectory
        self.confirm = confirm
        self.events = events
        self.installVirtual = installVirtual
        self.recordPin = recordPin
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
    func crash(at point: String) {
        #if DEBUG
            if crashPoint == point { kill(getpid(), SIGKILL) }
        #endif
    }

    /// A progress callback that also dies after `transfer:bytes=N` bytes of any transfer of this kind.
    func progress(_ label: String, kind: String, total: Int64?) -> @Sendable (Int64) -> Void {
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

/// Runs (or resumes) one migration: journal first, then act, then journal the outcome.
public actor MigrationRunner {
    public let record: RunRecord
    let journal: Journal
    let secrets: MigrationSecrets
    let environment: MigrationEnvironment
    var machine: MigrationMachine
    /// What done steps found, later ones winning.
    var facts: [String: String] = [:]
    var old: BoxClient
    var new: BoxClient?

    public init(
        record: RunRecord,
        journal: Journal,
        secrets: MigrationSecrets,
        environment: MigrationEnvironment,
        verifiedElsewhere: Bool = false
    ) throws {
        self.record = record
        self.journal = journal
        self.secrets = secrets
        self.environment = environment
        let entries = try journal.entries(record.id)
        machine = MigrationMachine(plan: record.plan, entries: entries, verifiedElsewhere: verifiedElsewhere)
        for entry in entries where entry.phase != .failed { facts.merge(entry.detail) { $1 } }
        let settings = record.settings
        guard let oldAddress = settings.old.address, let oldPin = settings.old.pin.flatMap(TLSPin.init) else {
            throw MigrationError(
                .preflight,
                "\(settings.old.name) has no recorded address and pin; run `appliancectl status ADDRESS` once to pin it"
            )
        }
        old = try BoxClient(
            name: settings.old.name,
            address: oldAddress,
            pin: TLSPin(facts["oldPin"] ?? "") ?? oldPin,
            passwords: [secrets.oldPassword]
        )
        if record.plan != [.decommission], let address = facts["newAddress"] ?? settings.new.address,
            let pin = TLSPin(facts["newPin"] ?? settings.new.pin ?? "")
        {
            new = try BoxClient(
                name: settings.new.name,
                address: address,
                pin: pin,
                passwords: [secrets.newPassword, secrets.oldPassword]
            )
            if let certificatePin = facts["certificatePin"].flatMap(TLSPin.init) {
                new?.acceptablePins = [certificatePin]
            }
        }
    }

    public var state: MigrationMachine { machine }

    /// Runs every remaining step. Throws at the first failure, with the failure journaled; a failure before the
    /// site moved also takes the old box out of its freeze, so it serves as before.
    public func run() async throws {
        do {
            try await runSteps()
        } catch {
            guard let manual = await thawAfterFailure(error) else { throw error }
            var wrapped = (error as? MigrationError) ?? MigrationError(.appliance, "\(error)")
            wrapped.message += "\nAlso: \(manual)"
            throw wrapped
        }
    }

    func runSteps() async throws {
        while true {
            let decision = machine.next()
            switch decision {
            case .finished:
                return
            case .refuse(let step, let reason):
                throw MigrationError(.refused, "\(step.rawValue) refused: \(reason)")
            case .perform(let step), .reconcile(let step):
                let resuming = decision == .reconcile(step)
                if step.isDestructive {
                    let question = "\(step.title) — \(destructiveDescription(step)). Go ahead?"
                    guard await environment.confirm(question) else {
                        throw MigrationError(
                            .declined,
                            "\(step.rawValue) not confirmed; nothing was changed. Run `appliancectl resume "
                                + "\(record.id)` (with --yes to skip the question) when ready"
                        )
                    }
                }
                environment.events(.stepStarted(step, resuming: resuming))
                try note(JournalEntry(runId: record.id, step: step, phase: .intent))
                environment.crash(at: "\(step.rawValue):intent")
                let detail: [String: String]
                do {
                    detail = try await perform(step, resuming: resuming)
                } catch {
                    try note(
                        JournalEntry(
                            runId: record.id,
                            step: step,
                            phase: .failed,
                            detail: ["error": "\(error)"]
                        )
                    )
                    throw error
                }
                environment.crash(at: "\(step.rawValue):acted")
                facts.merge(detail) { $1 }
                try note(JournalEntry(runId: record.id, step: step, phase: .done, detail: detail))
                environment.events(.stepDone(step, detail))
            }
        }
    }

    func note(_ entry: JournalEntry) throws {
        machine.apply(try journal.append(entry))
    }

    func destructiveDescription(_ step: MigrationStep) -> String {
        switch step {
        case .cutover:
            "clients of \(record.settings.cutover.siteAddress ?? "the site") will reach \(record.settings.new.name)"
        default:
            "\(record.settings.old.name) at \(old.address) loses all its data and powers off"
        }
    }

    /// Performs a step; while an appliance is busy (an interrupted restore or upload still winding down, 409 or
    /// 503) it waits and starts the step again, which is safe because every step checks the real state first.
    func perform(_ step: MigrationStep, resuming: Bool) async throws -> [String: String] {
        for attempt in 1... {
            do {
                return try await performOnce(step)
            } catch let error as ApplianceClientError where [409, 503].contains(error.apiStatus) && attempt < 60 {
                environment.events(.note("\(error.message) (waiting, attempt \(attempt))"))
                try await Task.sleep(for: .seconds(1))
            }
        }
        fatalError("unreachable")
    }

    func performOnce(_ step: MigrationStep) async throws -> [String: String] {
        switch step {
        case .preflight: try await preflight()
        case .install: try await install()
        case .freeze: try await freeze()
        case .backup: try await backup()
        case .certificate: try await moveCertificate()
        case .address: try await assignAddress()
        case .package: try await installPackage()
        case .restore: try await restore()
        case .transfer: try await transfer()
        case .verify: try await verify()
        case .cutover: try await cutover()
        case .decommission: try await decommission()
        }
    }

    /// The new appliance; it exists from step 1 on.
    func newBox() throws -> BoxClient {
        guard let new else {
            throw MigrationError(.appliance, "\(record.settings.new.name) has no address yet; step 1 has not run")
        }
        return new
    }

    func newSession() async throws -> ApplianceConnection {
        var box = try newBox()
        defer { new = box }
        return try await box.session()
    }

    func oldSession() async throws -> ApplianceConnection {
        var box = old
        defer { old = box }
        return try await box.session()
    }

    func fact(_ key: String) throws -> String {
        guard let value = facts[key] else {
            throw MigrationError(.journal, "the journal of run \(record.id) lacks \(key); start a new run")
        }
        return value
    }

    /// Checks `condition` up to `tries` times, `interval` apart; whether it held by the last check.
    func waitUntil(
        tries: Int,
        every interval: Duration,
        _ condition: () async throws -> Bool
    ) async throws -> Bool {
        for attempt in 1...tries {
            if try await condition() { return true }
            if attempt < tries { try await Task.sleep(for: interval) }
        }
        return false
    }
}
