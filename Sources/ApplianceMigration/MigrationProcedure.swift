import ApplianceAPI
import ApplianceClient
import ApplianceInventory
public import Foundation
public import ProcedureEngine

/// What a migration needs from the world beyond the engine's environment: the hypervisor and the pin records.
public struct MigrationServices: Sendable {
    /// Creates (or adopts) the new appliance when it is virtual; returns where it answers.
    public var installVirtual: (@Sendable () async throws -> BoxReference)?
    /// Records an appliance's new address or pin (inventory and pin store).
    public var recordPin: @Sendable (_ name: String, _ address: String, _ pin: String) throws -> Void

    public init(
        installVirtual: (@Sendable () async throws -> BoxReference)?,
        recordPin: @escaping @Sendable (String, String, String) throws -> Void
    ) {
        self.installVirtual = installVirtual
        self.recordPin = recordPin
    }
}

/// Migrates a site from one appliance to another: the steps of `MigrationStep`, each performed or reconciled on
/// the real boxes. The engine's runner journals, asks, resumes and reports; this type only acts.
public actor MigrationProcedure: Procedure {
    public typealias Step = MigrationStep
    public typealias Settings = MigrationSettings

    let runId: String
    let settings: MigrationSettings
    let plan: [MigrationStep]
    let secrets: MigrationSecrets
    let services: MigrationServices
    let environment: RunEnvironment
    /// What done steps found, later ones winning.
    var facts: MigrationFacts
    var old: BoxClient
    var new: BoxClient?

    /// - Parameters:
    ///   - facts: what the run's journal holds so far (`ProcedureMachine.facts`).
    public init(
        record: RunRecord<MigrationProcedure>,
        facts: StepDetail,
        secrets: MigrationSecrets,
        services: MigrationServices,
        environment: RunEnvironment
    ) throws {
        let settings = record.settings
        runId = record.id
        self.settings = settings
        plan = record.plan
        self.secrets = secrets
        self.services = services
        self.environment = environment
        let known = MigrationFacts(facts)
        self.facts = known
        guard let oldAddress = settings.old.address, let oldPin = settings.old.pin.flatMap(TLSPin.init) else {
            throw MigrationError(
                .preflight,
                "\(settings.old.name) has no recorded address and pin; run `appliancectl status ADDRESS` once to pin it"
            )
        }
        old = try BoxClient(
            name: settings.old.name,
            address: oldAddress,
            pin: known.oldPin ?? oldPin,
            passwords: [secrets.oldPassword]
        )
        if let address = known.newAddress ?? settings.new.address,
            let pin = known.newPin ?? settings.new.pin.flatMap(TLSPin.init)
        {
            new = try BoxClient(
                name: settings.new.name,
                address: address,
                pin: pin,
                passwords: [secrets.newPassword, secrets.oldPassword]
            )
            if let certificatePin = known.certificatePin {
                new?.acceptablePins = [certificatePin]
            }
        }
    }

    // MARK: Procedure

    public func perform(_ step: MigrationStep, context: StepContext) async throws -> StepDetail {
        let detail = try await whileBusy { try await self.performOnce(step, context: context) }
        facts.learn(detail)
        return detail
    }

    /// A step begun before: where the boxes already show it done, it is finished from what they show; otherwise
    /// it is done again, which every step allows because it looks at the real state before each action.
    public func reconcile(_ step: MigrationStep, context: StepContext) async throws -> Reconciliation {
        let observed = try await whileBusy { try await self.observe(step) }
        guard let observed else { return .redo }
        facts.learn(observed)
        return .finished(observed)
    }

    public func consequence(of step: MigrationStep) -> String {
        switch step {
        case .cutover:
            "clients of \(settings.cutover.siteAddress ?? "the site") will reach \(settings.new.name)"
        default:
            "\(settings.old.name) at \(old.address) loses all its data and powers off"
        }
    }

    public func snapshots(machine: MigrationMachine) async -> [BoxSnapshot] {
        // Ask for the factory password first only where it is expected, so no snapshot costs a failed login.
        var oldBox = old
        var result = [await BoxSnapshot.take(&oldBox, factoryFirst: facts.oldReset)]
        if var box = new {
            result.append(await BoxSnapshot.take(&box, factoryFirst: !machine.isDone(.install)))
        } else {
            result.append(
                BoxSnapshot(name: settings.new.name, address: nil, note: "does not exist yet (step 1 makes it)")
            )
        }
        return result
    }

    // MARK: Steps

    func performOnce(_ step: MigrationStep, context: StepContext) async throws -> StepDetail {
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
        case .sync: try await sync(context: context)
        case .finalSync: try await finalSync()
        case .verify: try await verify()
        case .promote: try await promote()
        case .unlink: try await unlink()
        case .cutover: try await cutover(context: context)
        case .decommission: try await decommission(context: context)
        }
    }

    /// What the boxes show of a step begun before, when they show it complete; nil when it must be done again.
    func observe(_ step: MigrationStep) async throws -> StepDetail? {
        switch step {
        case .backup: try provenBackup().map(backupFacts)
        case .certificate: try await importedCertificate().map(certificateFacts)
        case .restore: try await restoredAlready() ? ["restored": "already"] : nil
        case .cutover: try await siteMovedAlready()
        case .sync: try await observedSync()
        case .promote: try await observedPromotion()
        case .unlink: try await observedUnlink()
        default: nil
        }
    }

    /// Runs `body`; while an appliance is busy (an interrupted restore or upload still winding down, 409 or 503) it
    /// waits and runs it again, which is safe because every step checks the real state first.
    func whileBusy<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        for attempt in 1... {
            do {
                return try await body()
            } catch let error as ApplianceClientError where [409, 503].contains(error.apiStatus) && attempt < 60 {
                environment.events(.note("\(error.message) (waiting, attempt \(attempt))"))
                try await Task.sleep(for: .seconds(1))
            }
        }
        fatalError("unreachable")
    }

    /// The new appliance; it exists from step 1 on.
    func newBox() throws -> BoxClient {
        guard let new else {
            throw MigrationError(.appliance, "\(settings.new.name) has no address yet; step 1 has not run")
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

    /// A fact an earlier step must have found; its absence means a journal this run cannot go on from.
    func required<T>(_ value: T?, _ name: String) throws -> T {
        guard let value else {
            throw MigrationError(.journal, "the journal of run \(runId) lacks \(name); start a new run")
        }
        return value
    }

    /// Checks `condition` up to `tries` times, `interval` apart; whether it held by the last check.
    func waitUntil(
        tries: Int,
        every interval: Duration,
        _ condition: () async throws -> Bool
    ) async throws -> Bool {
        try await SiteCutover.waitUntil(tries: tries, every: interval, condition)
    }

    static func timestamp(_ date: Date) -> String { APICoding.formatDate(date) }

    public static func jsonEncoder() -> JSONEncoder { APICoding.encoder() }

    public static func jsonDecoder() -> JSONDecoder { APICoding.decoder() }
}
