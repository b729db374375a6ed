import ApplianceAPI
import ApplianceClient
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

extension PairUpgradeTests {
    /// Every step of both plans, killed with SIGKILL once its intent is journaled and once it has acted (its
    /// outcome not journaled): "MODE STEP:POINT".
    static let killPoints: [String] = {
        let steps = [
            "sync": [
                "preflight", "backup", "sync", "break", "upgrade-a", "verify-a", "upgrade-b", "verify-b", "reestablish",
            ],
            "async": [
                "preflight", "backup", "sync", "break", "upgrade-b", "verify-b", "swing", "upgrade-a", "verify-a",
                "reestablish",
            ],
        ]
        return ["sync", "async"].flatMap { mode in
            steps[mode]!.flatMap { ["\(mode) \($0):intent", "\(mode) \($0):acted"] }
        }
    }()

    /// Killed at every step, then `appliancectl resume RUN`: each step's reconcile reads both boxes (the
    /// relationship, the versions, maintenance, the site address) and the run ends with both boxes on the
    /// target, healthy and paired with the right primary.
    @Test(.serialized, arguments: killPoints)
    func killedAtEveryStepTheResumedRunEndsHealthyAndPaired(point: String) async throws {
        let parts = point.split(separator: " ").map(String.init)
        let (mode, crash) = (parts[0], parts[1])
        let scenario = try await Scenario(mode: mode)
        let killed = try await scenario.ctl(scenario.run, crash: crash)
        #expect(killed.status == SIGKILL, "\(point): \(killed.stderr)")
        #expect(try await scenario.runs().first?["state"] as? String == "interrupted", "\(point)")
        let id = try #require(try await scenario.runs().first?["id"] as? String)
        let resumed = try await scenario.ctl(["resume", id, "--yes", "--accept-eula"])
        #expect(resumed.status == 0, "\(point): \(resumed.stderr)")
        #expect(try await scenario.runs().first?["state"] as? String == "finished", "\(point)")
        let (primary, backup) = mode == "sync" ? (scenario.a, scenario.b) : (scenario.b, scenario.a)
        try await scenario.expectPaired(primary: primary, backup: backup, site: "24.2.0")
        let frozen: MaintenanceStatus = try await scenario.a.admin().call(.maintenance)
        #expect(!frozen.enabled, "\(point): A is left in maintenance")
    }
}
