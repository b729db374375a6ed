import ApplianceAPI
import ApplianceClient
import ApplianceCrypto
import Foundation
import Testing

/// Issue 11 §2: a DER certificate where PEM is expected is imported (CLI and API), and what cannot be read says
/// how to convert it instead of "NSCocoaErrorDomain Code=259".
@Suite struct CertificateDERImportTests {
    static func der(_ pem: String) throws -> Data {
        try #require(Data(base64Encoded: pem.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()))
    }

    @Test func appliancectlImportsADERFileAndExplainsWhatItCannotRead() async throws {
        let box = try await TestBox(arguments: ["--hostname", CertificateTests.hostname])
        defer { box.terminate() }
        let cli = CommandLineTests.CLI()
        func appliancectl(_ arguments: [String]) async throws -> (status: Int32, stdout: String, stderr: String) {
            try await TestSupport.runDetached(
                TestSupport.binary("appliancectl").path,
                arguments,
                environment: cli.environment
            )
        }
        let first = try await appliancectl(["first-login", box.endpoint])
        #expect(first.status == 0, "\(first.stderr)")
        box.factoryFresh = false

        let pki = try TestPKI()
        let leaf = try pki.leaf(CertificateTests.hostname)
        let dir = TestSupport.temporaryDirectory("der")
        let derFile = dir.appendingPathComponent("site.cer")
        try Self.der(leaf.certificate).write(to: derFile)
        let imported = try await appliancectl(["cert", "import", box.endpoint, "--name", "der", "--pem", derFile.path])
        #expect(imported.status == 0, "\(imported.stderr)")
        #expect(imported.stdout.contains("Imported certificate"), "\(imported.stdout)")
        let list: [CertificateEntry] = try await box.admin().call(.listCertificates)
        let entry = try #require(list.first { $0.name == "der" })
        #expect(entry.details.pin == (try PublicKeyPin.sha256(certificatePEM: leaf.certificate)))

        var damaged = try Self.der(leaf.certificate)
        damaged.removeLast(16)
        let junkFile = dir.appendingPathComponent("broken.cer")
        try damaged.write(to: junkFile)
        let refused = try await appliancectl(["cert", "import", box.endpoint, "--name", "junk", "--pem", junkFile.path])
        #expect(refused.status != 0)
        #expect(!refused.stderr.contains("NSCocoaErrorDomain"), "\(refused.stderr)")
        #expect(refused.stderr.contains("openssl x509 -inform der -in \(junkFile.path)"), "\(refused.stderr)")
    }

    @Test func theAPIReadsBase64DERAndRefusesBinaryText() async throws {
        let box = try await TestBox(arguments: ["--hostname", CertificateTests.hostname])
        defer { box.terminate() }
        let admin = try await box.admin()
        let pki = try TestPKI()
        let leaf = try pki.leaf(CertificateTests.hostname)
        let der = try Self.der(leaf.certificate)
        let entry = try await CertificateTests.importPEM(admin, "b64", der.base64EncodedString() + "\n")
        #expect(entry.warnings.map(\.code).contains("privateKeyMissing"))
        #expect(entry.details.pin == (try PublicKeyPin.sha256(certificatePEM: leaf.certificate)))

        do {
            _ = try await CertificateTests.importPEM(admin, "binary", String(decoding: der, as: UTF8.self))
            Issue.record("binary DER sent as text must be refused")
        } catch let error as ApplianceClientError {
            #expect(error.apiCode == "invalid_certificate")
            #expect(error.message.contains("this is DER"), "\(error.message)")
            #expect(error.message.contains("openssl x509 -inform der"), "\(error.message)")
        }
    }
}
