import ApplianceAPI
import ApplianceClient
import ApplianceCrypto
import Foundation
import Testing

/// Issue 11 §3: every listener, also one added at run time, speaks TLS 1.2/1.3 with ECDHE + AEAD suites only,
/// checked from outside with `openssl s_client`.
@Suite struct TLSPolicyTests {
    struct Outcome {
        var connected: Bool
        var output: String
    }

    /// One handshake with `openssl s_client`; `@SECLEVEL=0` makes the client itself offer old versions and
    /// suites, so a refusal comes from the server.
    static func handshake(_ host: String, _ flags: [String], cipher: String? = nil) async throws -> Outcome {
        var arguments = ["s_client", "-connect", "\(host):\(TestBox.port)", "-brief"] + flags
        if let cipher {
            arguments += ["-cipher", cipher + ":@SECLEVEL=0"]
        } else if flags.contains("-tls1") || flags.contains("-tls1_1") {
            arguments += ["-cipher", "DEFAULT:@SECLEVEL=0"]
        }
        let result = try await TestSupport.runDetached("openssl", arguments, input: "")
        return Outcome(connected: result.status == 0, output: result.stdout + result.stderr)
    }

    /// The server's refusal: the client received an alert (rather than refusing by itself).
    static func refusedByServer(_ outcome: Outcome) -> Bool {
        !outcome.connected
            && (outcome.output.contains("alert protocol version") || outcome.output.contains("alert handshake failure"))
    }

    static func expectPolicy(_ host: String, ecdsa: Bool) async throws {
        for version in ["-tls1", "-tls1_1"] {
            let outcome = try await handshake(host, [version])
            #expect(refusedByServer(outcome), "\(host) \(version) must be refused by the server: \(outcome.output)")
            #expect(outcome.output.contains("alert protocol version"), "\(outcome.output)")
        }
        for version in ["-tls1_2", "-tls1_3"] {
            let outcome = try await handshake(host, [version])
            #expect(outcome.connected, "\(host) \(version) must be accepted: \(outcome.output)")
        }
        let auth = ecdsa ? "ECDSA" : "RSA"
        // CBC and SHA-1, without and with forward secrecy: refused.
        for cipher in ["AES128-SHA", "AES256-SHA256", "ECDHE-\(auth)-AES128-SHA", "ECDHE-\(auth)-AES256-SHA384"] {
            let outcome = try await handshake(host, ["-tls1_2"], cipher: cipher)
            #expect(refusedByServer(outcome), "\(host) TLS 1.2 \(cipher) must be refused: \(outcome.output)")
        }
        // The intermediate profile's AEAD suites: accepted.
        for cipher in [
            "ECDHE-\(auth)-AES128-GCM-SHA256", "ECDHE-\(auth)-AES256-GCM-SHA384", "ECDHE-\(auth)-CHACHA20-POLY1305",
        ] {
            let outcome = try await handshake(host, ["-tls1_2"], cipher: cipher)
            #expect(outcome.connected, "\(host) TLS 1.2 \(cipher) must be accepted: \(outcome.output)")
            #expect(outcome.output.contains(cipher), "\(outcome.output)")
        }
    }

    @Test func everyListenerRefusesOldVersionsAndWeakSuites() async throws {
        let box = try await TestBox(arguments: ["--hostname", CertificateTests.hostname])
        defer { box.terminate() }
        // The factory listener (an ECDSA P-256 certificate).
        try await Self.expectPolicy(box.address, ecdsa: true)

        // A listener added at run time, serving an RSA certificate.
        let admin = try await box.admin()
        let second = TestSupport.nextAddress()
        let added: AddressChangeResponse = try await admin.call(
            .addAddress,
            body: AddressInput(enabled: true, port: "eth1", address: second, subnetMask: "255.0.0.0", access: .both)
        )
        let address = try #require(added.address)
        let pki = try TestPKI()
        let leaf = try pki.leaf(CertificateTests.hostname, ips: [second], key: .rsa(bits: 2048))
        let rsa = try await CertificateTests.importPEM(admin, "rsa", leaf.certificate + pki.intermediate + leaf.key)
        let _: AddressEntry = try await admin.call(
            .assignCertificate,
            parameters: ["id": "\(address.id)"],
            body: CertificateAssignment(certificateId: rsa.id)
        )
        try await Self.expectPolicy(second, ecdsa: false)

        // appliancectl's client holds to the same policy and still talks to the box.
        let served = try await PinnedHTTPClient.fetchPeerCertificate(host: second, port: TestBox.port)
        #expect(served.pin.description == rsa.details.pin)
        #expect(try await box.connection().health().healthy)
    }
}
