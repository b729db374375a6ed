import COpenSSL

/// Writes certificate material out for operators: PEM text or a PKCS#12 file. A private key never leaves
/// unencrypted.
public enum CertificateExport {
    /// The certificate, then (with `includeChain`) the chain, then (with `includeKey`) the private key as encrypted
    /// PKCS#8 (PBES2: PBKDF2 and AES-256-CBC) under `passphrase`.
    public static func pem(
        _ material: CertificateMaterial,
        includeChain: Bool,
        includeKey: Bool,
        passphrase: String?
    ) throws -> String {
        var text = try normalized(material.certificatePEM, what: "the certificate")
        if includeChain {
            for (index, pem) in material.chainPEM.enumerated() {
                text += try normalized(pem, what: "chain certificate \(index + 1)")
            }
        }
        guard includeKey else {
            return text
        }
        guard let passphrase, !passphrase.isEmpty else {
            throw CryptoError(
                code: .passphraseRequired,
                message: "a private key is only exported encrypted; give a passphrase"
            )
        }
        let key = try privateKey(material)
        defer { EVP_PKEY_free(key) }
        let secret = Array(passphrase.utf8).map { CChar(bitPattern: $0) }
        text += try SelfSignedCertificate.writePEM("the encrypted private key") { bio in
            secret.withUnsafeBufferPointer { buffer in
                PEM_write_bio_PKCS8PrivateKey(
                    bio,
                    key,
                    EVP_aes_256_cbc(),
                    buffer.baseAddress,
                    Int32(buffer.count),
                    nil,
                    nil
                )
            }
        }
        return text
    }

    /// A PKCS#12 file with the certificate, its key and (with `includeChain`) the chain, protected by `passphrase`
    /// with OpenSSL 3's default algorithms (PBES2 with PBKDF2 and AES-256-CBC, an HMAC-SHA-256 MAC, 2048 iterations).
    /// `friendlyName` labels the certificate and key in the file ("" for none).
    public static func pkcs12(
        _ material: CertificateMaterial,
        includeChain: Bool,
        passphrase: String,
        friendlyName: String
    ) throws -> [UInt8] {
        guard !passphrase.isEmpty else {
            throw CryptoError(
                code: .passphraseRequired,
                message: "a PKCS#12 file is only exported with a passphrase; give a passphrase"
            )
        }
        let key = try privateKey(material)
        defer { EVP_PKEY_free(key) }
        let certificate = try X509Support.readCertificate(pem: material.certificatePEM, what: "the certificate")
        defer { X509_free(certificate) }
        guard X509_check_private_key(certificate, key) == 1 else {
            _ = drainOpenSSLErrors()
            throw CryptoError(
                code: .invalidArgument,
                message: "the private key does not belong to the certificate; import the matching key first"
            )
        }
        guard let chain = shim_X509_stack_new() else {
            throw openSSLFailure(.internalFailure, "allocating a certificate list failed")
        }
        defer { shim_X509_stack_pop_free(chain) }
        if includeChain {
            for (index, pem) in material.chainPEM.enumerated() {
                let other = try X509Support.readCertificate(pem: pem, what: "chain certificate \(index + 1)")
                guard shim_X509_stack_push(chain, other) > 0 else {
                    X509_free(other)
                    throw openSSLFailure(.internalFailure, "adding a chain certificate failed")
                }
            }
        }
        ERR_clear_error()
        guard
            let container = PKCS12_create(
                passphrase,
                friendlyName.isEmpty ? nil : friendlyName,
                key,
                certificate,
                chain,
                0,
                0,
                PKCS12_DEFAULT_ITER,
                PKCS12_DEFAULT_ITER,
                0
            )
        else {
            throw openSSLFailure(.internalFailure, "building the PKCS#12 file failed")
        }
        defer { PKCS12_free(container) }
        let length = i2d_PKCS12(container, nil)
        guard length > 0 else {
            throw openSSLFailure(.internalFailure, "encoding the PKCS#12 file failed")
        }
        return try [UInt8](unsafeUninitializedCapacity: Int(length)) { buffer, initialized in
            var cursor = buffer.baseAddress
            guard i2d_PKCS12(container, &cursor) == length else {
                throw openSSLFailure(.internalFailure, "encoding the PKCS#12 file failed")
            }
            initialized = Int(length)
        }
    }

    private static func normalized(_ pem: String, what: String) throws -> String {
        let certificate = try X509Support.readCertificate(pem: pem, what: what)
        defer { X509_free(certificate) }
        return try X509Support.certificatePEM(certificate)
    }

    private static func privateKey(_ material: CertificateMaterial) throws -> OpaquePointer {
        guard let privateKeyPEM = material.privateKeyPEM else {
            throw CryptoError(
                code: .invalidArgument,
                message: "there is no private key to export; import the certificate together with its key, "
                    + "or export without the key"
            )
        }
        return try X509Support.readPrivateKey(pem: Array(privateKeyPEM.utf8), passphrase: nil)
    }
}
