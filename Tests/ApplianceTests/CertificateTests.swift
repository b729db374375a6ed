import ApplianceAPI
import ApplianceClient
import ApplianceCrypto
import Foundation
import Testing

/// A test PKI made at test time: root CA → intermediate → leaves.
struct TestPKI {
    let rootKey: String
    let root: String
    let intermediateKey: String
    let intermediate: String

    init() throws {
        let now = Date()
        rootKey = try CertificateIssuer.makeKey(.ecP256)
        root = try CertificateIssuer.issue(
            subjectCommonName: "Test Root CA",
            dnsNames: [],
            ipAddresses: [],
            isCA: true,
            notBefore: now.addingTimeInterval(-86_400),
            notAfter: now.addingTimeInterval(3650 * 86_400),
            subjectKeyPEM: rootKey,
            issuerCertificatePEM: nil,
            issuerKeyPEM: rootKey
        )
        intermediateKey = try CertificateIssuer.makeKey(.ecP256)
        intermediate = try CertificateIssuer.issue(
            subjectCommonName: "Test Intermediate CA",
            dnsNames: [],
            ipAddresses: [],
            isCA: true,
            notBefore: now.addingTimeInterval(-86_400),
            notAfter: now.addingTimeInterval(1825 * 86_400),
            subjectKeyPEM: intermediateKey,
            issuerCertificatePEM: root,
            issuerKeyPEM: rootKey
        )
    }

    /// A leaf signed by the intermediate; returns (certificate, key).
    func leaf(
        _ hostname: String,
        ips: [String] = [],
        key: CertificateIssuer.KeyType = .ecP256,
        validFrom: TimeInterval = -3600,
        validFor: TimeInterval = 365 * 86_400
    ) throws -> (certificate: String, key: String) {
        let leafKey = try CertificateIssuer.makeKey(key)
        let now = Date()
        let certificate = try CertificateIssuer.issue(
            subjectCommonName: hostname,
            dnsNames: [hostname],
            ipAddresses: ips,
            isCA: false,
            notBefore: now.addingTimeInterval(validFrom),
            notAfter: now.addingTimeInterval(validFrom + validFor),
            subjectKeyPEM: leafKey,
            issuerCertificatePEM: intermediate,
            issuerKeyPEM: intermediateKey
        )
        return (certificate, leafKey)
    }
}

/// A4 through the real API: import, warnings, assignment served from the next handshake, export, refusals.
@Suite struct CertificateTests {
    static let hostname = "appliance.example.test"

    static func importPEM(_ session: ApplianceConnection, _ name: String, _ pem: String) async throws
        -> CertificateEntry
    {
        try await session.call(.importCertificate, body: CertificateImportRequest(name: name, pem: pem))
    }

    @Test func assignedCertificateIsServedFromTheNextHandshake() async throws {
        let box = try await TestBox(arguments: ["--hostname", Self.hostname])
        defer { box.terminate() }
        let admin = try await box.admin()
        let pki = try TestPKI()
        let second = TestSupport.nextAddress()
        let leaf = try pki.leaf(Self.hostname, ips: [second])
        let entry = try await Self.importPEM(
            admin,
            "site",
            leaf.certificate + pki.intermediate + pki.root + leaf.key
        )
        #expect(entry.warnings.isEmpty, "a complete, valid certificate has no warnings: \(entry.warnings)")
        #expect(entry.chainLength == 2)
        #expect(entry.hasPrivateKey)

        let added: AddressChangeResponse = try await admin.call(
            .addAddress,
            body: AddressInput(enabled: true, port: "eth1", address: second, subnetMask: "255.0.0.0", access: .both)
        )
        let address = try #require(added.address)
        let pid = box.process.processIdentifier
        let factoryPin = try #require(box.pin)
        let assigned: AddressEntry = try await admin.call(
            .assignCertificate,
            parameters: ["id": "\(address.id)"],
            body: CertificateAssignment(certificateId: entry.id)
        )
        #expect(assigned.certificateId == entry.id)
        let served = try await PinnedHTTPClient.fetchPeerCertificate(host: second, port: TestBox.port)
        #expect(served.pin.description == (try PublicKeyPin.sha256(certificatePEM: leaf.certificate)))
        #expect(served.pin.description == entry.details.pin)
        // The factory address still serves the factory certificate, and nothing restarted.
        let factory = try await PinnedHTTPClient.fetchPeerCertificate(host: box.address, port: TestBox.port)
        #expect(factory.pin == factoryPin)
        #expect(box.process.processIdentifier == pid && box.process.isRunning)

        // An assigned certificate cannot be deleted; the factory one never.
        #expect(
            await refusal { try await admin.perform(.deleteCertificate, parameters: ["id": "\(entry.id)"]) }
                == "conflict"
        )
        let list: [CertificateEntry] = try await admin.call(.listCertificates)
        let factoryEntry = try #require(list.first { $0.isFactory })
        #expect(factoryEntry.warnings.map(\.code).contains("selfSigned"))
        #expect(
            await refusal { try await admin.perform(.deleteCertificate, parameters: ["id": "\(factoryEntry.id)"]) }
                == "conflict"
        )
        // Back to the factory certificate, then the imported one may go.
        let _: AddressEntry = try await admin.call(
            .assignCertificate,
            parameters: ["id": "\(address.id)"],
            body: CertificateAssignment(certificateId: nil)
        )
        let back = try await PinnedHTTPClient.fetchPeerCertificate(host: second, port: TestBox.port)
        #expect(back.pin == factoryPin)
        try await admin.perform(.deleteCertificate, parameters: ["id": "\(entry.id)"])
    }

    @Test func everyWarningIsNamed() async throws {
        let box = try await TestBox(arguments: ["--hostname", Self.hostname])
        defer { box.terminate() }
        let admin = try await box.admin()
        let pki = try TestPKI()
        func codes(_ name: String, _ pem: String) async throws -> Set<String> {
            Set(try await Self.importPEM(admin, name, pem).warnings.map(\.code))
        }
        let expired = try pki.leaf(Self.hostname, validFrom: -400 * 86_400, validFor: 300 * 86_400)
        #expect(
            try await codes("expired", expired.certificate + pki.intermediate + pki.root + expired.key) == ["expired"]
        )
        let future = try pki.leaf(Self.hostname, validFrom: 10 * 86_400)
        #expect(
            try await codes("future", future.certificate + pki.intermediate + pki.root + future.key) == ["notYetValid"]
        )
        let soon = try pki.leaf(Self.hostname, validFrom: -86_400, validFor: 11 * 86_400)
        #expect(try await codes("soon", soon.certificate + pki.intermediate + pki.root + soon.key) == ["expiresSoon"])
        let other = try pki.leaf("other.example.test")
        #expect(
            try await codes("other", other.certificate + pki.intermediate + pki.root + other.key) == [
                "hostnameMismatch"
            ]
        )
        let good = try pki.leaf(Self.hostname)
        #expect(try await codes("no-chain", good.certificate + good.key) == ["chainIncomplete"])
        #expect(try await codes("no-key", good.certificate + pki.intermediate + pki.root) == ["privateKeyMissing"])
        let weak = try pki.leaf(Self.hostname, key: .rsa(bits: 1024))
        #expect(try await codes("weak", weak.certificate + pki.intermediate + pki.root + weak.key) == ["weakKey"])

        // A key that does not belong to the certificate is refused at import or named as a mismatch.
        let mismatch = await refusal { _ = try await Self.importPEM(admin, "mismatch", good.certificate + other.key) }
        if let mismatch {
            #expect(mismatch == "invalid_certificate")
        } else {
            let list: [CertificateEntry] = try await admin.call(.listCertificates)
            #expect(list.first(where: { $0.name == "mismatch" })?.warnings.map(\.code).contains("keyMismatch") == true)
        }
        // A certificate without a key cannot be assigned.
        let keyless = try await Self.importPEM(admin, "keyless", good.certificate + pki.intermediate)
        let network: NetworkResponse = try await admin.call(.network)
        let factoryAddress = try #require(network.addresses.first)
        #expect(
            await refusal {
                let _: AddressEntry = try await admin.call(
                    .assignCertificate,
                    parameters: ["id": "\(factoryAddress.id)"],
                    body: CertificateAssignment(certificateId: keyless.id)
                )
            } == "certificate_unusable"
        )
        // Garbage is refused with a reason.
        #expect(
            await refusal { _ = try await Self.importPEM(admin, "junk", "not a certificate") } == "invalid_certificate"
        )
    }

    @Test func exportKeepsEverythingAndOpensWithOpenSSL() async throws {
        let box = try await TestBox(arguments: ["--hostname", Self.hostname])
        defer { box.terminate() }
        let admin = try await box.admin()
        let pki = try TestPKI()
        let leaf = try pki.leaf(Self.hostname)
        // An encrypted-key bundle imports with its passphrase.
        let dir = TestSupport.temporaryDirectory("cert")
        let plainKey = dir.appendingPathComponent("key.pem")
        try Data(leaf.key.utf8).write(to: plainKey)
        let encryptedKey = dir.appendingPathComponent("key.enc.pem")
        let pkcs8 = try await TestSupport.run(
            "openssl",
            [
                "pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in", plainKey.path, "-out", encryptedKey.path, "-passout",
                "pass:key-pass-1",
            ]
        )
        #expect(pkcs8.status == 0, "\(pkcs8.stderr)")
        let bundle =
            leaf.certificate + pki.intermediate + pki.root + (try String(contentsOf: encryptedKey, encoding: .utf8))
        #expect(await refusal { _ = try await Self.importPEM(admin, "nopass", bundle) } == "invalid_certificate")
        let entry: CertificateEntry = try await admin.call(
            .importCertificate,
            body: CertificateImportRequest(name: "enc", pem: bundle, passphrase: "key-pass-1")
        )
        #expect(entry.hasPrivateKey)

        // A PKCS#12 file made by the openssl command line imports.
        let certFile = dir.appendingPathComponent("cert.pem")
        try Data((leaf.certificate + pki.intermediate).utf8).write(to: certFile)
        let p12 = dir.appendingPathComponent("site.p12")
        let export = try await TestSupport.run(
            "openssl",
            [
                "pkcs12", "-export", "-in", certFile.path, "-inkey", plainKey.path, "-out", p12.path, "-passout",
                "pass:p12-pass",
            ]
        )
        #expect(export.status == 0, "\(export.stderr)")
        let fromP12: CertificateEntry = try await admin.call(
            .importCertificate,
            body: CertificateImportRequest(
                name: "p12",
                pkcs12Base64: try Data(contentsOf: p12).base64EncodedString(),
                passphrase: "p12-pass"
            )
        )
        #expect(fromP12.details.pin == entry.details.pin)

        // Export: a key never leaves unencrypted; a PKCS#12 export opens with openssl; nothing is removed.
        let before: [CertificateEntry] = try await admin.call(.listCertificates)
        let noPassphrase = await refusal {
            try await admin.send(
                .exportCertificate,
                parameters: ["id": "\(entry.id)"],
                body: CertificateExportRequest(format: .pem, includeChain: true, includeKey: true, passphrase: nil)
            )
        }
        #expect(noPassphrase == "invalid_certificate")
        let exported = try await admin.send(
            .exportCertificate,
            parameters: ["id": "\(entry.id)"],
            body: CertificateExportRequest(
                format: .pkcs12,
                includeChain: true,
                includeKey: true,
                passphrase: "out-pass"
            )
        )
        let out = dir.appendingPathComponent("out.p12")
        try Data(exported.body).write(to: out)
        let opened = try await TestSupport.run(
            "openssl",
            ["pkcs12", "-in", out.path, "-passin", "pass:out-pass", "-nodes"]
        )
        #expect(opened.status == 0, "\(opened.stderr)")
        #expect(opened.stdout.contains("BEGIN CERTIFICATE"))
        #expect(opened.stdout.contains("PRIVATE KEY"))
        let pem = try await admin.send(
            .exportCertificate,
            parameters: ["id": "\(entry.id)"],
            body: CertificateExportRequest(format: .pem, includeChain: true, includeKey: true, passphrase: "pem-pass")
        )
        let text = String(decoding: pem.body, as: UTF8.self)
        #expect(text.contains("ENCRYPTED PRIVATE KEY"))
        #expect(text.components(separatedBy: "BEGIN CERTIFICATE").count - 1 == 3)
        let after: [CertificateEntry] = try await admin.call(.listCertificates)
        #expect(after == before)
    }
}
