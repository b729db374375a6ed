import ApplianceClient
import NIOSSL
import Testing

/// Issue 11 §3: appliancectl's client offers only what the appliance's listeners accept (TLS 1.2+, ECDHE +
/// AEAD), so it refuses a server that offers only TLS 1.1 or only CBC suites.
@Suite struct ClientTLSPolicyTests {
    func peer(_ tls: @escaping (inout TLSConfiguration) -> Void) async throws -> Result<String, any Error> {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let certificate = try TestCertificate(in: directory)
        let server = try await TestHTTPSServer.start(certificate: certificate, tls: tls)
        let result: Result<String, any Error>
        do {
            result = .success(
                try await PinnedHTTPClient.fetchPeerCertificate(host: "127.0.0.1", port: server.port).pin.description
            )
        } catch {
            result = .failure(error)
        }
        await server.stop()
        return result
    }

    @Test func theClientRefusesOldVersionsAndWeakSuites() async throws {
        // Control: a server with NIOSSL's defaults is reachable.
        #expect((try? await peer { _ in }.get()) != nil)
        let tls11 = try await peer { configuration in
            configuration.minimumTLSVersion = .tlsv1
            configuration.maximumTLSVersion = .tlsv11
        }
        #expect(throws: ApplianceClientError.self) { try tls11.get() }
        let cbcOnly = try await peer { configuration in
            configuration.maximumTLSVersion = .tlsv12
            configuration.cipherSuiteValues = [
                .TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, .TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
                .TLS_RSA_WITH_AES_128_CBC_SHA,
            ]
        }
        #expect(throws: ApplianceClientError.self) { try cbcOnly.get() }
        // TLS 1.2 with an intermediate-profile suite is fine.
        let aead12 = try await peer { configuration in
            configuration.maximumTLSVersion = .tlsv12
            configuration.cipherSuiteValues = [.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384]
        }
        #expect((try? aead12.get()) != nil)
    }
}
