import ApplianceCrypto
import Foundation
import Testing

@Suite("Certificate import")
struct CertificateImportTests {
    @Test func pemBundleInAnyOrderFindsLeafAndOrdersChain() throws {
        let pki = try TestPKI()
        let bundle = [pki.root, "Comment lines between blocks are ignored.\n", pki.leafKey, pki.intermediate, pki.leaf]
            .joined()
        let material = try CertificateImport.pemBundle(bundle, passphrase: nil)
        #expect(material == pki.material)

        // Without a key the leaf is the first certificate that is not a CA; duplicates are dropped.
        let withoutKey = try CertificateImport.pemBundle(
            pki.intermediate + pki.root + pki.leaf + pki.intermediate,
            passphrase: nil
        )
        #expect(withoutKey.certificatePEM == pki.leaf)
        #expect(withoutKey.chainPEM == [pki.intermediate, pki.root])
        #expect(withoutKey.privateKeyPEM == nil)

        // With the key, the leaf is the certificate the key belongs to, even if it is a CA.
        let caWithKey = try CertificateImport.pemBundle(pki.leaf + pki.root + pki.rootKey, passphrase: nil)
        #expect(caWithKey.certificatePEM == pki.root)
        #expect(caWithKey.chainPEM == [pki.leaf])

        // A key that fits no certificate is kept, so that inspection reports the mismatch.
        let otherKey = try CertificateIssuer.makeKey(.ecP256)
        let mismatched = try CertificateImport.pemBundle(pki.leaf + otherKey, passphrase: nil)
        #expect(mismatched.certificatePEM == pki.leaf && mismatched.privateKeyPEM == otherKey)
        #expect(try pki.warnings(mismatched).contains(.keyMismatch))
    }

    @Test func traditionalAndEncryptedKeyFormats() throws {
        let pki = try TestPKI()
        let rsa = try pki.issueLeaf(keyType: .rsa(bits: 2048))
        let openssl = try OpenSSLCommand()
        defer { openssl.cleanUp() }
        let ecKey = try openssl.write("ec.pem", pki.leafKey)
        let rsaKey = try openssl.write("rsa.pem", try #require(rsa.privateKeyPEM))
        let passphrase = "correct horse battery staple"

        let formats: [(name: String, leaf: String, arguments: [String], marker: String)] = [
            ("traditional EC", pki.leaf, ["ec", "-in", ecKey], "-----BEGIN EC PRIVATE KEY-----"),
            ("traditional RSA", rsa.certificatePEM, ["rsa", "-in", rsaKey, "-traditional"], "BEGIN RSA PRIVATE KEY"),
            (
                "encrypted PKCS#8", pki.leaf,
                ["pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in", ecKey, "-passout", "pass:\(passphrase)"],
                "-----BEGIN ENCRYPTED PRIVATE KEY-----"
            ),
            (
                "legacy encrypted EC", pki.leaf,
                ["ec", "-in", ecKey, "-aes256", "-passout", "pass:\(passphrase)"], "Proc-Type: 4,ENCRYPTED"
            ),
            (
                "legacy encrypted RSA", rsa.certificatePEM,
                ["rsa", "-in", rsaKey, "-traditional", "-des3", "-passout", "pass:\(passphrase)"],
                "Proc-Type: 4,ENCRYPTED"
            ),
        ]
        for format in formats {
            let keyText = try openssl.run(format.arguments)
            #expect(keyText.contains(format.marker), "\(format.name): \(keyText)")
            let encrypted = format.marker.contains("ENCRYPTED")
            let material = try CertificateImport.pemBundle(
                pki.intermediate + keyText + format.leaf + pki.root,
                passphrase: encrypted ? passphrase : nil
            )
            #expect(material.certificatePEM == format.leaf, "\(format.name)")
            #expect(material.chainPEM == [pki.intermediate, pki.root], "\(format.name)")
            let expectedKey = format.leaf == pki.leaf ? pki.leafKey : rsa.privateKeyPEM
            #expect(material.privateKeyPEM == expectedKey, "\(format.name): key is not the same PKCS#8")
            #expect(try pki.warnings(material).isEmpty, "\(format.name)")
            if encrypted {
                let missing = try #require(throws: CryptoError.self, "\(format.name)") {
                    try CertificateImport.pemBundle(format.leaf + keyText, passphrase: nil)
                }
                #expect(missing.code == .passphraseRequired, "\(format.name): \(missing)")
                let wrong = try #require(throws: CryptoError.self, "\(format.name)") {
                    try CertificateImport.pemBundle(format.leaf + keyText, passphrase: "wrong passphrase")
                }
                #expect(wrong.code == .wrongPassphrase, "\(format.name): \(wrong)")
            }
        }
    }

    @Test func encryptedKeyWithoutPassphraseIsRefused() throws {
        let pki = try TestPKI()
        let openssl = try OpenSSLCommand()
        defer { openssl.cleanUp() }
        let key = try openssl.write("key.pem", pki.leafKey)
        let encrypted = try openssl.run(
            ["pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in", key, "-passout", "pass:secret"]
        )
        for passphrase in [nil, ""] as [String?] {
            let error = try #require(throws: CryptoError.self) {
                try CertificateImport.pemBundle(pki.leaf + encrypted, passphrase: passphrase)
            }
            #expect(error.code == .passphraseRequired)
            #expect(error.message == "the private key is encrypted; give its passphrase")
        }
        let wrong = try #require(throws: CryptoError.self) {
            try CertificateImport.pemBundle(pki.leaf + encrypted, passphrase: "not the secret")
        }
        #expect(wrong.code == .wrongPassphrase)
        #expect(wrong.message.contains("passphrase"))
        // A passphrase for an unencrypted key is simply not needed.
        #expect(try CertificateImport.pemBundle(pki.leaf + pki.leafKey, passphrase: "unused").privateKeyPEM != nil)
    }

    @Test func refusesBundlesWithoutCertificateOrWithTwoKeys() throws {
        let pki = try TestPKI()
        let keyOnly = try #require(throws: CryptoError.self) {
            try CertificateImport.pemBundle(pki.leafKey, passphrase: nil)
        }
        #expect(keyOnly.code == .invalidCertificate)
        #expect(keyOnly.message.contains("no certificate"))

        let twoKeys = try #require(throws: CryptoError.self) {
            try CertificateImport.pemBundle(pki.leaf + pki.leafKey + pki.rootKey, passphrase: nil)
        }
        #expect(twoKeys.code == .invalidArgument)
        #expect(twoKeys.message.contains("more than one private key"))
    }

    @Test func refusesGarbage() throws {
        let pki = try TestPKI()
        let inputs = [
            "",
            "hello, world",
            "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            String(pki.leaf.dropLast(30)),
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n" + pki.leaf,
        ]
        for input in inputs {
            let error = try #require(throws: CryptoError.self, "\(input)") {
                try CertificateImport.pemBundle(input, passphrase: nil)
            }
            #expect(error.code == .invalidCertificate, "\(input): \(error)")
        }
    }

    @Test func pkcs12FromOpenSSL() throws {
        let pki = try TestPKI()
        let openssl = try OpenSSLCommand()
        defer { openssl.cleanUp() }
        let leaf = try openssl.write("leaf.pem", pki.leaf)
        let key = try openssl.write("key.pem", pki.leafKey)
        let chain = try openssl.write("chain.pem", pki.root + pki.intermediate)
        let passphrase = "p12 passphrase"
        for legacy in [false, true] {
            let name = legacy ? "legacy.p12" : "modern.p12"
            try openssl.run(
                ["pkcs12", "-export", "-in", leaf, "-inkey", key, "-certfile", chain, "-name", "appliance"]
                    + (legacy ? ["-legacy"] : [])
                    + ["-passout", "pass:\(passphrase)", "-out", openssl.path(name)]
            )
            let file = try openssl.read(name)
            let material = try CertificateImport.pkcs12(file, passphrase: passphrase)
            #expect(material == pki.material, "\(name)")
            let wrong = try #require(throws: CryptoError.self, "\(name)") {
                try CertificateImport.pkcs12(file, passphrase: "wrong")
            }
            #expect(wrong.code == .wrongPassphrase, "\(name): \(wrong)")
            #expect(wrong.message.contains("passphrase does not open the PKCS#12 file"))
        }

        // Certificates only, no key.
        try openssl.run(
            ["pkcs12", "-export", "-nokeys", "-in", leaf, "-certfile", chain, "-passout", "pass:x"]
                + ["-out", openssl.path("certs.p12")]
        )
        let certificatesOnly = try CertificateImport.pkcs12(try openssl.read("certs.p12"), passphrase: "x")
        #expect(certificatesOnly.certificatePEM == pki.leaf)
        #expect(certificatesOnly.chainPEM == [pki.intermediate, pki.root])
        #expect(certificatesOnly.privateKeyPEM == nil)
    }

    @Test func refusesWhatIsNotPKCS12() throws {
        let pki = try TestPKI()
        for input in [[], Array("hello".utf8), Array(pki.leaf.utf8), [0x30, 0x82, 0x01, 0x00]] as [[UInt8]] {
            let error = try #require(throws: CryptoError.self) {
                try CertificateImport.pkcs12(input, passphrase: "x")
            }
            #expect(error.code == .invalidCertificate)
            #expect(error.message.contains("not a PKCS#12"))
        }
    }
}
