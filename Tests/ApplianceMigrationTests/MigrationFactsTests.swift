import ApplianceClient
import Testing

@testable import ApplianceMigration

/// The journal's step details read into the migration's typed facts.
@Suite struct MigrationFactsTests {
    @Test func detailsBecomeTypedFieldsLaterOnesWinning() throws {
        let pin = "sha256:" + String(repeating: "ab", count: 32)
        var facts = MigrationFacts([
            "oldApplianceId": "A-1", "siteBytes": "1048576", "certificateId": "7", "certificatePin": pin,
            "comparison": "[]",
        ])
        #expect(facts.oldApplianceId == "A-1")
        #expect(facts.siteBytes == 1_048_576)
        #expect(facts.certificateId == 7)
        #expect(facts.certificatePin == TLSPin(pin))
        #expect(!facts.oldReset)
        facts.learn(["certificateId": "8", "oldReset": "yes", "siteBytes": "not a number"])
        #expect(facts.certificateId == 8)
        #expect(facts.oldReset)
        #expect(facts.siteBytes == 1_048_576, "a value that does not parse leaves the field as it was")
        #expect(facts.oldApplianceId == "A-1", "a detail without the key leaves the field as it was")
    }
}
