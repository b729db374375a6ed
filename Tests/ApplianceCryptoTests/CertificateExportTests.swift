import ApplianceCrypto
import Foundation
import Testing

@Suite("Certificate export")
struct CertificateExportTests {
    @Test func pkcs12OpensWithOpenSSL() throws {
        let pki = try TestPKI()
        let original = pki.material
        let passphrase = "export passphrase"
        let file = try CertificateExport.pkcs12(
            original,
            includeChain: true,
            passphrase: passphrase,
            friendlyName: "appliance"
        )
        #expect(pki.material == original)

        let openssl = try OpenSSLCommand()
        defer { openssl.cleanUp() }
        let path = try openssl.write("export.p12", file)
        let text = try openssl.run(["pkcs12", "-in", path, "-passin", "pass:\(passphrase)", "-nodes"])
        #expect(Set(certificateBlocks(text)) == [pki.leaf, pki.intermediate, pki.root])
        #expect(text.contains("friendlyName: appliance"))
        let keyPath = try openssl.write("key.pem", text)
        let leafPath = try openssl.write("leaf.pem", pki.leaf)
        #expect(try openssl.publicKey(ofKey: keyPath) == openssl.publicKey(ofCertificate: leafPath))

        // OpenSSL 3's modern defaults, not RC2/3DES.
        let info = try ExternalTool.run(
            openssl.executable,
            ["pkcs12", "-in", path, "-passin", "pass:\(passphrase)", "-info", "-noout"]
        )
        #expect(info.status == 0, "\(info.stderr)")
        #expect(info.stderr.contains("MAC: sha256"), "\(info.stderr)")
        #expect(info.stderr.contains("AES-256-CBC"), "\(info.stderr)")
        #expect(!info.stderr.contains("RC2") && !info.stderr.contains("3DES"), "\(info.stderr)")

        let wrong = try ExternalTool.run(
            openssl.executable,
            ["pkcs12", "-in", path, "-passin", "pass:wrong", "-nodes"]
        )
        #expect(wrong.status != 0)

        // And back in.
        #expect(try CertificateImport.pkcs12(file, passphrase: passphrase) == original)
        let leafOnly = try CertificateExport.pkcs12(
            original,
            includeChain: false,
            passphrase: passphrase,
            friendlyName: ""
        )
        let imported = try CertificateImport.pkcs12(leafOnly, passphrase: passphrase)
        #expect(
            imported.certificatePEM == pki.leaf && imported.chainPEM.isEmpty && imported.privateKeyPEM == pki.leafKey
        )
    }

    @Test func pkcs12NeedsKeyAndPassphrase() throws {
        let pki = try TestPKI()
        var material = pki.material
        let noPassphrase = try #require(throws: CryptoError.self) {
            try CertificateExport.pkcs12(material, includeChain: true, passphrase: "", friendlyName: "x")
        }
        #expect(noPassphrase.code == .passphraseRequired)
        material.privateKeyPEM = nil
        let noKey = try #require(throws: CryptoError.self) {
            try CertificateExport.pkcs12(material, includeChain: true, passphrase: "p", friendlyName: "x")
        }
        #expect(noKey.code == .invalidArgument)
        material.privateKeyPEM = pki.rootKey
        let mismatch = try #require(throws: CryptoError.self) {
            try CertificateExport.pkcs12(material, includeChain: true, passphrase: "p", friendlyName: "x")
        }
        #expect(mismatch.code == .invalidArgument)
        #expect(mismatch.message.contains("does not belong"))
    }

    @Test func pemWithEncryptedKeyOpensWithOpenSSL() throws {
        let pki = try TestPKI()
        let original = pki.material
        let passphrase = "pem export passphrase"
        let text = try CertificateExport.pem(original, includeChain: true, includeKey: true, passphrase: passphrase)
        #expect(pki.material == original)
        #expect(certificateBlocks(text) == [pki.leaf, pki.intermediate, pki.root])
        #expect(text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----"))
        #expect(!text.contains("-----BEGIN PRIVATE KEY-----"))

        let openssl = try OpenSSLCommand()
        defer { openssl.cleanUp() }
        let path = try openssl.write("export.pem", text)
        let leafPath = try openssl.write("leaf.pem", pki.leaf)
        let decrypted = try openssl.run(["pkey", "-in", path, "-passin", "pass:\(passphrase)"])
        #expect(decrypted == pki.leafKey)
        #expect(
            try openssl.publicKey(ofKey: path, passphrase: passphrase) == openssl.publicKey(ofCertificate: leafPath)
        )
        let wrong = try ExternalTool.run(openssl.executable, ["pkey", "-in", path, "-passin", "pass:wrong"])
        #expect(wrong.status != 0)
        let keyBlock = try #require(text.range(of: "-----BEGIN ENCRYPTED PRIVATE KEY-----")).lowerBound
        let structure = try openssl.run(["asn1parse"], input: Array(text[keyBlock...].utf8))
        for algorithm in ["PBES2", "PBKDF2", "hmacWithSHA256", "aes-256-cbc"] {
            #expect(structure.contains(":\(algorithm)"), "no \(algorithm) in:\n\(structure)")
        }

        // What was exported imports again.
        #expect(try CertificateImport.pemBundle(text, passphrase: passphrase) == original)
    }

    @Test func pemWithoutKeyOrChain() throws {
        let pki = try TestPKI()
        let leafOnly = try CertificateExport.pem(pki.material, includeChain: false, includeKey: false, passphrase: nil)
        #expect(leafOnly == pki.leaf)
        let withChain = try CertificateExport.pem(pki.material, includeChain: true, includeKey: false, passphrase: "p")
        #expect(withChain == pki.leaf + pki.intermediate + pki.root)
        #expect(!withChain.contains("PRIVATE KEY"))
    }

    @Test func keyIsOnlyExportedEncrypted() throws {
        let pki = try TestPKI()
        let original = pki.material
        for passphrase in [nil, ""] as [String?] {
            let error = try #require(throws: CryptoError.self) {
                try CertificateExport.pem(original, includeChain: true, includeKey: true, passphrase: passphrase)
            }
            #expect(error.code == .passphraseRequired)
            #expect(error.message == "a private key is only exported encrypted; give a passphrase")
        }
        #expect(pki.material == original)
        var noKey = original
        noKey.privateKeyPEM = nil
        let missing = try #require(throws: CryptoError.self) {
            try CertificateExport.pem(noKey, includeChain: false, includeKey: true, passphrase: "p")
        }
        #expect(missing.code == .invalidArgument)
    }
}

@Suite("Certificate issuer")
struct CertificateIssuerTests {
    @Test func testPKIVerifiesWithOpenSSLAndHasTheRightExtensions() throws {
        let pki = try TestPKI()
        let openssl = try OpenSSLCommand()
        defer { openssl.cleanUp() }
        let root = try openssl.write("root.pem", pki.root)
        let intermediate = try openssl.write("intermediate.pem", pki.intermediate)
        let leaf = try openssl.write("leaf.pem", pki.leaf)
        let verified = try openssl.run(
            ["verify", "-x509_strict", "-purpose", "sslserver", "-CAfile", root, "-untrusted", intermediate, leaf]
        )
        #expect(verified.contains(": OK"))

        let rootText = try openssl.run(["x509", "-in", root, "-noout", "-text"])
        for expected in [
            "Issuer: CN = Test Root CA", "Subject: CN = Test Root CA", "X509v3 Basic Constraints: critical",
            "CA:TRUE", "X509v3 Key Usage: critical", "Certificate Sign, CRL Sign", "X509v3 Subject Key Identifier",
            "ecdsa-with-SHA256",
        ] {
            #expect(rootText.contains(expected), "root lacks \(expected):\n\(rootText)")
        }
        let leafText = try openssl.run(["x509", "-in", leaf, "-noout", "-text"])
        for expected in [
            "Issuer: CN = Test Intermediate CA", "Subject: CN = appliance.example.test", "CA:FALSE",
            "Digital Signature, Key Encipherment", "TLS Web Server Authentication", "X509v3 Authority Key Identifier",
            "DNS:appliance.example.test", "IP Address:127.0.0.1", "ecdsa-with-SHA256",
        ] {
            #expect(leafText.contains(expected), "leaf lacks \(expected):\n\(leafText)")
        }

        let rsaKey = try CertificateIssuer.makeKey(.rsa(bits: 2048))
        #expect(rsaKey.hasPrefix("-----BEGIN PRIVATE KEY-----\n"))
        let rsaRoot = try CertificateIssuer.issue(
            subjectCommonName: "RSA Root",
            dnsNames: [],
            ipAddresses: [],
            isCA: true,
            notBefore: pki.now,
            notAfter: pki.now + 86_400,
            subjectKeyPEM: rsaKey,
            issuerCertificatePEM: nil,
            issuerKeyPEM: rsaKey
        )
        let rsaText = try openssl.run(["x509", "-noout", "-text"], input: Array(rsaRoot.utf8))
        #expect(rsaText.contains("sha256WithRSAEncryption") && rsaText.contains("Public-Key: (2048 bit)"))
    }

    @Test func namesKeepUTF8() throws {
        let key = try CertificateIssuer.makeKey(.ecP256)
        let now = Date()
        let certificate = try CertificateIssuer.issue(
            subjectCommonName: "Gerät Zürich",
            dnsNames: [],
            ipAddresses: ["fd00::1"],
            isCA: false,
            notBefore: now,
            notAfter: now + 86_400,
            subjectKeyPEM: key,
            issuerCertificatePEM: nil,
            issuerKeyPEM: key
        )
        let material = CertificateMaterial(certificatePEM: certificate, chainPEM: [], privateKeyPEM: key)
        let (info, findings) = try CertificateInspector.inspect(material, hostname: "[fd00::1]", now: now)
        #expect(info.subject == "CN = Gerät Zürich" && info.issuer == info.subject)
        #expect(info.commonName == "Gerät Zürich")
        #expect(info.ipAddresses == ["fd00::1"])
        #expect(findings.map(\.warning) == [.expiresSoon, .selfSigned])
    }

    @Test func rejectsInconsistentRequests() throws {
        let pki = try TestPKI()
        let otherKey = try CertificateIssuer.makeKey(.ecP256)
        func issue(
            notBefore: Date? = nil,
            notAfter: Date? = nil,
            subjectKey: String? = nil,
            issuerCertificate: String?,
            issuerKey: String,
            dnsNames: [String] = [],
            ipAddresses: [String] = []
        ) throws -> String {
            try CertificateIssuer.issue(
                subjectCommonName: "x",
                dnsNames: dnsNames,
                ipAddresses: ipAddresses,
                isCA: false,
                notBefore: notBefore ?? pki.now,
                notAfter: notAfter ?? pki.now + 86_400,
                subjectKeyPEM: subjectKey ?? otherKey,
                issuerCertificatePEM: issuerCertificate,
                issuerKeyPEM: issuerKey
            )
        }
        let attempts: [() throws -> String] = [
            { try issue(notAfter: pki.now, issuerCertificate: nil, issuerKey: otherKey) },
            { try issue(issuerCertificate: nil, issuerKey: pki.rootKey) },
            { try issue(issuerCertificate: pki.root, issuerKey: pki.intermediateKey) },
            { try issue(issuerCertificate: nil, issuerKey: otherKey, dnsNames: ["bad name"]) },
            { try issue(issuerCertificate: nil, issuerKey: otherKey, ipAddresses: ["host.example"]) },
            { try issue(subjectKey: "junk", issuerCertificate: nil, issuerKey: otherKey) },
        ]
        for (index, attempt) in attempts.enumerated() {
            let error = try #require(throws: CryptoError.self, "attempt \(index)") { try attempt() }
            #expect(error.code == .invalidArgument || error.code == .invalidCertificate, "attempt \(index): \(error)")
        }
        #expect(throws: CryptoError.self) { try CertificateIssuer.makeKey(.rsa(bits: 512)) }
    }
}
