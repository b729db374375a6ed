import Foundation
import SoftwarePackages
import Testing

@Suite("Update planning")
struct UpdatePlannerTests {
    private func summary(_ plan: [PlannedUpdate]) -> [String] {
        plan.map { update in
            let label = "\(update.manifest.name) \(update.manifest.version)"
            switch update.status {
            case .applicable: return label
            case .blocked(let waitingFor): return "\(label) blocked by \(waitingFor)"
            }
        }
    }

    @Test func newestApplicableVersionIsChosen() {
        let plan = UpdatePlanner.plan(
            installed: ["core": "2.0"],
            available: [
                manifest("core", "2.1"), manifest("core", "2.10"), manifest("core", "2.9"), manifest("core", "3"),
            ]
        )
        #expect(summary(plan) == ["core 3"])
        #expect(plan[0].message == nil)
    }

    @Test func downgradesAndEqualVersionsAreNeverOffered() {
        let plan = UpdatePlanner.plan(
            installed: ["core": "24.1", "site": "5.0", "reports": "1.0"],
            available: [
                manifest("core", "24.0"), manifest("core", "24.1.0"), manifest("core", "23.9"),
                manifest("site", "5"), manifest("reports", "1.0.1"),
            ]
        )
        #expect(summary(plan) == ["reports 1.0.1"])
        #expect(UpdatePlanner.plan(installed: ["core": "24.1"], available: [manifest("core", "24.1")]).isEmpty)
    }

    @Test func packagesThatAreNotInstalledOrUnparseableAreNotOffered() {
        let plan = UpdatePlanner.plan(
            installed: ["core": "2.0", "odd": "beta"],
            available: [manifest("extra", "1.0"), manifest("odd", "3.0"), manifest("core", "bad")]
        )
        #expect(plan.isEmpty)
    }

    @Test func requirementsComeFirst() {
        let plan = UpdatePlanner.plan(
            installed: InstalledSoftwareState(packages: [
                "core": "1.0", "addon": "1.0", "aaa-addon": "1.0", "site": "1",
            ]),
            available: [
                manifest("addon", "2.0", requires: [("core", "2.0")]),
                manifest("aaa-addon", "2.0", requires: [("addon", "2.0")]),
                manifest("core", "2.0", kind: .addon),
                manifest("site", "2", kind: .site),
            ]
        )
        // site has no requirements and sorts first by kind; core must precede addon, which precedes aaa-addon.
        #expect(summary(plan) == ["site 2", "core 2.0", "addon 2.0", "aaa-addon 2.0"])
    }

    @Test func requirementMetByInstalledVersionNeedsNoUpdate() {
        let plan = UpdatePlanner.plan(
            installed: ["core": "2.5", "addon": "1.0"],
            available: [manifest("addon", "2.0", requires: [("core", "2.0")])]
        )
        #expect(summary(plan) == ["addon 2.0"])
    }

    @Test func blockedWhenRequirementIsUnavailable() throws {
        let plan = UpdatePlanner.plan(
            installed: ["core": "1.0", "reports": "1.0"],
            available: [
                manifest("reports", "2.0", requires: [("core-addon", "2.0")]),
                manifest("core", "1.5"),
            ]
        )
        #expect(summary(plan) == ["core 1.5", "reports 2.0 blocked by core-addon 2.0"])
        let message = try #require(plan[1].message)
        #expect(message.contains("no available package provides it"))

        // The newest core is still too old for reports 3.0.
        let tooOld = UpdatePlanner.plan(
            installed: ["core": "1.0", "reports": "1.0"],
            available: [manifest("reports", "3.0", requires: [("core", "2.0")]), manifest("core", "1.5")]
        )
        #expect(summary(tooOld) == ["core 1.5", "reports 3.0 blocked by core 2.0"])
        #expect(tooOld[1].message?.contains("1.0 is installed") == true)
    }

    @Test func blockedUntilAnAvailablePackageIsInstalled() throws {
        let plan = UpdatePlanner.plan(
            installed: ["reports": "1.0"],
            available: [
                manifest("reports", "2.0", requires: [("core-addon", "2.0")]),
                manifest("core-addon", "2.1"),
            ]
        )
        #expect(plan.map(\.status) == [.blocked(waitingFor: "core-addon 2.0")])
        let message = try #require(plan[0].message)
        #expect(message.contains("install the available package core-addon 2.1 to enable the dependent one"))
    }

    @Test func blockedUpdatesBlockWhatNeedsThem() throws {
        let plan = UpdatePlanner.plan(
            installed: ["core": "1.0", "reports": "1.0", "charts": "1.0"],
            available: [
                manifest("core", "2.0", requires: [("firmware", "9")]),
                manifest("reports", "2.0", requires: [("core", "2.0")]),
                manifest("charts", "2.0", requires: [("reports", "2.0")]),
            ]
        )
        #expect(
            summary(plan) == [
                "charts 2.0 blocked by reports 2.0", "core 2.0 blocked by firmware 9",
                "reports 2.0 blocked by core 2.0",
            ]
        )
        #expect(plan[2].message?.contains("is blocked itself (waiting for firmware 9)") == true)
    }

    @Test func requirementCyclesAreBlocked() throws {
        let plan = UpdatePlanner.plan(
            installed: ["a": "1", "b": "1", "c": "1", "d": "1"],
            available: [
                manifest("a", "2", requires: [("b", "2")]),
                manifest("b", "2", requires: [("a", "2")]),
                manifest("c", "2", requires: [("a", "2")]),
                manifest("d", "2"),
            ]
        )
        #expect(summary(plan) == ["d 2", "a 2 blocked by b 2", "b 2 blocked by a 2", "c 2 blocked by a 2"])
        #expect(plan[1].message?.contains("requirement cycle (a 2 → b 2 → a 2)") == true)
        #expect(plan[3].message?.contains("whose update is part of a requirement cycle") == true)

        let selfCycle = UpdatePlanner.plan(
            installed: ["a": "1"],
            available: [manifest("a", "3", requires: [("a", "2")])]
        )
        #expect(selfCycle.map(\.status) == [.blocked(waitingFor: "a 2")])
        #expect(selfCycle[0].message?.contains("before it can be updated") == true)
        #expect(
            summary(UpdatePlanner.plan(installed: ["a": "2"], available: [manifest("a", "3", requires: [("a", "2")])]))
                == ["a 3"]
        )
    }

    @Test func checkInstallRefusesDowngradesAndRepeats() throws {
        let downgrade = expectPackageError(.downgrade) {
            try UpdatePlanner.checkInstall(manifest("base", "24.0"), installed: ["base": "24.1"])
        }
        #expect(downgrade?.message.hasPrefix("version 24.1 of base is installed; 24.0 would be a downgrade") == true)
        let same = expectPackageError(.downgrade) {
            try UpdatePlanner.checkInstall(manifest("base", "24.1.0"), installed: ["base": "24.1"])
        }
        #expect(same?.message.contains("is not an update") == true)
        try UpdatePlanner.checkInstall(manifest("base", "24.2"), installed: ["base": "24.1"])
        try UpdatePlanner.checkInstall(manifest("new-addon", "1.0"), installed: InstalledSoftwareState())
    }

    @Test func checkInstallRefusesMissingRequirements() throws {
        let addon = manifest("reports", "2.0", requires: [("core", "2.0")])
        let missing = expectPackageError(.missingRequirement) {
            try UpdatePlanner.checkInstall(addon, installed: ["reports": "1.0"])
        }
        #expect(missing?.message == "reports 2.0 requires core 2.0; install it first (core is not installed)")
        let old = expectPackageError(.missingRequirement) {
            try UpdatePlanner.checkInstall(addon, installed: ["core": "1.9.9"])
        }
        #expect(old?.message == "reports 2.0 requires core 2.0; update it first (1.9.9 is installed)")
        try UpdatePlanner.checkInstall(addon, installed: ["core": "2.0.0"])
        expectPackageError(.invalidArgument) {
            try UpdatePlanner.checkInstall(manifest("core", "two"), installed: [:])
        }
    }
}
