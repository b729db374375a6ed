import COpenSSL

/// A TLS certificate with the certificates that complete its chain and, optionally, its private key.
///
/// Everything is PEM text, normalised by the importer: one certificate per string, the key as unencrypted PKCS#8.
/// Store the key only where private keys belong.
public struct CertificateMaterial: Sendable, Equatable {
    /// The leaf (end-entity) certificate.
    public var certificatePEM: String
    /// The other certificates, the leaf's issuer first when the chain can be ordered, then its issuer, and so on;
    /// certificates that belong nowhere in the chain come last, in input order.
    public var chainPEM: [String]
    /// The leaf's private key as unencrypted PKCS#8 PEM, or nil.
    public var privateKeyPEM: String?

    public init(certificatePEM: String, chainPEM: [String], privateKeyPEM: String?) {
        self.certificatePEM = certificatePEM
        self.chainPEM = chainPEM
        self.privateKeyPEM = privateKeyPEM
    }
}

/// Reads certificates and keys the way operators have them: PEM bundles and PKCS#12 (.p12/.pfx) files.
public enum CertificateImport {
    /// Reads a PEM bundle: certificates in any order plus at most one private key.
    ///
    /// The key may be PKCS#8, traditional RSA/EC, encrypted PKCS#8 or a legacy "Proc-Type: 4,ENCRYPTED" key;
    /// `passphrase` is used only for an encrypted key. The leaf is the certificate whose public key matches the
    /// key; without a key (or when no certificate matches it) it is the first certificate that is not a CA, and
    /// failing that the first certificate. A key that matches no certificate is still returned, so that
    /// `CertificateInspector` reports the mismatch. Text outside the PEM blocks, "EC PARAMETERS" blocks and other
    /// block types (certificate requests, public keys) are ignored. Text without PEM blocks that is the base64
    /// of a DER certificate is read as that certificate; binary DER sent as text is refused with how to convert it.
    public static func pemBundle(_ text: String, passphrase: String?) throws -> CertificateMaterial {
        var blocks = try X509Support.readPEMBlocks(text)
        if blocks.isEmpty, let block = try certificateBlockFromBareText(text) {
            blocks = [block]
        }
        let credentials = X509Credentials()
        var keyBlock: X509Support.PEMBlock?
        for block in blocks {
            switch block.name {
            case "CERTIFICATE", "X509 CERTIFICATE", "TRUSTED CERTIFICATE":
                guard
                    let certificate = X509Support.decodeCertificate(
                        der: block.der,
                        trusted: block.name == "TRUSTED CERTIFICATE"
                    )
                else {
                    throw openSSLFailure(
                        .invalidCertificate,
                        "certificate \(credentials.certificates.count + 1) in the text cannot be decoded; "
                            + "copy the PEM text again"
                    )
                }
                credentials.append(certificate: certificate)
            case "PRIVATE KEY", "ENCRYPTED PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "DSA PRIVATE KEY":
                guard keyBlock == nil else {
                    throw CryptoError(
                        code: .invalidArgument,
                        message: "the text contains more than one private key; keep only the certificate's own key"
                    )
                }
                keyBlock = block
            default:
                continue
            }
        }
        guard !credentials.certificates.isEmpty else {
            throw CryptoError(
                code: .invalidCertificate,
                message: "the text contains no certificate (-----BEGIN CERTIFICATE-----); "
                    + "include the certificate, not only the key"
            )
        }
        if let keyBlock {
            let encrypted = keyBlock.name == "ENCRYPTED PRIVATE KEY" || keyBlock.header.contains("ENCRYPTED")
            if encrypted, passphrase?.isEmpty ?? true {
                throw CryptoError(
                    code: .passphraseRequired,
                    message: "the private key is encrypted; give its passphrase"
                )
            }
            let pem = try X509Support.pemText(keyBlock)
            credentials.set(key: try X509Support.readPrivateKey(pem: Array(pem.utf8), passphrase: passphrase))
        }
        return try material(from: credentials)
    }

    /// Reads a PKCS#12 (.p12/.pfx) file, modern (AES/PBKDF2) or legacy (RC2-40/3DES).
    ///
    /// Reading a legacy file loads OpenSSL's "legacy" provider into the process (once, together with "default").
    public static func pkcs12(_ der: [UInt8], passphrase: String) throws -> CertificateMaterial {
        ERR_clear_error()
        let legacyAvailable = legacyProvidersLoaded
        let decoded = withNonNullBytes(der) { base, count -> OpaquePointer? in
            var cursor: UnsafePointer<UInt8>? = base
            return d2i_PKCS12(nil, &cursor, count)
        }
        guard let container = decoded else {
            _ = drainOpenSSLErrors()
            throw CryptoError(
                code: .invalidCertificate,
                message: "the file is not a PKCS#12 (.p12/.pfx) file; export the certificate again as PKCS#12, "
                    + "or import it as PEM"
            )
        }
        defer { PKCS12_free(container) }

        let passphraseLength = Int32(passphrase.utf8.count)
        if PKCS12_mac_present(container) == 1 {
            ERR_clear_error()
            let verified =
                passphrase.isEmpty
                ? PKCS12_verify_mac(container, nil, 0) == 1 || PKCS12_verify_mac(container, "", 0) == 1
                : PKCS12_verify_mac(container, passphrase, passphraseLength) == 1
            if !verified {
                if ERR_peek_error() != 0 {
                    throw openSSLFailure(
                        .invalidCertificate,
                        "checking the PKCS#12 file's integrity failed; export the file again"
                    )
                }
                throw CryptoError(
                    code: .wrongPassphrase,
                    message: "the passphrase does not open the PKCS#12 file; check the passphrase and try again"
                )
            }
        }

        var key: OpaquePointer?
        var certificate: OpaquePointer?
        var others: OpaquePointer?
        let parsed = PKCS12_parse(container, passphrase, &key, &certificate, &others)
        // Everything PKCS12_parse hands out now belongs to `credentials` (certificates are reference counted).
        let credentials = X509Credentials()
        if let key {
            credentials.set(key: key)
        }
        if let certificate {
            credentials.append(certificate: certificate)
        }
        if let others {
            for index in 0..<shim_X509_stack_count(others) {
                if let other = shim_X509_stack_value(others, index), X509_up_ref(other) == 1 {
                    credentials.append(certificate: other)
                }
            }
            shim_X509_stack_pop_free(others)
        }
        guard parsed == 1 else {
            let details = drainOpenSSLErrors()
            if details.contains("unsupported") {
                let hint =
                    legacyAvailable
                    ? "re-export it with current algorithms (openssl pkcs12 -export without -legacy)"
                    : "OpenSSL's legacy provider (ossl-modules/legacy.so) is not installed; install it or "
                        + "re-export the file with current algorithms"
                throw CryptoError(
                    code: .invalidCertificate,
                    message: "the PKCS#12 file uses an algorithm this system cannot decrypt (\(details)); \(hint)"
                )
            }
            throw CryptoError(
                code: .invalidCertificate,
                message: "the PKCS#12 file cannot be read (\(details)); export it again"
            )
        }
        guard !credentials.certificates.isEmpty else {
            throw CryptoError(
                code: .invalidCertificate,
                message: "the PKCS#12 file contains no certificate; export it again with the certificate included"
            )
        }
        return try material(from: credentials)
    }

    /// Picks the leaf, orders the chain and writes everything back out as normalised PEM.
    static func material(from credentials: X509Credentials) throws -> CertificateMaterial {
        // Drop exact duplicates: bundles often repeat the leaf or an intermediate.
        var unique: [OpaquePointer] = []
        var seen: Set<[UInt8]> = []
        for certificate in credentials.certificates {
            if seen.insert(try X509Support.certificateDER(certificate)).inserted {
                unique.append(certificate)
            }
        }

        let leafIndex =
            credentials.key.flatMap { key in unique.firstIndex { X509Support.publicKeyMatches($0, key) } }
            ?? unique.firstIndex { !X509Support.isCA($0) }
            ?? 0
        let leaf = unique[leafIndex]
        var remaining = unique
        remaining.remove(at: leafIndex)

        var chain: [OpaquePointer] = []
        var current = leaf
        while !X509Support.isSelfSigned(current),
            let next = remaining.firstIndex(where: { X509Support.isIssuer($0, of: current) })
        {
            current = remaining.remove(at: next)
            chain.append(current)
        }
        chain += remaining

        return CertificateMaterial(
            certificatePEM: try X509Support.certificatePEM(leaf),
            chainPEM: try chain.map(X509Support.certificatePEM),
            privateKeyPEM: try credentials.key.map(X509Support.privateKeyPEM)
        )
    }
}

/// Loads OpenSSL's "legacy" provider (RC2, single DES, ...) for old PKCS#12 files, and "default" with it because an
/// explicit load stops OpenSSL from loading "default" on its own. Swift runs this initialiser once, thread-safely.
/// True when both loaded.
private let legacyProvidersLoaded: Bool = {
    let legacy = OSSL_PROVIDER_load(nil, "legacy")
    let standard = OSSL_PROVIDER_load(nil, "default")
    ERR_clear_error()
    return legacy != nil && standard != nil
}()
