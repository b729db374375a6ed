import ApplianceAPI
import ApplianceClient
import ApplianceInventory
public import Foundation
public import ProcedureEngine

/// Upgrades both boxes of a failover pair on the one procedure engine, by the manual's synchronous method (A
/// first, A stays primary) or its asynchronous one (B first, B takes over the site). Each box's pre-flight,
/// backup, install, verification and rollback are a `BoxUpgrade`; this procedure adds the pair around them.
public actor PairUpgradeProcedure: Procedure {
    public typealias Step = PairUpgradeStep
    public typealias Settings = PairUpgradeSettings
    public typealias Machine = ProcedureMachine<PairUpgradeProcedure>

    let settings: PairUpgradeSettings
    let environment: RunEnvironment
    let runId: String
    let units: [PairBox: BoxUpgrade]
    var boxes: [PairBox: BoxClient]
    var facts: PairFacts
    /// Watches the site address while this process runs; each step journals the outages that ended in it.
    let probe: SiteProbe?
    /// The pair was set up again as it was after the first box was rolled back (for the closing message).
    var restoredLine: String?

    public init(
        record: RunRecord<PairUpgradeProcedure>,
        facts: StepDetail,
        passwords: [PairBox: String],
        backupPassword: String,
        environment: RunEnvironment
    ) throws {
        settings = record.settings
        runId = record.id
        self.environment = environment
        self.facts = PairFacts(facts)
        var boxes: [PairBox: BoxClient] = [:]
        var units: [PairBox: BoxUpgrade] = [:]
        let primaryBackup = environment.runDirectory.appendingPathComponent("pre-upgrade-a.backup")
        for box in PairBox.allCases {
            let client = try BoxClient(reference: record.settings.reference(box), password: passwords[box] ?? "")
            boxes[box] = client
            units[box] = try BoxUpgrade(
                box: client,
                options: record.settings.options,
                facts: facts,
                prefix: "\(box.rawValue).",
                backupPassword: backupPassword,
                backupFile: primaryBackup,  // B holds A's site: A's backup is the one to restore on either
                environment: environment
            )
        }
        self.boxes = boxes
        self.units = units
        probe = record.settings.siteAddress.flatMap(HostPort.init).map { SiteProbe(site: $0) }
    }

    // MARK: Rules

    public static let kind = RunKind(rawValue: "upgrade-failover")

    public static func plan(for settings: PairUpgradeSettings) -> [PairUpgradeStep] {
        PairUpgradeRules.plan(for: settings)
    }

    public static func isDestructive(_ step: PairUpgradeStep) -> Bool { PairUpgradeRules.isDestructive(step) }

    public static func refusal(for step: PairUpgradeStep, in machine: Machine) -> String? {
        PairUpgradeRules.refusal(for: step, in: machine)
    }

    public static func invalidated(
        byRevertOf step: PairUpgradeStep,
        in plan: [PairUpgradeStep]
    ) -> [PairUpgradeStep] {
        PairUpgradeRules.invalidated(byRevertOf: step, in: plan)
    }

    public static func appliances(_ settings: PairUpgradeSettings) -> [String] { [settings.a.name, settings.b.name] }

    // MARK: The boxes

    func unit(_ box: PairBox) -> BoxUpgrade { units[box]! }

    func name(_ box: PairBox) -> String { settings.reference(box).name }

    func session(_ box: PairBox) async throws -> ApplianceConnection {
        var current = boxes[box]!
        defer { boxes[box] = current }
        return try await current.session()
    }

    func connection(_ box: PairBox) async throws -> ApplianceConnection {
        var current = boxes[box]!
        defer { boxes[box] = current }
        return try await current.connection()
    }

    func status(_ box: PairBox) async throws -> FailoverStatus { try await session(box).call(.failoverStatus) }

    public func abort(machine: Machine) async throws -> [String] {
        var lines: [String] = []
        for box in PairBox.allCases where machine.status[.upgrade(box)] != .pending {
            lines.append(
                "\(name(box)) may run the new software (see the report); `appliancectl updates rollback "
                    + "\(boxes[box]!.address)` returns it one step"
            )
        }
        if machine.isDone(.breakPair) && !machine.isDone(.reestablish) {
            lines.append(
                "the pair is not established again: `appliancectl failover establish` on the primary once both "
                    + "run the same versions"
            )
        }
        return lines.isEmpty ? ["\(settings.a.name) and \(settings.b.name) are left as they were"] : lines
    }

    public func consequence(of step: PairUpgradeStep) -> String {
        switch step {
        case .breakPair:
            "\(settings.a.name) and \(settings.b.name) stop syncing until the run establishes the pair again"
        case .upgrade(let box):
            "\(name(box)) installs \(facts.planText ?? settings.targetText); every user of it is logged out"
                + (box == .a && settings.mode == .sync ? ", and the site is down until A is verified" : "")
        case .swing:
            "\(settings.a.name) is frozen (no site writes) and \(settings.cutover.siteAddress ?? "the site") moves "
                + "to \(settings.b.name)"
        default: step.title
        }
    }

    public func snapshots(machine: Machine) async -> [BoxSnapshot] {
        var result: [BoxSnapshot] = []
        for box in PairBox.allCases { result.append(await unit(box).snapshot()) }
        return result
    }

    // MARK: Report

    public static func summary(machine: Machine, entries: [JournalEntry<PairUpgradeStep>]) -> PairUpgradeSummary {
        PairUpgradeSummary(machine: machine, entries: entries)
    }

    /// Each box's changes (software, site data), named by box.
    public static func difference(before: [BoxSnapshot], after: [BoxSnapshot]) -> [String]? {
        var lines: [String] = []
        for was in before {
            guard let now = after.first(where: { $0.name == was.name }),
                let changed = UpgradeProcedure.difference(before: [was], after: [now])
            else { return nil }
            lines += changed.map { "\(was.name): \($0)" }
        }
        return lines
    }

    public static func markdown(before: [BoxSnapshot], after: [BoxSnapshot]) -> String {
        BoxSnapshot.markdownSection(before: before, after: after)
    }

    public static func jsonEncoder() -> JSONEncoder { APICoding.encoder() }

    public static func jsonDecoder() -> JSONDecoder { APICoding.decoder() }
}

/// What the pair's own steps found, read from the journal.
struct PairFacts: Sendable {
    var aId: String?
    var bId: String?
    /// How A reaches B, and B reaches A, as their relationship had it.
    var aReachesB: String?
    var bReachesA: String?
    var intervalSeconds: Int?
    var planText: String?
    /// The site address A let go of at the swing.
    var releasedAddressId: String?

    init(_ detail: StepDetail) {
        aId = detail["a.applianceId"]
        bId = detail["b.applianceId"]
        aReachesB = detail["aReachesB"]
        bReachesA = detail["bReachesA"]
        intervalSeconds = detail["intervalSeconds"].flatMap { Int($0) }
        planText = detail["a.planText"]
        releasedAddressId = detail["releasedAddressId"]
    }

    func required<T>(_ value: T?, _ key: String) throws -> T {
        guard let value else {
            throw MigrationError(
                .journal,
                "the journal has no '\(key)' for this pair upgrade; abort the run (`appliancectl abort RUN`) and "
                    + "start anew"
            )
        }
        return value
    }
}
