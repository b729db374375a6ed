public import NIOSSL

/// The TLS policy of every listener of `applianced` and of every client in `appliancectl`: the Mozilla
/// "intermediate" profile.
///
/// TLS 1.2 and 1.3 only. In TLS 1.2 only ECDHE key exchange (forward secrecy) with AEAD ciphers: no CBC, no
/// SHA-1 MACs, no static RSA key exchange. TLS 1.3's suites are all AEAD with forward secrecy, and BoringSSL does
/// not make them configurable. A privileged-access appliance must not negotiate TLS 1.0/1.1, which the NIOSSL
/// defaults still allow.
public enum TLSPolicy {
    /// The oldest protocol version offered or accepted.
    public static let minimumVersion: TLSVersion = .tlsv12

    /// The TLS 1.2 suites, in preference order (ECDSA before RSA, AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305).
    public static let tls12CipherSuites: [NIOTLSCipher] = [
        .TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        .TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        .TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        .TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        .TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        .TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ]

    /// Restricts `configuration` (server or client) to the policy's versions and suites.
    public static func apply(to configuration: inout TLSConfiguration) {
        configuration.minimumTLSVersion = minimumVersion
        configuration.maximumTLSVersion = nil  // the newest NIOSSL supports: TLS 1.3
        configuration.cipherSuiteValues = tls12CipherSuites
    }

    /// A server configuration for `chain` and `key` under the policy.
    public static func serverConfiguration(
        certificateChain chain: [NIOSSLCertificate],
        privateKey key: NIOSSLPrivateKey
    ) -> TLSConfiguration {
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) },
            privateKey: .privateKey(key)
        )
        apply(to: &configuration)
        return configuration
    }

    /// A client configuration under the policy; certificate checks are the caller's.
    public static func clientConfiguration() -> TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        apply(to: &configuration)
        return configuration
    }
}
