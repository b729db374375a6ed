import ApplianceAPI
import ApplianceClient
import ApplianceCrypto
import Foundation
import Testing

/// Issue 11 §2: a certificate that cannot serve TLS is never assigned, and a broken assignment found at start
/// never locks the box out.
@Suite struct CertificateServingTests {
    static let hostname = CertificateTests.hostname

    /// A self-signed certificate on secp256k1, which OpenSSL reads but the TLS stack (BoringSSL) cannot serve.
    static func secp256k1Bundle() async throws -> String {
        let dir = TestSupport.temporaryDirectory("k1")
        let key = dir.appendingPathComponent("key.pem").path
        let certificate = dir.appendingPathComponent("cert.pem").path
        let made = try await TestSupport.runDetached(
            "openssl",
            [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:secp256k1", "-nodes", "-keyout", key,
                "-out", certificate, "-subj", "/CN=\(hostname)", "-days", "30",
            ]
        )
        #expect(made.status == 0, "\(made.stderr)")
        return try String(contentsOfFile: certificate, encoding: .utf8) + String(contentsOfFile: key, encoding: .utf8)
    }

    func assignmentRefusal(_ admin: ApplianceConnection, address: Int64, certificate: Int64) async -> String? {
        do {
            let _: AddressEntry = try await admin.call(
                .assignCertificate,
                parameters: ["id": "\(address)"],
                body: CertificateAssignment(certificateId: certificate)
            )
            return nil
        } catch let error as ApplianceClientError {
            return "\(error.apiCode ?? "-"): \(error.message)"
        } catch {
            return "\(error)"
        }
    }

    @Test func assignmentRefusesCertificatesThatCannotServeTLS() async throws {
        let box = try await TestBox(arguments: ["--hostname", Self.hostname])
        defer { box.terminate() }
        let admin = try await box.admin()
        let factoryPin = try #require(box.pin)
        let pki = try TestPKI()
        let good = try pki.leaf(Self.hostname, ips: [box.address])
        let other = try pki.leaf("other.example.test")

        let mismatch = try await CertificateTests.importPEM(
            admin,
            "mismatch",
            good.certificate + pki.intermediate + pki.root + other.key
        )
        #expect(mismatch.warnings.map(\.code).contains("keyMismatch"), "import keeps it, with a warning")
        let keyless = try await CertificateTests.importPEM(admin, "keyless", good.certificate + pki.intermediate)
        let unloadable = try await CertificateTests.importPEM(admin, "secp256k1", try await Self.secp256k1Bundle())
        let network: NetworkResponse = try await admin.call(.network)
        let factoryAddress = try #require(network.addresses.first)

        let refusals = [
            (mismatch, "does not belong"), (keyless, "no private key"), (unloadable, "TLS stack refused"),
        ]
        for (certificate, reason) in refusals {
            let refusal = try #require(
                await assignmentRefusal(admin, address: factoryAddress.id, certificate: certificate.id),
                "\(certificate.name) must not be assignable"
            )
            #expect(refusal.hasPrefix("certificate_unusable:"), "\(refusal)")
            #expect(refusal.contains(reason) && refusal.contains("import"), "says why and what to do: \(refusal)")
        }
        // Nothing changed: no assignment saved, the management address still serves the factory certificate.
        let after: NetworkResponse = try await admin.call(.network)
        #expect(after.addresses.first?.certificateId == nil)
        let served = try await PinnedHTTPClient.fetchPeerCertificate(host: box.address, port: TestBox.port)
        #expect(served.pin == factoryPin)
        #expect(try await box.connection().health().health.status == "ok")

        // The same address takes a certificate that can serve TLS.
        let usable = try await CertificateTests.importPEM(
            admin,
            "good",
            good.certificate + pki.intermediate + pki.root + good.key
        )
        #expect(await assignmentRefusal(admin, address: factoryAddress.id, certificate: usable.id) == nil)
        let now = try await PinnedHTTPClient.fetchPeerCertificate(host: box.address, port: TestBox.port)
        #expect(now.pin.description == usable.details.pin)
    }

    @Test func brokenAssignmentInTheDatabaseFallsBackToTheFactoryCertificate() async throws {
        let box = try await TestBox(arguments: ["--hostname", Self.hostname])
        defer { box.terminate() }
        let admin = try await box.admin()
        let factoryPin = try #require(box.pin)
        let pki = try TestPKI()
        let good = try pki.leaf(Self.hostname, ips: [box.address])
        let other = try pki.leaf("other.example.test")
        let mismatch = try await CertificateTests.importPEM(
            admin,
            "mismatch",
            good.certificate + pki.intermediate + pki.root + other.key
        )
        await box.stop()

        // What an older applianced (or a hand edit) could have left behind: the broken certificate assigned to
        // the management address.
        let database = box.dataDir.appendingPathComponent("box.sqlite").path
        let edit = try await TestSupport.runDetached(
            "sqlite3",
            [database, "UPDATE network_address SET certificateId = \(mismatch.id) WHERE address = '\(box.address)';"]
        )
        #expect(edit.status == 0, "\(edit.stderr)")
        let check = try await TestSupport.runDetached(
            "sqlite3",
            [database, "SELECT certificateId FROM network_address WHERE address = '\(box.address)';"]
        )
        #expect(check.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "\(mismatch.id)")

        // It starts, answers TLS on the management address with the factory certificate, and says why.
        try await box.start()
        let served = try await PinnedHTTPClient.fetchPeerCertificate(host: box.address, port: TestBox.port)
        #expect(served.pin == factoryPin)
        let (healthy, health, _) = try await box.connection().health()
        #expect(healthy)
        #expect(health.status == "degraded")
        let problem = try #require(health.certificateProblems?.first)
        #expect(problem.address == box.address && problem.certificateId == mismatch.id)
        #expect(problem.message.contains("factory certificate") && problem.message.contains("does not belong"))
        #expect(health.reason?.contains(box.address) == true)
        let admin2 = try await box.admin()
        let status: StatusResponse = try await admin2.call(.status)
        #expect(status.certificateProblems == health.certificateProblems)
        #expect(box.tail().contains("Assigned certificate cannot serve TLS"), "the fallback is logged")

        // Assigning the factory certificate back clears the problem.
        let network: NetworkResponse = try await admin2.call(.network)
        let management = try #require(network.addresses.first { $0.address == box.address })
        #expect(management.certificateId == mismatch.id)
        let _: AddressEntry = try await admin2.call(
            .assignCertificate,
            parameters: ["id": "\(management.id)"],
            body: CertificateAssignment(certificateId: nil)
        )
        #expect(try await box.connection().health().health.status == "ok")
    }
}
