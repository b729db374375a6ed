import ApplianceCrypto
import Foundation
import SoftwarePackages
import Testing

/// Manifest format 2: the post-install self-test, and that format 1 packages are still read.
@Suite("Package self-test field")
struct SelfTestManifestTests {
    let vendor = Ed25519PrivateKey()

    @Test func aSelfTestNeedsFormatTwoAndSurvivesTheSignature() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = directory.appendingPathComponent("site.pkg")
        let built = try PackageBuilder.build(
            name: "site",
            kind: .site,
            version: "24.2.0",
            selfTest: .init(command: "exit 1", timeoutSeconds: 5),
            payload: Array("payload".utf8),
            signingKey: vendor,
            to: output
        )
        #expect(built.formatVersion == 2)
        let verified = try PackageVerifier.verify(file: output, trustedKeys: [vendor.publicKey])
        #expect(verified.manifest.selfTest == .init(command: "exit 1", timeoutSeconds: 5))

        // Without a self-test the builder still writes format 1, which older appliances read.
        let plain = try buildPackage("site", "24.3.0", kind: .site, key: vendor, in: directory)
        let plainManifest = try PackageVerifier.verify(file: plain, trustedKeys: [vendor.publicKey]).manifest
        #expect(plainManifest.formatVersion == 1)
        #expect(plainManifest.selfTest == nil)
    }

    @Test func aFormatOneManifestWithASelfTestIsRefused() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var old = manifest("site", "24.2.0", kind: .site)
        old.formatVersion = 1
        old.signingKeyId = vendor.publicKey.keyId
        old.payloadSHA256 = SHA256Hasher.hash([]).hexString
        old.selfTest = .init(command: "true")
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let bytes = Array(try encoder.encode(old))
        let file = directory.appendingPathComponent("old.pkg")
        try writeBytes(
            try tarArchive([("manifest.json", bytes), ("signature", vendor.sign(bytes)), ("payload", [])]),
            to: file
        )
        let error = expectPackageError(.notAPackage) {
            _ = try PackageVerifier.verify(file: file, trustedKeys: [vendor.publicKey])
        }
        #expect(error?.message.contains("format version 2") == true)
    }

    @Test(arguments: [("", 10), ("exit 1", 0), ("exit 1", 3601)])
    func invalidSelfTestsAreRefusedByTheBuilder(command: String, timeout: Int) throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        expectPackageError(.invalidArgument) {
            try PackageBuilder.build(
                name: "site",
                kind: .site,
                version: "24.2.0",
                selfTest: .init(command: command, timeoutSeconds: timeout),
                payload: [],
                signingKey: vendor,
                to: directory.appendingPathComponent("x.pkg")
            )
        }
    }
}
