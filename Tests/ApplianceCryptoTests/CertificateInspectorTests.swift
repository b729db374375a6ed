import ApplianceCrypto
import Foundation
import Testing

@Suite("Certificate inspection")
struct CertificateInspectorTests {
    @Test func goodLeafWithFullChainAndKeyHasNoFindings() throws {
        let pki = try TestPKI()
        let (info, findings) = try CertificateInspector.inspect(pki.material, hostname: TestPKI.hostname, now: pki.now)
        #expect(findings.isEmpty, "\(findings)")
        // Reached by address as well as by name.
        #expect(try pki.warnings(pki.material, hostname: TestPKI.address).isEmpty)
        #expect(try pki.warnings(pki.material, hostname: "APPLIANCE.example.test.").isEmpty)

        #expect(info.subject == "CN = appliance.example.test")
        #expect(info.commonName == "appliance.example.test")
        #expect(info.issuer == "CN = Test Intermediate CA")
        #expect(info.dnsNames == [TestPKI.hostname])
        #expect(info.ipAddresses == [TestPKI.address])
        #expect(info.keyType == "EC" && info.keyBits == 256)
        #expect(!info.isSelfSigned && !info.isCA)
        #expect(abs(info.notBefore.timeIntervalSince(pki.now - 3_600)) < 1)
        #expect(abs(info.notAfter.timeIntervalSince(pki.now + 365 * 86_400)) < 1)
        #expect(info.pin == (try PublicKeyPin.sha256(certificatePEM: pki.leaf)))

        let openssl = try OpenSSLCommand()
        defer { openssl.cleanUp() }
        let path = try openssl.write("leaf.pem", pki.leaf)
        let fingerprint = try openssl.run(["x509", "-in", path, "-noout", "-fingerprint", "-sha256"])
        #expect(
            fingerprint.split(separator: "=").last?.filter { $0 != ":" && !$0.isWhitespace }.lowercased()
                == info.sha256Fingerprint
        )
        let serial = try openssl.run(["x509", "-in", path, "-noout", "-serial"])
        #expect(
            serial.split(separator: "=").last?.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
                == info.serialHex
        )

        let root = try CertificateInspector.inspect(
            CertificateMaterial(certificatePEM: pki.root, chainPEM: [], privateKeyPEM: pki.rootKey),
            hostname: "",
            now: pki.now
        )
        #expect(root.info.isCA && root.info.isSelfSigned)
        #expect(root.findings.map(\.warning) == [.selfSigned])
    }

    @Test func expired() throws {
        let pki = try TestPKI()
        let material = try pki.issueLeaf(notBefore: pki.now - 400 * 86_400, notAfter: pki.now - 5 * 86_400)
        let findings = try CertificateInspector.inspect(material, hostname: TestPKI.hostname, now: pki.now).findings
        #expect(findings.map(\.warning) == [.expired])
        #expect(findings.first?.message.contains("expired 5 days ago") == true, "\(findings)")
        #expect(findings.first?.message.contains("import a renewed certificate") == true)
    }

    @Test func notYetValid() throws {
        let pki = try TestPKI()
        let material = try pki.issueLeaf(notBefore: pki.now + 2 * 86_400 + 60, notAfter: pki.now + 365 * 86_400)
        let findings = try CertificateInspector.inspect(material, hostname: TestPKI.hostname, now: pki.now).findings
        #expect(findings.map(\.warning) == [.notYetValid])
        #expect(findings.first?.message.contains("in 2 days") == true, "\(findings)")
    }

    @Test func expiresWithinThirtyDays() throws {
        let pki = try TestPKI()
        let notAfter = pki.now + 12 * 86_400 + 3_600
        let material = try pki.issueLeaf(notAfter: notAfter)
        let findings = try CertificateInspector.inspect(material, hostname: TestPKI.hostname, now: pki.now).findings
        #expect(findings.map(\.warning) == [.expiresSoon])
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = try #require(TimeZone(identifier: "UTC"))
        let day = calendar.dateComponents([.year, .month, .day], from: notAfter)
        let dayText = String(format: "%04d-%02d-%02d", day.year ?? 0, day.month ?? 0, day.day ?? 0)
        #expect(
            findings.first?.message == "expires in 12 days (\(dayText)); import a renewed certificate",
            "\(findings)"
        )
        // 31 days out is not "soon".
        #expect(try pki.warnings(try pki.issueLeaf(notAfter: pki.now + 31 * 86_400)).isEmpty)
    }

    @Test func wrongHostname() throws {
        let pki = try TestPKI()
        let findings = try CertificateInspector.inspect(pki.material, hostname: "other.example.test", now: pki.now)
            .findings
        #expect(findings.map(\.warning) == [.hostnameMismatch])
        #expect(findings.first?.message.contains("appliance.example.test, 127.0.0.1") == true, "\(findings)")
        #expect(try pki.warnings(pki.material, hostname: "127.0.0.2") == [.hostnameMismatch])
        #expect(try pki.warnings(pki.material, hostname: "::1") == [.hostnameMismatch])

        // Wildcards cover one leftmost label, as in browsers; the commonName is never used.
        let wildcard = try pki.issueLeaf(dnsNames: ["*.example.test"], ipAddresses: [])
        #expect(try pki.warnings(wildcard, hostname: "appliance.example.test").isEmpty)
        #expect(try pki.warnings(wildcard, hostname: "a.appliance.example.test") == [.hostnameMismatch])
        #expect(try pki.warnings(wildcard, hostname: "example.test") == [.hostnameMismatch])
        let noNames = try pki.issueLeaf(dnsNames: [], ipAddresses: [])
        #expect(try pki.warnings(noNames, hostname: "leaf") == [.hostnameMismatch])
    }

    @Test func chainMissingTheIntermediate() throws {
        let pki = try TestPKI()
        var material = pki.material
        material.chainPEM = [pki.root]
        let findings = try CertificateInspector.inspect(material, hostname: TestPKI.hostname, now: pki.now).findings
        #expect(findings.map(\.warning) == [.chainIncomplete])
        #expect(findings.first?.message.contains("unable to get local issuer certificate") == true, "\(findings)")

        material.chainPEM = []
        #expect(try pki.warnings(material) == [.chainIncomplete])
        // Without the root, nothing is trusted: partial chains do not count.
        material.chainPEM = [pki.intermediate]
        #expect(try pki.warnings(material) == [.chainIncomplete])
        // Order in chainPEM does not matter.
        material.chainPEM = [pki.root, pki.intermediate]
        #expect(try pki.warnings(material).isEmpty)
    }

    @Test func expiredIntermediateIsNotAChainProblem() throws {
        let now = Date()
        let pki = try TestPKI(now: now)
        let oldKey = try CertificateIssuer.makeKey(.ecP256)
        let oldIntermediate = try CertificateIssuer.issue(
            subjectCommonName: "Old Intermediate CA",
            dnsNames: [],
            ipAddresses: [],
            isCA: true,
            notBefore: now - 100 * 86_400,
            notAfter: now - 86_400,
            subjectKeyPEM: oldKey,
            issuerCertificatePEM: pki.root,
            issuerKeyPEM: pki.rootKey
        )
        let leafKey = try CertificateIssuer.makeKey(.ecP256)
        let leaf = try CertificateIssuer.issue(
            subjectCommonName: TestPKI.hostname,
            dnsNames: [TestPKI.hostname],
            ipAddresses: [],
            isCA: false,
            notBefore: now - 3_600,
            notAfter: now + 86_400 * 60,
            subjectKeyPEM: leafKey,
            issuerCertificatePEM: oldIntermediate,
            issuerKeyPEM: oldKey
        )
        let material = CertificateMaterial(
            certificatePEM: leaf,
            chainPEM: [oldIntermediate, pki.root],
            privateKeyPEM: leafKey
        )
        #expect(try pki.warnings(material).isEmpty)
    }

    @Test func noKey() throws {
        let pki = try TestPKI()
        var material = pki.material
        material.privateKeyPEM = nil
        let findings = try CertificateInspector.inspect(material, hostname: TestPKI.hostname, now: pki.now).findings
        #expect(findings.map(\.warning) == [.privateKeyMissing])
        #expect(findings.first?.message.contains("import it together with its key") == true)
    }

    @Test func keyOfAnotherCertificate() throws {
        let pki = try TestPKI()
        var material = pki.material
        material.privateKeyPEM = try pki.issueLeaf().privateKeyPEM
        #expect(try pki.warnings(material) == [.keyMismatch])
        // A key of another type is a mismatch too, not an error.
        material.privateKeyPEM = try CertificateIssuer.makeKey(.rsa(bits: 2048))
        #expect(try pki.warnings(material) == [.keyMismatch])
    }

    @Test func rsa1024IsWeak() throws {
        let pki = try TestPKI()
        let material = try pki.issueLeaf(keyType: .rsa(bits: 1024))
        let (info, findings) = try CertificateInspector.inspect(material, hostname: TestPKI.hostname, now: pki.now)
        #expect(info.keyType == "RSA" && info.keyBits == 1024)
        #expect(findings.map(\.warning) == [.weakKey])
        #expect(findings.first?.message.contains("1024 bits") == true)
        #expect(try pki.warnings(try pki.issueLeaf(keyType: .rsa(bits: 2048))).isEmpty)
    }

    @Test func selfSigned() throws {
        let now = Date()
        let key = try CertificateIssuer.makeKey(.ecP256)
        let certificate = try CertificateIssuer.issue(
            subjectCommonName: TestPKI.hostname,
            dnsNames: [TestPKI.hostname],
            ipAddresses: [TestPKI.address],
            isCA: false,
            notBefore: now - 60,
            notAfter: now + 365 * 86_400,
            subjectKeyPEM: key,
            issuerCertificatePEM: nil,
            issuerKeyPEM: key
        )
        let material = CertificateMaterial(certificatePEM: certificate, chainPEM: [], privateKeyPEM: key)
        let (info, findings) = try CertificateInspector.inspect(material, hostname: TestPKI.hostname, now: now)
        #expect(info.isSelfSigned && !info.isCA)
        #expect(findings.map(\.warning) == [.selfSigned])

        // The appliance's own factory certificate is self-signed too.
        let factory = try SelfSignedCertificate.make(
            commonName: TestPKI.hostname,
            dnsNames: [TestPKI.hostname],
            ipAddresses: [],
            validDays: 365
        )
        let factoryMaterial = CertificateMaterial(
            certificatePEM: factory.certificatePEM,
            chainPEM: [],
            privateKeyPEM: factory.privateKeyPEM
        )
        #expect(
            try CertificateInspector.inspect(factoryMaterial, hostname: TestPKI.hostname).findings.map(\.warning)
                == [.selfSigned]
        )
    }

    @Test func severalProblemsAreAllReported() throws {
        let pki = try TestPKI()
        var material = try pki.issueLeaf(
            keyType: .rsa(bits: 1024),
            notBefore: pki.now - 400 * 86_400,
            notAfter: pki.now - 86_400
        )
        material.chainPEM = []
        material.privateKeyPEM = nil
        #expect(
            try pki.warnings(material, hostname: "other.example.test")
                == [.expired, .hostnameMismatch, .chainIncomplete, .privateKeyMissing, .weakKey]
        )
    }

    @Test func infoAndFindingsAreCodable() throws {
        let pki = try TestPKI()
        var material = pki.material
        material.privateKeyPEM = nil
        let (info, findings) = try CertificateInspector.inspect(material, hostname: "x.test", now: pki.now)
        let encoder = JSONEncoder()
        let decoder = JSONDecoder()
        #expect(try decoder.decode(CertificateInfo.self, from: encoder.encode(info)) == info)
        #expect(try decoder.decode([CertificateFinding].self, from: encoder.encode(findings)) == findings)
        let json = String(decoding: try encoder.encode(findings), as: UTF8.self)
        #expect(json.contains("\"hostnameMismatch\"") && json.contains("\"privateKeyMissing\""))
    }

    @Test func rejectsUndecodableMaterial() throws {
        let pki = try TestPKI()
        var material = pki.material
        material.certificatePEM = "not a certificate"
        #expect { try CertificateInspector.inspect(material, hostname: "") } throws: {
            isCryptoError($0, .invalidCertificate)
        }
        material = pki.material
        material.chainPEM.append("junk")
        #expect { try CertificateInspector.inspect(material, hostname: "") } throws: {
            isCryptoError($0, .invalidCertificate)
        }
        material = pki.material
        material.privateKeyPEM = "junk"
        #expect { try CertificateInspector.inspect(material, hostname: "") } throws: {
            isCryptoError($0, .invalidCertificate)
        }
    }
}
