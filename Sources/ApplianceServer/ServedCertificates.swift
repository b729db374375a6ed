import ApplianceAPI
import ApplianceCrypto
import ApplianceStore
import ApplianceTLS
import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOSSL
import Synchronization

/// The certificate each address serves, parsed once for NIOSSL and read on every TLS handshake.
///
/// Each listener's TLS configuration carries a context callback that looks its address up here, so assigning a
/// certificate takes effect from the next handshake without restarting anything. Only certificates that passed
/// ``identity(_:)`` (a real TLS handshake in memory) get into the table: an address whose assigned certificate
/// cannot serve TLS serves the factory certificate instead, and the problem is reported, so the box never locks
/// itself out.
final class ServedCertificates: Sendable {
    struct Identity: Sendable {
        var chain: [NIOSSLCertificate]
        var key: NIOSSLPrivateKey
    }

    private struct Table: Sendable {
        var byAddress: [String: Identity] = [:]
        var fallback: Identity?
        var problems: [CertificateProblem] = []
    }

    private let table = Mutex(Table())
    private let logger: Logger

    init(logger: Logger) {
        self.logger = logger
    }

    /// Replaces the table from the box database; an address whose certificate cannot serve TLS gets the factory
    /// certificate and a problem entry.
    func reload(from box: BoxDatabase) throws {
        let factoryCertificate = try box.factoryCertificate()
        let factory = try Self.identity(factoryCertificate)
        var fresh = Table(fallback: factory)
        var checked: [Int64: Result<Identity, ApplianceServerError>] = [:]
        for (address, certificate) in try box.servedCertificates().sorted(by: { $0.key < $1.key }) {
            if certificate.isFactory {
                fresh.byAddress[address] = factory
                continue
            }
            let result =
                checked[certificate.id]
                ?? Result { try Self.identity(certificate) }.mapError { error in
                    error as? ApplianceServerError ?? .conflict("\(error)")
                }
            checked[certificate.id] = result
            switch result {
            case .success(let identity):
                fresh.byAddress[address] = identity
            case .failure(let error):
                fresh.byAddress[address] = factory
                let message =
                    "\(address) serves the factory certificate because its assigned certificate "
                    + "\(certificate.id) (\(certificate.name)) cannot serve TLS: \(error.message)"
                fresh.problems.append(
                    CertificateProblem(address: address, certificateId: certificate.id, message: message)
                )
                logger.error(
                    "Assigned certificate cannot serve TLS; serving the factory certificate",
                    metadata: [
                        "listener.address": "\(address)",
                        "certificate.id": "\(certificate.id)",
                        "error": "\(error.message)",
                    ]
                )
            }
        }
        table.withLock { $0 = fresh }
    }

    /// Addresses that serve the factory certificate because their assigned one cannot serve TLS.
    var problems: [CertificateProblem] { table.withLock { $0.problems } }

    func identity(for address: String) -> Identity? {
        table.withLock { $0.byAddress[address] ?? $0.fallback }
    }

    /// Loads a stored certificate for NIOSSL and proves it can serve TLS with a handshake in memory.
    ///
    /// - Throws: `ApplianceServerError` (409) saying what is wrong and what to do: no private key, a key that
    ///   does not belong to the certificate, or anything else the TLS stack refuses.
    static func identity(_ certificate: StoredCertificate) throws -> Identity {
        let name = "certificate \(certificate.id) (\(certificate.name))"
        guard let keyPEM = certificate.privateKeyPEM else {
            throw ApplianceServerError(
                .conflict,
                "certificate_unusable",
                "\(name) has no private key, so it cannot serve TLS; import it again together with its key"
            )
        }
        let material = Appliance.material(certificate)
        if let mismatch = try? CertificateInspector.inspect(material, hostname: "").1.first(where: {
            $0.warning == .keyMismatch
        }) {
            throw ApplianceServerError(
                .conflict,
                "certificate_unusable",
                "\(name) cannot serve TLS: \(mismatch.message)"
            )
        }
        let identity: Identity
        do {
            identity = Identity(
                chain: try NIOSSLCertificate.fromPEMBytes(
                    Array((certificate.certificatePEM + certificate.chainPEM).utf8)
                ),
                key: try NIOSSLPrivateKey(bytes: Array(keyPEM.utf8), format: .pem)
            )
            try TLSHandshakeProof.run(chain: identity.chain, key: identity.key)
        } catch {
            throw ApplianceServerError(
                .conflict,
                "certificate_unusable",
                "\(name) cannot serve TLS (the TLS stack refused it: \(error)); import a certificate with its "
                    + "matching private key (RSA 2048+ or EC P-256/P-384)"
            )
        }
        return identity
    }

    /// The TLS configuration of the listener on `address`.
    func tlsConfiguration(for address: String) throws -> TLSConfiguration {
        guard let current = identity(for: address) else {
            throw ApplianceServerError(.internalServerError, "certificate", "no certificate to serve on \(address)")
        }
        // Every listener, also one added at run time, is built here: one policy for all of them.
        var configuration = TLSPolicy.serverConfiguration(certificateChain: current.chain, privateKey: current.key)
        configuration.sslContextCallback = { [self] _, promise in
            var override = NIOSSLContextConfigurationOverride()
            if let identity = identity(for: address) {
                override.certificateChain = identity.chain.map { .certificate($0) }
                override.privateKey = .privateKey(identity.key)
            }
            promise.succeed(override)
        }
        return configuration
    }
}
