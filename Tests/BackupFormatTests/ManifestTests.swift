import BackupFormat
import Foundation
import Testing

@Suite("Manifest and versions")
struct ManifestTests {
    static let manifest = BackupManifest(
        createdAt: Date(timeIntervalSince1970: 1_700_000_000.25),
        applianceId: "a1b2c3",
        hostname: "appliance-01",
        baseVersion: "24.3.1",
        siteVersion: "7",
        includesHistory: true,
        encrypted: true,
        counts: ["devices": 12, "users": 3],
        members: [
            BackupManifest.Member(name: "db/appliance.sqlite", size: 4096, sha256: String(repeating: "0", count: 64))
        ]
    )

    @Test func jsonRoundTrip() throws {
        let bytes = try Self.manifest.jsonBytes()
        #expect(try BackupManifest.decode(jsonBytes: bytes) == Self.manifest)
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.contains("\"createdAt\" : \"2023-11-14T22:13:20.250Z\""), "\(text)")
        #expect(text.contains("\"formatVersion\" : 1"))
        // Plain JSONEncoder/JSONDecoder (any date strategy) produce and accept the same representation.
        let plain = try JSONDecoder().decode(BackupManifest.self, from: JSONEncoder().encode(Self.manifest))
        #expect(plain == Self.manifest)
    }

    @Test func acceptsDatesWithoutFractionalSeconds() throws {
        var json = String(decoding: try Self.manifest.jsonBytes(), as: UTF8.self)
        json = json.replacingOccurrences(of: "2023-11-14T22:13:20.250Z", with: "2023-11-14T22:13:20Z")
        let decoded = try BackupManifest.decode(jsonBytes: Array(json.utf8))
        #expect(decoded.createdAt == Date(timeIntervalSince1970: 1_700_000_000))
    }

    @Test func rejectsNonManifests() throws {
        #expect(backupErrorCode { _ = try BackupManifest.decode(jsonBytes: Array("not json".utf8)) } == .notABackup)
        #expect(backupErrorCode { _ = try BackupManifest.decode(jsonBytes: Array("{}".utf8)) } == .notABackup)
        var newer = Self.manifest
        newer.formatVersion = 2
        #expect(backupErrorCode { _ = try BackupManifest.decode(jsonBytes: try newer.jsonBytes()) } == .unsupported)
    }

    @Test func softwareVersionOrdering() throws {
        #expect(try SoftwareVersion("24.10") > SoftwareVersion("24.9"))
        #expect(try SoftwareVersion("24.3") == SoftwareVersion("24.3.0"))
        #expect(try SoftwareVersion("24.3.1") > SoftwareVersion("24.3"))
        #expect(try SoftwareVersion("3") < SoftwareVersion("24"))
        #expect(try SoftwareVersion("24.03").description == "24.3")
        let sorted = try ["24.10", "24.9", "24.3.1", "25", "24.3"].map(SoftwareVersion.init).sorted()
        #expect(sorted.map(\.description) == ["24.3", "24.3.1", "24.9", "24.10", "25"])
        #expect(Set([try SoftwareVersion("24.3"), try SoftwareVersion("24.3.0")]).count == 1)
    }

    @Test func softwareVersionRejectsGarbage() {
        for text in ["", "24.", ".3", "24..3", "v24", "24.3-beta", "24.x", " 24", "1234567890"] {
            #expect(backupErrorCode { _ = try SoftwareVersion(text) } == .invalidArgument, "accepted \(text)")
        }
    }

    @Test func softwareVersionCodableAsString() throws {
        let data = try JSONEncoder().encode([try SoftwareVersion("24.3.1")])
        #expect(String(decoding: data, as: UTF8.self) == "[\"24.3.1\"]")
        #expect(try JSONDecoder().decode([SoftwareVersion].self, from: data) == [try SoftwareVersion("24.3.1")])
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode([SoftwareVersion].self, from: Data("[\"x\"]".utf8))
        }
    }

    @Test func compareVersions() {
        #expect(BackupManifest.compareVersions("24.10", "24.9") == 1)
        #expect(BackupManifest.compareVersions("24.9", "24.10") == -1)
        #expect(BackupManifest.compareVersions("24.3", "24.3.0") == 0)
        #expect(BackupManifest.compareVersions("24.3.1", "24.3.1") == 0)
        #expect(BackupManifest.compareVersions("1.2.3-rc1", "1.2.3") == 0)
    }
}
