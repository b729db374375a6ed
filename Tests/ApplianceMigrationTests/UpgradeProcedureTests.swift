import ApplianceAPI
import ApplianceInventory
import Foundation
import Testing

@testable import ApplianceMigration
@testable import ProcedureEngine

/// The upgrade of one appliance as its own procedure: its gates, its plan decisions and its report, without I/O.
@Suite struct UpgradeProcedureTests {
    typealias Machine = ProcedureMachine<UpgradeProcedure>

    static let box = BoxReference(name: "box", address: "127.0.0.1:1", pin: "sha256/x", isVirtual: false)

    static func settings(target: String? = "24.2.0") -> UpgradeSettings {
        UpgradeSettings(
            box: box,
            passwordSecret: "BOX_PW",
            backupPasswordSecret: "BACKUP_PW",
            includeHistory: true,
            target: target,
            repository: "/srv/repo",
            rollback: .automatic
        )
    }

    static let installed = InstalledSoftware(baseVersion: "7.2.0", siteVersion: "24.1.0", addons: [])

    static func update(_ name: String, _ kind: String, _ version: String, blockedBy: String? = nil) -> UpdateEntry {
        UpdateEntry(
            name: name,
            kind: kind,
            version: version,
            description: name,
            eula: "EULA",
            status: blockedBy == nil ? "applicable" : "blocked",
            waitingFor: blockedBy,
            message: blockedBy.map { "\(name) \(version) needs \($0) or newer; add it to the repository" }
        )
    }

    static func updates(_ entries: [UpdateEntry]) -> UpdatesResponse {
        UpdatesResponse(source: "/srv/repo", installed: ["base": "7.2.0", "site": "24.1.0"], updates: entries)
    }

    static func refusal(_ result: Result<[UpgradePlanEntry], MigrationError>) -> MigrationError? {
        if case .failure(let error) = result { return error }
        return nil
    }

    @Test func eachStepWaitsForTheOneBeforeAndOnlyTheInstallAsks() {
        let settings = Self.settings()
        #expect(UpgradeProcedure.plan(for: settings) == [.preflight, .backup, .install, .verify])
        #expect(UpgradeStep.allCases.filter(UpgradeProcedure.isDestructive) == [.install])
        #expect(UpgradeProcedure.appliances(settings) == ["box"])
        var machine = Machine(plan: UpgradeProcedure.plan(for: settings), settings: settings)
        #expect(machine.next() == .perform(.preflight))
        #expect(UpgradeProcedure.refusal(for: .backup, in: machine) == "the pre-flight checks have not passed")
        #expect(UpgradeProcedure.refusal(for: .install, in: machine)?.contains("no proven backup") == true)
        #expect(UpgradeProcedure.refusal(for: .verify, in: machine) == "the packages have not been installed")
        machine.apply(JournalEntry(runId: "r", step: .preflight, phase: .done))
        #expect(machine.next() == .perform(.backup))
        machine.apply(JournalEntry(runId: "r", step: .backup, phase: .done))
        #expect(UpgradeProcedure.refusal(for: .install, in: machine) == nil)
        #expect(machine.next() == .perform(.install))
    }

    @Test func aTargetThatIsNoVersionIsRefusedBeforeThePreflight() {
        let settings = Self.settings(target: "latest")
        let machine = Machine(plan: UpgradeProcedure.plan(for: settings), settings: settings)
        guard case .refuse(.preflight, let reason) = machine.next() else {
            Issue.record("not refused: \(machine.next())")
            return
        }
        #expect(reason.contains("not a version number"))
    }

    @Test func aRolledBackInstallIsInstalledAndVerifiedAgainOnResume() {
        let settings = Self.settings()
        var machine = Machine(plan: UpgradeProcedure.plan(for: settings), settings: settings)
        for step in [UpgradeStep.preflight, .backup, .install] {
            machine.apply(JournalEntry(runId: "r", step: step, phase: .done))
        }
        machine.apply(JournalEntry(runId: "r", step: .verify, phase: .failed, detail: ["error": "unhealthy"]))
        machine.apply(JournalEntry(runId: "r", step: .install, phase: .reverted, detail: ["rolledBack": "yes"]))
        #expect(machine.status[.install] == .pending)
        #expect(machine.status[.verify] == .pending)
        #expect(machine.isDone(.backup))
        #expect(machine.summary == .failed)
        #expect(machine.next() == .perform(.install))
    }

    @Test(arguments: ["24.0.9", "23.4.0"])
    func aDowngradeIsRefusedWithWhatToDo(target: String) throws {
        let result = UpgradePlanning.plan(
            box: "box",
            target: target,
            installed: Self.installed,
            updates: Self.updates([Self.update("site", "site", "24.2.0")])
        )
        let error = try #require(Self.refusal(result))
        #expect(error.code == .refused)
        #expect(error.message.contains("a downgrade is refused and nothing was changed"), "\(error)")
        #expect(error.message.contains("give a newer target"))
        #expect(RunSession.isRefusal(error))
    }

    @Test func theVersionInstalledAlreadyIsNothingToDo() throws {
        let refusal = try #require(UpgradePlanning.downgradeRefusal(box: "box", target: "24.1.0", installed: "24.1.0"))
        #expect(refusal.contains("already runs site version 24.1.0"))
        #expect(UpgradePlanning.downgradeRefusal(box: "box", target: "24.2.0", installed: "24.1.0") == nil)
        #expect(UpgradePlanning.downgradeRefusal(box: "box", target: nil, installed: "24.1.0") == nil)
    }

    @Test func anUnknownTargetOrAMissingDependencyIsRefused() throws {
        let unknown = try #require(
            Self.refusal(
                UpgradePlanning.plan(
                    box: "box",
                    target: "24.5.0",
                    installed: Self.installed,
                    updates: Self.updates([Self.update("site", "site", "24.2.0")])
                )
            )
        )
        #expect(unknown.message.contains("site version 24.5.0 is unknown to /srv/repo"), "\(unknown)")
        #expect(unknown.message.contains("its newest site version is 24.2.0"), "\(unknown)")
        let none = try #require(
            Self.refusal(
                UpgradePlanning.plan(box: "box", target: "24.2.0", installed: Self.installed, updates: Self.updates([]))
            )
        )
        #expect(none.message.contains("it offers no newer site version"), "\(none)")
        let blocked = try #require(
            Self.refusal(
                UpgradePlanning.plan(
                    box: "box",
                    target: "24.2.0",
                    installed: Self.installed,
                    updates: Self.updates([Self.update("site", "site", "24.2.0", blockedBy: "base 8.0")])
                )
            )
        )
        #expect(blocked.message.contains("needs base 8.0 or newer"), "\(blocked)")
        #expect(blocked.message.contains("nothing was changed"))
    }

    @Test func dependenciesComeFirstAndAllTakesEveryApplicableUpdate() throws {
        let offered = Self.updates([
            Self.update("base", "base", "7.3.0"), Self.update("site", "site", "24.3.0"),
            Self.update("reports", "addon", "2.0.0", blockedBy: "core 3.0"),
        ])
        let targeted = try UpgradePlanning.plan(
            box: "box",
            target: "24.2.0",
            installed: Self.installed,
            updates: offered
        )
        .get()
        #expect(targeted.map(\.label) == ["base 7.3.0", "site 24.2.0"])
        let all = try UpgradePlanning.plan(box: "box", target: nil, installed: Self.installed, updates: offered).get()
        #expect(all.map(\.label) == ["base 7.3.0", "site 24.3.0"])
        let upToDate = try #require(
            Self.refusal(
                UpgradePlanning.plan(box: "box", target: nil, installed: Self.installed, updates: Self.updates([]))
            )
        )
        #expect(upToDate.message.contains("is up to date"))
    }

    @Test func theInstallIsFinishedWhenTheBoxHasEveryPlannedVersion() {
        let plan =
            [UpgradePlanEntry(name: "base", kind: "base", version: "7.3.0")] + [
                UpgradePlanEntry(name: "site", kind: "site", version: "24.2.0")
            ]
        #expect(UpgradePlanning.missing(plan, installed: ["base": "7.3.0", "site": "24.1.0"]).map(\.name) == ["site"])
        #expect(UpgradePlanning.missing(plan, installed: ["base": "7.3.0", "site": "24.2.0"]).isEmpty)
    }

    @Test func theDataComparisonLeavesOutOnlyTheSiteVersion() {
        let before = SiteSummary(
            siteVersion: "24.1.0",
            settingsCount: 3,
            settingsDigest: "s",
            userCount: 1,
            usersDigest: "u",
            historyRows: 10,
            historyDigest: "h",
            fileCount: 1,
            fileBytes: 5,
            filesDigest: "f",
            recordingCount: 0,
            recordingBytes: 0,
            recordingsDigest: "r"
        )
        var after = before
        after.siteVersion = "24.2.0"
        let same = UpgradePlanning.dataComparison(before: before, after: after)
        let allMatch = same.allSatisfy(\.matches)
        #expect(allMatch)
        #expect(!same.contains { $0.item == "site version" })
        after.historyRows = 9
        #expect(
            UpgradePlanning.dataComparison(before: before, after: after).filter { !$0.matches }.map(\.item) == [
                "history rows"
            ]
        )
    }

    @Test func aProvenRollbackEndsTheRunAsAFailureThatSaysItWasRolledBack() {
        let error = MigrationError(.rolledBack, "the upgrade of box failed: x")
        #expect(!RunSession.isRefusal(error))
        #expect(RunSession.advice(error, runId: "r") == "the upgrade of box failed: x")
        let failed = MigrationError(.upgrade, "box is not healthy\nFix the cause, then continue with resume")
        #expect(!RunSession.isRefusal(failed))
        #expect(RunSession.advice(failed, runId: "r") == failed.message, "says itself where the box stands")
    }

    @Test func settingsReadBackAsWritten() throws {
        let settings = Self.settings(target: nil)
        let json = Data(try Journal.json(settings).utf8)
        #expect(try UpgradeProcedure.settings(from: json, formatVersion: JournalFormat.version) == settings)
    }
}
