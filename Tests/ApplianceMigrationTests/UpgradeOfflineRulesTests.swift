import ApplianceAPI
import Foundation
import Testing

@testable import ApplianceMigration
@testable import ProcedureEngine

/// The offline upgrade's pure parts: its journaled settings, its dry-run plan, the clock-skew refusal, the
/// versions read from a box's status, and the install tally both modes share. No I/O.
@Suite struct UpgradeOfflineRulesTests {
    static func settings() -> UpgradeSettings {
        var settings = UpgradeProcedureTests.settings()
        settings.repository = nil
        settings.offline = UpgradeOffline(repository: "https://packages.example.net/r", vendorKey: "/keys/vendor.pem")
        return settings
    }

    @Test func offlineSettingsReadBackAndOlderJournalsReadAsOnline() throws {
        let settings = Self.settings()
        let json = Data(try Journal.json(settings).utf8)
        #expect(try UpgradeProcedure.settings(from: json, formatVersion: JournalFormat.version) == settings)
        let online = Data(try Journal.json(UpgradeProcedureTests.settings()).utf8)
        #expect(!String(decoding: online, as: UTF8.self).contains("offline"), "written as before")
        let read = try UpgradeProcedure.settings(from: online, formatVersion: JournalFormat.version)
        #expect(read.offline == nil)
    }

    @Test func theDryRunSaysOfflineWhereFromAndThatTheUpdateSourceStays() {
        let lines = UpgradeProcedure.planLines(Self.settings()).joined(separator: "\n")
        #expect(lines.contains("offline: the box's download key (refused on clock skew)"), "\(lines)")
        #expect(lines.contains("fetched here from https://packages.example.net/r"), "\(lines)")
        #expect(lines.contains("verified with /keys/vendor.pem"), "\(lines)")
        #expect(lines.contains("the update source stays as it is"), "\(lines)")
        #expect(lines.contains("uploaded from the run directory (manual install)"), "\(lines)")
        #expect(!lines.contains("update source: "), "no online source line: \(lines)")
    }

    @Test(arguments: [(7200.0, "7200 s ahead of"), (-691_200.0, "691200 s behind")])
    func aClockSkewRefusalNamesTheSkewAndNTP(offset: Double, says: String) {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let message = BoxUpgrade.skewRefusal(box: "site-box", issuedAt: now + offset, now: now)
        #expect(message.contains("the clock of site-box is \(says)"), "\(message)")
        #expect(message.contains("clock skew \(Int(offset)) s"), "\(message)")
        #expect(message.contains("check the appliance time / NTP"), "\(message)")
        #expect(message.contains("nothing was changed"), "\(message)")
    }

    @Test func installedVersionsComeFromTheStatusWithAddOns() {
        let software = InstalledSoftware(baseVersion: "7.2.0", siteVersion: "24.1.0", addons: ["reports 1.2"])
        #expect(UpgradePlanning.versions(software) == ["base": "7.2.0", "site": "24.1.0", "reports": "1.2"])
    }

    @Test func theTallyStopsAtAFailedSelfTestAndListsTheUploads() throws {
        let entry = UpgradePlanEntry(name: "site", kind: "site", version: "24.2.0")
        func answer(passed: Bool) -> InstallResponse {
            InstallResponse(
                name: "site",
                kind: "site",
                version: "24.2.0",
                software: UpgradeProcedureTests.installed,
                siteHash: nil,
                installersGeneration: 2,
                message: "",
                selfTest: SelfTestReport(passed: passed, message: passed ? nil : "site check failed")
            )
        }
        var tally = InstallTally(uploaded: [])
        #expect(tally.declined(entry).message.contains("nothing was installed (give --accept-eula)"))
        tally.uploaded?.append("site_24.2.0.pkg")
        try tally.record(answer(passed: true), of: entry, box: "site-box")
        #expect(tally.detail["uploaded"] == "site_24.2.0.pkg")
        #expect(tally.detail["selfTests"] == "site 24.2.0: passed")
        #expect(InstallTally().detail["uploaded"] == nil, "online uploads nothing")
        #expect(throws: MigrationError.self) { try tally.record(answer(passed: false), of: entry, box: "site-box") }
    }
}
