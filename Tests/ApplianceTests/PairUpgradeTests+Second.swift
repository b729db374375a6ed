import ApplianceAPI
import ApplianceClient
import Foundation
import SoftwarePackages
import Testing

extension PairUpgradeTests {
    /// The package's self-test passes on the box that installs it first and fails on the second (a marker file
    /// the first run leaves): the second box (sync B, async A) is rolled back automatically and proven while the
    /// first serves on the new version; once the cause is gone, `resume` upgrades it and sets the pair up again.
    @Test(.serialized, arguments: ["sync", "async"])
    func aFailingSecondBoxIsRolledBackAndTheResumedRunFinishes(mode: String) async throws {
        let marker = TestSupport.temporaryDirectory("second-box").appendingPathComponent("first-passed").path
        let scenario = try await Scenario(
            mode: mode,
            selfTest: .init(
                command: "if [ -e '\(marker)' ]; then echo 'second box check failed' >&2; exit 1; fi; touch '\(marker)'"
            )
        )
        let result = try await scenario.ctl(scenario.run)
        #expect(result.status == 1, "failed but rolled back: \(result.stderr)\n\(result.stdout)")
        let (first, second, failed) =
            mode == "sync" ? (scenario.a, scenario.b, "site-b") : (scenario.b, scenario.a, "site-a")
        #expect(result.stderr.contains("\(failed) was rolled back automatically"), "\(result.stderr)")
        #expect(try await scenario.status(first).software.siteVersion == "24.2.0")
        #expect(try await scenario.status(second).software == scenario.softwareBefore)
        try await second.waitUntilHealthy()
        #expect(try await scenario.runs().first?["state"] as? String == "failed")

        try FileManager.default.removeItem(atPath: marker)  // the cause is gone: the package passes once more
        let id = try #require(try await scenario.runs().first?["id"] as? String)
        let resumed = try await scenario.ctl(["resume", id, "--yes", "--accept-eula"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        try await scenario.expectPaired(primary: first, backup: second, site: "24.2.0")
    }
}
