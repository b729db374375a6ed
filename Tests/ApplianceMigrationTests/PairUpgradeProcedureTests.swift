import ApplianceAPI
import ApplianceInventory
import Foundation
import Testing

@testable import ApplianceMigration
@testable import ProcedureEngine

/// The failover pair upgrade's order, gates, reverts and pair checks, on values alone (no I/O).
@Suite struct PairUpgradeProcedureTests {
    typealias Machine = ProcedureMachine<PairUpgradeProcedure>

    static func reference(_ name: String) -> BoxReference {
        BoxReference(name: name, address: "127.0.0.1:1", pin: "sha256/x", isVirtual: false)
    }

    static func settings(_ mode: PairUpgradeMode, cutover: Cutover = .sharedIP(siteAddress: "127.0.0.9:8443"))
        -> PairUpgradeSettings
    {
        PairUpgradeSettings(
            mode: mode,
            a: reference("site-a"),
            b: reference("site-b"),
            aPasswordSecret: "A_PW",
            bPasswordSecret: "B_PW",
            backupPasswordSecret: "BACKUP_PW",
            includeHistory: true,
            target: "24.2.0",
            repository: "/srv/repo",
            rollback: .automatic,
            cutover: cutover
        )
    }

    static func machine(_ settings: PairUpgradeSettings, done: [PairUpgradeStep]) -> Machine {
        var machine = Machine(plan: PairUpgradeProcedure.plan(for: settings), settings: settings)
        for step in done { machine.apply(JournalEntry(runId: "r", step: step, phase: .done)) }
        return machine
    }

    @Test func syncUpgradesAFirstAndKeepsItPrimary() {
        let settings = Self.settings(.sync)
        #expect(
            PairUpgradeProcedure.plan(for: settings) == [
                .preflight, .backup, .syncNow, .breakPair, .upgrade(.a), .verify(.a), .upgrade(.b), .verify(.b),
                .reestablish,
            ]
        )
        #expect(settings.primaryAfter == .a)
        #expect(PairUpgradeProcedure.plan(for: settings).map(\.name).contains("upgrade-a"))
    }

    @Test func asyncUpgradesBFirstSwingsThenUpgradesA() {
        let settings = Self.settings(.async)
        #expect(
            PairUpgradeProcedure.plan(for: settings) == [
                .preflight, .backup, .syncNow, .breakPair, .upgrade(.b), .verify(.b), .swing, .upgrade(.a),
                .verify(.a), .reestablish,
            ]
        )
        #expect(settings.primaryAfter == .b)
    }

    @Test(arguments: PairUpgradeMode.allCases)
    func everyStepWaitsForTheOneBefore(mode: PairUpgradeMode) {
        let settings = Self.settings(mode)
        let plan = PairUpgradeProcedure.plan(for: settings)
        for (index, step) in plan.enumerated().dropFirst() {
            let before = Self.machine(settings, done: Array(plan.prefix(index - 1)))
            #expect(
                PairUpgradeProcedure.refusal(for: step, in: before) != nil,
                "\(step) ran without \(plan[index - 1])"
            )
            let ready = Self.machine(settings, done: Array(plan.prefix(index)))
            #expect(PairUpgradeProcedure.refusal(for: step, in: ready) == nil, "\(step)")
            #expect(ready.next() == .perform(step))
        }
        let noBackup = Self.machine(settings, done: [.preflight])
        #expect(PairUpgradeProcedure.refusal(for: .syncNow, in: noBackup)?.contains("no proven backup") == true)
    }

    @Test func theSwingWaitsForAVerifiedBAndAIsUpgradedOnlyOnceBServes() {
        let settings = Self.settings(.async)
        let upgradedB = Self.machine(settings, done: [.preflight, .backup, .syncNow, .breakPair, .upgrade(.b)])
        #expect(PairUpgradeProcedure.refusal(for: .swing, in: upgradedB)?.contains("only to a verified box") == true)
        let verifiedB = Self.machine(
            settings,
            done: [.preflight, .backup, .syncNow, .breakPair, .upgrade(.b), .verify(.b)]
        )
        #expect(PairUpgradeProcedure.refusal(for: .upgrade(.a), in: verifiedB)?.contains("once B serves") == true)
    }

    @Test func onlyTheBreakTheInstallsAndTheSwingAsk() {
        let plan = PairUpgradeProcedure.plan(for: Self.settings(.async))
        #expect(plan.filter(PairUpgradeProcedure.isDestructive) == [.breakPair, .upgrade(.b), .swing, .upgrade(.a)])
    }

    @Test func anAsyncRunWithoutASiteAddressAndABadTargetAreRefusedBeforeThePreflight() {
        let noSite = Self.machine(Self.settings(.async, cutover: .none), done: [])
        guard case .refuse(.preflight, let reason) = noSite.next() else {
            Issue.record("not refused: \(noSite.next())")
            return
        }
        #expect(reason.contains("site_address"))
        var bad = Self.settings(.sync)
        bad.target = "latest"
        #expect(PairUpgradeProcedure.refusal(for: .preflight, in: Self.machine(bad, done: [])) != nil)
        #expect(
            PairUpgradeProcedure.refusal(
                for: .preflight,
                in: Self.machine(Self.settings(.sync, cutover: .none), done: [])
            ) == nil
        )
    }

    @Test func aRevertedBreakAfterTheFirstBoxRolledBackRedoesEverythingAfterTheBackup() {
        let settings = Self.settings(.async)
        var machine = Self.machine(settings, done: [.preflight, .backup, .syncNow, .breakPair, .upgrade(.b)])
        machine.apply(JournalEntry(runId: "r", step: .verify(.b), phase: .failed, detail: ["error": "unhealthy"]))
        machine.apply(JournalEntry(runId: "r", step: .breakPair, phase: .reverted, detail: ["b.rolledBack": "yes"]))
        #expect(machine.isDone(.backup))
        for step in [PairUpgradeStep.syncNow, .breakPair, .upgrade(.b), .verify(.b), .swing] {
            #expect(machine.status[step] == .pending, "\(step)")
        }
        #expect(machine.summary == .failed)
        #expect(machine.next() == .perform(.syncNow))
    }

    @Test func aRolledBackSecondBoxIsInstalledAndVerifiedAgain() {
        let settings = Self.settings(.sync)
        var machine = Self.machine(
            settings,
            done: [.preflight, .backup, .syncNow, .breakPair, .upgrade(.a), .verify(.a), .upgrade(.b)]
        )
        machine.apply(JournalEntry(runId: "r", step: .upgrade(.b), phase: .reverted, detail: ["b.rolledBack": "yes"]))
        #expect(machine.status[.upgrade(.b)] == .pending)
        #expect(machine.status[.verify(.b)] == .pending)
        #expect(machine.isDone(.verify(.a)))
        #expect(machine.next() == .perform(.upgrade(.b)))
    }

    static let key = FailoverKeyStatus(isSet: true, fingerprint: "sha256:1")
    static let v1 = InstalledSoftware(baseVersion: "7.2.0", siteVersion: "24.1.0", addons: [])

    static func view(
        _ name: String,
        role: String,
        peer: String?,
        key: FailoverKeyStatus = key,
        software: InstalledSoftware = v1
    ) -> PairUpgradeRules.PairView {
        PairUpgradeRules.PairView(
            name: name,
            id: name + "-id",
            software: software,
            failover: FailoverStatus(role: role, peerApplianceId: peer, key: key)
        )
    }

    @Test func aPairWithOneKeyAPrimaryAndBItsBackupOnOneVersionPasses() {
        let a = Self.view("a", role: "primary", peer: "b-id")
        let b = Self.view("b", role: "backup", peer: "a-id")
        #expect(PairUpgradeRules.pairRefusal(a: a, b: b) == nil)
    }

    @Test func theBoxesMustBeAPairOnOneVersionWithOneKey() throws {
        let a = Self.view("a", role: "primary", peer: "b-id")
        let noKey = Self.view("b", role: "backup", peer: "a-id", key: FailoverKeyStatus(isSet: false, fingerprint: nil))
        let otherKey = Self.view(
            "b",
            role: "backup",
            peer: "a-id",
            key: FailoverKeyStatus(isSet: true, fingerprint: "sha256:2")
        )
        let newer = Self.view(
            "b",
            role: "backup",
            peer: "a-id",
            software: InstalledSoftware(baseVersion: "7.2.0", siteVersion: "24.2.0", addons: [])
        )
        let cases: [(PairUpgradeRules.PairView, PairUpgradeRules.PairView, String)] = [
            (a, noKey, "not a pair"),
            (a, otherKey, "do not share an inter-appliance key"),
            (a, newer, "runs different versions"),
            (Self.view("a", role: "standalone", peer: nil), Self.view("b", role: "standalone", peer: nil), "establish"),
            (Self.view("a", role: "backup", peer: "b-id"), Self.view("b", role: "primary", peer: "a-id"), "swap 'a'"),
        ]
        for (first, second, expected) in cases {
            let refusal = try #require(PairUpgradeRules.pairRefusal(a: first, b: second))
            #expect(refusal.contains(expected), "\(refusal)")
            #expect(refusal.hasSuffix("nothing was changed"))
        }
    }

    @Test func theReportAddsUpTheDowntimeOfEveryStep() {
        let settings = Self.settings(.async)
        let plan = PairUpgradeProcedure.plan(for: settings)
        let entries = plan.map { step in
            JournalEntry(
                runId: "r",
                step: step,
                phase: .done,
                detail: step == .swing ? ["downtimeSeconds": "1.25"] : ["downtimeSeconds": "0.25"]
            )
        }
        let machine = Machine(plan: plan, settings: settings, entries: entries)
        let summary = PairUpgradeSummary(machine: machine, entries: entries)
        #expect(abs(summary.downtimeSeconds - (1.25 + 0.25 * Double(plan.count - 1))) < 0.001)
        #expect(summary.terminalLines.contains { $0.hasPrefix("Downtime") })
    }

    @Test func theDryRunPlanShowsEveryGate() {
        let lines = PairUpgradeProcedure.planLines(Self.settings(.async))
        #expect(
            lines.filter { $0.contains("gate:") }.count == PairUpgradeProcedure.plan(for: Self.settings(.async)).count
        )
        #expect(lines.contains { $0.contains("Make B primary") && $0.contains("127.0.0.9:8443") })
    }
}
