import ApplianceCrypto
import Foundation
import SoftwarePackages
import Testing

@Suite("Download keys and the fetch ledger")
struct DownloadKeyTests {
    let appliance = Ed25519PrivateKey()
    let issuedAt = Date(timeIntervalSince1970: 1_767_225_600.9)

    private func issue(at date: Date? = nil) -> String {
        DownloadKey.issue(
            applianceId: "a1b2c3",
            hostname: "box-7.example",
            installed: ["core": "2.0", "reports": "1.0"],
            issuedAt: date ?? issuedAt,
            signingKey: appliance
        )
    }

    @Test func roundTrip() throws {
        let text = issue()
        #expect(text.hasPrefix("ADK1."))
        #expect(text.split(separator: ".").count == 3)
        #expect(!text.contains("=") && !text.contains("+") && !text.contains("/"))

        let key = try DownloadKey.parse("  \(text)\n", now: issuedAt.addingTimeInterval(3600))
        #expect(key.applianceId == "a1b2c3")
        #expect(key.hostname == "box-7.example")
        #expect(key.installed == ["core": "2.0", "reports": "1.0"])
        #expect(key.issuedAt == Date(timeIntervalSince1970: 1_767_225_600))
        #expect(key.appliancePublicKey == appliance.publicKey.base64)
        #expect(!key.nonce.isEmpty)
        #expect(key.keyId.count == 16)
        let signedPart = String(text[..<text.lastIndex(of: ".")!])
        #expect(key.keyId == String(SHA256Hasher.hash(Array(signedPart.utf8)).hexString.prefix(16)))
        #expect(try DownloadKey.parse(text, now: issuedAt).keyId == key.keyId, "the id is stable for one key")
        #expect(try DownloadKey.parse(issue(), now: issuedAt).keyId != key.keyId, "each issued key is new")
        #expect(try DownloadKey.parse(text, now: issuedAt, applianceKey: appliance.publicKey) == key)
    }

    @Test func tamperedOrMalformedKeysAreRefused() throws {
        let text = issue()
        let parts = text.split(separator: ".").map(String.init)
        // Re-encode the JSON with another installed version, keeping the old signature.
        var json = try #require(Self.base64URLDecode(parts[1]))
        let original = String(decoding: json, as: UTF8.self)
        json = Array(original.replacingOccurrences(of: "\"core\":\"2.0\"", with: "\"core\":\"1.0\"").utf8)
        #expect(json != Array(original.utf8))
        let forged = "ADK1.\(Self.base64URLEncode(json)).\(parts[2])"
        let error = expectPackageError(.invalidDownloadKey) { _ = try DownloadKey.parse(forged, now: issuedAt) }
        #expect(error?.message.contains("signature does not match") == true)

        var signature = try #require(Self.base64URLDecode(parts[2]))
        signature[3] ^= 1
        let badSignature = "ADK1.\(parts[1]).\(Self.base64URLEncode(signature))"
        expectPackageError(.invalidDownloadKey) { _ = try DownloadKey.parse(badSignature, now: issuedAt) }

        for garbage in [
            "", "hello", "ADK2.\(parts[1]).\(parts[2])", "ADK1.\(parts[1])", "ADK1.@@@.\(parts[2])", text + ".x",
        ] {
            expectPackageError(.invalidDownloadKey) { _ = try DownloadKey.parse(garbage, now: issuedAt) }
        }
        let wrongAppliance = expectPackageError(.invalidDownloadKey) {
            _ = try DownloadKey.parse(text, now: issuedAt, applianceKey: Ed25519PrivateKey().publicKey)
        }
        #expect(wrongAppliance?.message.contains("issue the key on that appliance") == true)
    }

    @Test func keysFromTheFutureAreRefused() throws {
        let text = issue()
        _ = try DownloadKey.parse(text, now: issuedAt.addingTimeInterval(-299))
        let error = expectPackageError(.clockSkew) {
            // issuedAt is stored rounded down to 00:00:00, so this is 2 h 5 min earlier.
            _ = try DownloadKey.parse(text, now: Date(timeIntervalSince1970: 1_767_225_600 - 2 * 3600 - 300))
        }
        let message = try #require(error?.message)
        #expect(message.contains("the download key's time (2026-01-01T00:00:00Z) is off from this machine's time"))
        #expect(message.contains("by 2 h 5 min"))
        #expect(message.hasSuffix("check the appliance time / NTP and issue a new key"))
    }

    @Test func keysThatAreTooOldAreRefused() throws {
        let text = issue()
        _ = try DownloadKey.parse(text, now: issuedAt.addingTimeInterval(7 * 86_400 - 1))
        let error = expectPackageError(.clockSkew) {
            _ = try DownloadKey.parse(text, now: issuedAt.addingTimeInterval(9 * 86_400))
        }
        #expect(error?.message.contains("by 9 days, more than the 7 days a key stays valid") == true)
        #expect(error?.message.contains("NTP") == true)
        expectPackageError(.clockSkew) {
            _ = try DownloadKey.parse(text, now: issuedAt.addingTimeInterval(120), maximumAge: 60)
        }
    }

    @Test func ledgerExcludesFetchedFiles() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let vendor = Ed25519PrivateKey()
        let repository = directory.appendingPathComponent("repo")
        for (name, version, requires) in [
            ("core", "2.0", [PackageManifest.Requirement]()),
            ("core", "3.0", []),
            ("reports", "2.0", [.init(name: "core", minimumVersion: "3.0")]),
        ] {
            let package = try buildPackage(name, version, requires: requires, key: vendor, in: directory)
            try RepositoryBuilder.add(package: package, to: repository)
        }
        let index = try RepositoryBuilder.loadIndex(directory: repository)
        let key = try DownloadKey.parse(issue(), now: issuedAt)
        let ledger = FetchLedger(file: directory.appendingPathComponent("ledger.json"))
        #expect(try ledger.fetched(keyId: key.keyId).isEmpty)

        let firstPlan = try UpdatePlanner.plan(for: key, index: index, ledger: ledger)
        #expect(firstPlan.map(\.manifest.fileName) == ["core_3.0.pkg", "reports_2.0.pkg"])
        #expect(firstPlan.allSatisfy { $0.status == .applicable })

        try ledger.record(keyId: key.keyId, files: ["core_3.0.pkg"])
        let secondPlan = try UpdatePlanner.plan(for: key, index: index, ledger: FetchLedger(file: ledger.file))
        // core 3.0 was already handed out, and it still satisfies what reports needs.
        #expect(secondPlan.map(\.manifest.fileName) == ["reports_2.0.pkg"])
        #expect(secondPlan.first?.status == .applicable)

        try ledger.record(keyId: key.keyId, files: Set(["reports_2.0.pkg", "core_3.0.pkg"]))
        #expect(try ledger.fetched(keyId: key.keyId) == ["core_3.0.pkg", "reports_2.0.pkg"])
        #expect(try UpdatePlanner.plan(for: key, index: index, ledger: ledger).isEmpty)

        // Another key for the same appliance starts fresh.
        let otherKey = try DownloadKey.parse(issue(), now: issuedAt)
        #expect(try UpdatePlanner.plan(for: otherKey, index: index, ledger: ledger).count == 2)
        expectPackageError(.invalidArgument) { try ledger.record(keyId: "../x", files: ["a"]) }
    }

    @Test func ledgerRefusesADamagedFile() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("ledger.json")
        try writeBytes(Array("{not json".utf8), to: file)
        let error = expectPackageError(.storage) { _ = try FetchLedger(file: file).fetched(keyId: "0123456789abcdef") }
        #expect(error?.message.contains("cannot be read") == true)
    }

    private static func base64URLEncode(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    private static func base64URLDecode(_ text: String) -> [UInt8]? {
        var standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while standard.count % 4 != 0 {
            standard += "="
        }
        return Data(base64Encoded: standard).map { [UInt8]($0) }
    }
}
