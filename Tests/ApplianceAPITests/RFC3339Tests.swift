import ApplianceAPI
import Foundation
import Testing

/// Dates in request bodies are RFC 3339 date-times, as docs/openapi.yaml says: nothing more lenient.
@Suite struct RFC3339Tests {
    @Test(arguments: [
        ("1970-01-01T00:00:00Z", 0.0),
        ("2024-02-29T12:30:15.250Z", 1_709_209_815.25),
        ("2024-02-29t12:30:15.25z", 1_709_209_815.25),
        ("2024-03-01T01:30:15+13:00", 1_709_209_815.0),
        ("1937-01-01T12:00:27.87+00:20", -1_041_337_172.13),
        ("0056-10-15T07:49:22Z", -60_375_082_238.0),
        ("2016-12-31T23:59:60Z", 1_483_228_799.0),
    ])
    func acceptsDateTimes(text: String, seconds: Double) throws {
        let date = try #require(APICoding.parseDate(text), "\(text)")
        #expect(abs(date.timeIntervalSince1970 - seconds) < 0.001, "\(text)")
    }

    @Test(arguments: [
        "2024-01-01T12:99:00Z", "2024-13-01T00:00:00Z", "2023-02-29T00:00:00Z", "1900-02-29T00:00:00Z",
        "2024-01-01T24:00:00Z", "2024-01-01T00:00:00", "2024-01-01 00:00:00Z", "2024-01-01T00:00:00.Z",
        "2024-01-01T00:00:00+2400", "2024-01-01T00:00:00+24:00", "12024-01-01T00:00:00Z", "",
        "2024-01-01T00:00:00Zjunk",
    ])
    func refusesEverythingElse(text: String) {
        #expect(APICoding.parseDate(text) == nil, "\(text)")
    }

    @Test func whatTheApplianceWritesItReads() throws {
        let date = Date(timeIntervalSince1970: 1_764_662_400.125)
        let parsed = try #require(APICoding.parseDate(APICoding.formatDate(date)))
        #expect(abs(parsed.timeIntervalSince(date)) < 0.001)
    }

    /// A date written, read and written again is the same text: a sync hop keeps a file's time exactly.
    @Test func writingWhatWasReadChangesNothing() throws {
        var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
        for _ in 0..<10_000 {
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let date = Date(timeIntervalSince1970: 1_700_000_000 + Double(seed >> 40) / 1000 + Double(seed % 997) / 1e6)
            let text = APICoding.formatDate(date)
            let parsed = try #require(APICoding.parseDate(text))
            #expect(APICoding.formatDate(parsed) == text)
            #expect(abs(parsed.timeIntervalSince(date)) <= 0.0005 + 1e-6, "\(date.timeIntervalSince1970) → \(text)")
        }
    }
}
