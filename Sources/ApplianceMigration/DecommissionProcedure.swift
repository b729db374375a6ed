import ApplianceAPI
import ApplianceClient
import ApplianceInventory
public import Foundation
public import ProcedureEngine

/// The steps of a decommission (P6) of an appliance that was migrated or backed up before.
public enum DecommissionStep: String, ProcedureStep, CaseIterable {
    /// Log in and read the appliance's id and hostname; changes nothing.
    case identify
    /// Factory reset, then power off.
    case decommission

    public var name: String { rawValue }

    public var title: String {
        switch self {
        case .identify: "Identify the appliance (id, hostname); nothing changes"
        case .decommission: "Decommission: factory reset, then shut down the appliance (P6)"
        }
    }
}

/// What a decommission run was asked to do.
public struct DecommissionSettings: Codable, Sendable, Equatable {
    public var appliance: BoxReference
    /// The name of the admin password's secret, never its value.
    public var passwordSecret: String
    /// What allows the reset: an earlier verified migration or backup of the appliance, or the operator's
    /// `--force --confirm-name`. Nil: nothing does, and the reset is refused.
    public var evidence: String?

    public init(appliance: BoxReference, passwordSecret: String, evidence: String?) {
        self.appliance = appliance
        self.passwordSecret = passwordSecret
        self.evidence = evidence
    }

    /// Journal format 1 kept a decommission as a migration with old == new, begun only once the evidence was
    /// checked (or forced).
    struct FormatOne: Decodable {
        var old: BoxReference
        var oldPasswordSecret: String
    }
}

/// Factory-resets and shuts down one appliance that holds nothing that is not elsewhere (P6): its own small
/// procedure on the engine, sharing the reset with the migration's last step.
public actor DecommissionProcedure: Procedure {
    public typealias Step = DecommissionStep
    public typealias Settings = DecommissionSettings
    public typealias Machine = ProcedureMachine<DecommissionProcedure>

    let settings: DecommissionSettings
    let environment: RunEnvironment
    /// The appliance was factory-reset (journaled as `oldReset`, as the migration's decommission does).
    var reset: Bool
    /// Its hostname, as `identify` read it; the reset is confirmed with it.
    var hostname: String?
    var box: BoxClient

    public init(
        record: RunRecord<DecommissionProcedure>,
        facts: StepDetail,
        password: String,
        environment: RunEnvironment
    ) throws {
        settings = record.settings
        self.environment = environment
        reset = facts["oldReset"] == "yes"
        hostname = facts["oldHostname"]
        let appliance = record.settings.appliance
        guard let address = appliance.address, let pin = appliance.pin.flatMap(TLSPin.init) else {
            throw MigrationError(
                .preflight,
                "\(appliance.name) has no recorded address and pin; run `appliancectl status ADDRESS` once to pin it"
            )
        }
        box = try BoxClient(name: appliance.name, address: address, pin: pin, passwords: [password])
    }

    // MARK: Rules

    public static let kind = RunKind(rawValue: "decommission")

    public static func plan(for settings: DecommissionSettings) -> [DecommissionStep] { DecommissionStep.allCases }

    public static func isDestructive(_ step: DecommissionStep) -> Bool { step == .decommission }

    public static func refusal(for step: DecommissionStep, in machine: Machine) -> String? {
        guard step == .decommission else { return nil }
        guard machine.settings.evidence != nil else {
            return "no verified migration or verified backup of this appliance exists"
        }
        if machine.plan.contains(.identify) && !machine.isDone(.identify) {
            return "the appliance has not been identified"
        }
        return nil
    }

    public static func appliances(_ settings: DecommissionSettings) -> [String] { [settings.appliance.name] }

    public static func settings(from json: Data, formatVersion: Int) throws -> DecommissionSettings {
        guard formatVersion == 1 else { return try JSONDecoder().decode(DecommissionSettings.self, from: json) }
        let old = try JSONDecoder().decode(DecommissionSettings.FormatOne.self, from: json)
        return DecommissionSettings(
            appliance: old.old,
            passwordSecret: old.oldPasswordSecret,
            evidence: "checked when the run began (journal format 1)"
        )
    }

    // MARK: Steps

    public func perform(_ step: DecommissionStep, context: StepContext) async throws -> StepDetail {
        switch step {
        case .identify:
            let status: StatusResponse = try await session().call(.status)
            let detail = ["oldApplianceId": status.applianceId, "oldHostname": status.hostname]
            hostname = status.hostname
            return detail
        case .decommission:
            var decommissioner = Decommissioner(
                box: box,
                resetDone: reset,
                hostname: hostname
            )
            defer {
                box = decommissioner.box
                if decommissioner.resetDone { reset = true }
            }
            return try await decommissioner.run(context: context)
        }
    }

    /// Identifying changes nothing, and the reset looks at the box (its key, its password) before acting: both
    /// are done again.
    public func reconcile(_ step: DecommissionStep, context: StepContext) async throws -> Reconciliation {
        .redo
    }

    public func recover(after failure: any Error, machine: Machine) async -> Recovery<DecommissionStep> {
        .nothing
    }

    public func abort(machine: Machine) async throws -> [String] {
        [
            machine.status[.decommission] == .pending
                ? "\(box.name) is left as it was"
                : "\(box.name) may have been reset already (see the report)"
        ]
    }

    public func consequence(of step: DecommissionStep) -> String {
        "\(box.name) at \(box.address) loses all its data and powers off"
    }

    public func snapshots(machine: Machine) async -> [BoxSnapshot] {
        var current = box
        let snapshot = await BoxSnapshot.take(&current, factoryFirst: reset)
        box = current
        return [snapshot]
    }

    func session() async throws -> ApplianceConnection {
        var current = box
        defer { box = current }
        return try await current.session()
    }

    // MARK: Report

    public static func summary(machine: Machine, entries: [JournalEntry<DecommissionStep>]) -> NoSummary {
        NoSummary()
    }

    public static func difference(before: [BoxSnapshot], after: [BoxSnapshot]) -> [String]? {
        guard let was = before.first, let now = after.first, was.reachable else { return nil }
        guard now.reachable else { return ["\(now.name): no longer answers (shut down)"] }
        guard let site = now.site, let old = was.site else { return ["\(now.name): \(now.note ?? "reset")"] }
        return ComparisonItem.compare(old, site).filter { !$0.matches }.map { "\($0.item): \($0.old) → \($0.new)" }
    }

    public static func markdown(before: [BoxSnapshot], after: [BoxSnapshot]) -> String {
        BoxSnapshot.markdownSection(before: before, after: after)
    }

    public static func jsonEncoder() -> JSONEncoder { APICoding.encoder() }

    public static func jsonDecoder() -> JSONDecoder { APICoding.decoder() }
}
