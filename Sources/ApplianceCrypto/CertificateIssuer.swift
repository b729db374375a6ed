import COpenSSL
public import Foundation

/// A small certificate factory: keys, CA certificates and TLS server certificates, self-signed or issued by a CA.
///
/// Production code uses it for the appliance's factory certificate; tests use it to build whole PKIs.
public struct CertificateIssuer: Sendable {
    /// The kind of key `makeKey` creates.
    public enum KeyType: Sendable, Equatable {
        /// ECDSA on NIST P-256.
        case ecP256
        /// RSA with a modulus of `bits` bits (1024...16384; below 2048 only for tests of weak keys).
        case rsa(bits: Int)
    }

    /// A new private key as unencrypted PKCS#8 PEM.
    public static func makeKey(_ type: KeyType) throws -> String {
        ERR_clear_error()
        let key: OpaquePointer?
        switch type {
        case .ecP256:
            key = shim_EVP_EC_gen_P256()
        case .rsa(let bits):
            guard (1024...16_384).contains(bits) else {
                throw CryptoError(
                    code: .invalidArgument,
                    message: "an RSA key of \(bits) bits is outside 1024...16384; use 2048 or more"
                )
            }
            key = shim_EVP_RSA_gen(UInt32(bits))
        }
        guard let key else {
            throw openSSLFailure(.internalFailure, "generating the key failed")
        }
        defer { EVP_PKEY_free(key) }
        return try X509Support.privateKeyPEM(key)
    }

    /// Issues an X.509 v3 certificate for `subjectKeyPEM`, signed by `issuerKeyPEM`.
    ///
    /// - `issuerCertificatePEM` nil makes a self-signed certificate; then `issuerKeyPEM` must be the subject key.
    /// - CA certificates get basicConstraints CA:TRUE and keyUsage keyCertSign, cRLSign (both critical); others
    ///   get basicConstraints CA:FALSE, keyUsage digitalSignature, keyEncipherment (both critical) and
    ///   extendedKeyUsage serverAuth. All get a subjectKeyIdentifier, an authorityKeyIdentifier, and a
    ///   subjectAltName with the DNS names and IP addresses when there are any.
    /// - The serial is random, positive and 128 bits; the subject is CN `subjectCommonName`; the signature is
    ///   SHA-256 (Ed25519/Ed448 issuer keys sign without a separate digest).
    /// - Any validity period with `notBefore < notAfter` is accepted, including ones in the past or future.
    public static func issue(
        subjectCommonName: String,
        dnsNames: [String],
        ipAddresses: [String],
        isCA: Bool,
        notBefore: Date,
        notAfter: Date,
        subjectKeyPEM: String,
        issuerCertificatePEM: String?,
        issuerKeyPEM: String
    ) throws -> String {
        guard !subjectCommonName.isEmpty, subjectCommonName.utf8.count <= 64 else {
            throw CryptoError(
                code: .invalidArgument,
                message: "certificate common name must be 1 to 64 bytes, got \(subjectCommonName.utf8.count)"
            )
        }
        for name in dnsNames where !SelfSignedCertificate.isValidDNSName(name) {
            throw CryptoError(
                code: .invalidArgument,
                message: "\"\(name)\" is not a valid DNS name for a certificate (letters, digits, '-', '.', '*')"
            )
        }
        let addresses = try ipAddresses.map(SelfSignedCertificate.parseIPAddress)
        guard notBefore < notAfter else {
            throw CryptoError(
                code: .invalidArgument,
                message: "the certificate's notBefore must be earlier than its notAfter"
            )
        }

        let subjectKey = try X509Support.readPrivateKey(
            pem: Array(subjectKeyPEM.utf8),
            passphrase: nil,
            what: "the subject key"
        )
        defer { EVP_PKEY_free(subjectKey) }
        let issuerKey = try X509Support.readPrivateKey(
            pem: Array(issuerKeyPEM.utf8),
            passphrase: nil,
            what: "the issuer key"
        )
        defer { EVP_PKEY_free(issuerKey) }
        var issuerCertificate: OpaquePointer?
        defer {
            if let issuerCertificate {
                X509_free(issuerCertificate)
            }
        }
        if let issuerCertificatePEM {
            let issuer = try X509Support.readCertificate(pem: issuerCertificatePEM, what: "the issuer certificate")
            issuerCertificate = issuer
            guard X509Support.publicKeyMatches(issuer, issuerKey) else {
                throw CryptoError(
                    code: .invalidArgument,
                    message: "the issuer key does not belong to the issuer certificate; give the CA's own key"
                )
            }
        } else {
            guard EVP_PKEY_eq(subjectKey, issuerKey) == 1 else {
                ERR_clear_error()
                throw CryptoError(
                    code: .invalidArgument,
                    message: "a self-signed certificate is signed with its own key; give the subject key as the "
                        + "issuer key, or give the issuer certificate"
                )
            }
        }

        guard let certificate = X509_new() else {
            throw openSSLFailure(.internalFailure, "allocating a certificate failed")
        }
        defer { X509_free(certificate) }
        try SelfSignedCertificate.check(X509_set_version(certificate, 2), "setting the certificate version")
        try SelfSignedCertificate.setRandomSerial(certificate)
        try setTime(X509_getm_notBefore(certificate), notBefore, "notBefore")
        try setTime(X509_getm_notAfter(certificate), notAfter, "notAfter")

        let subjectName = X509_get_subject_name(certificate)
        let commonNameBytes = Array(subjectCommonName.utf8)
        try SelfSignedCertificate.check(
            X509_NAME_add_entry_by_txt(
                subjectName,
                "CN",
                shim_MBSTRING_UTF8(),
                commonNameBytes,
                Int32(commonNameBytes.count),
                -1,
                0
            ),
            "setting the common name"
        )
        try SelfSignedCertificate.check(
            X509_set_issuer_name(
                certificate,
                issuerCertificate.map { X509_get_subject_name($0) } ?? subjectName
            ),
            "setting the issuer"
        )
        try SelfSignedCertificate.check(X509_set_pubkey(certificate, subjectKey), "setting the public key")

        var context = X509V3_CTX()
        X509V3_set_ctx(&context, issuerCertificate ?? certificate, certificate, nil, nil, 0)
        if isCA {
            try SelfSignedCertificate.addExtension(certificate, &context, NID_basic_constraints, "critical,CA:TRUE")
            try SelfSignedCertificate.addExtension(certificate, &context, NID_key_usage, "critical,keyCertSign,cRLSign")
        } else {
            try SelfSignedCertificate.addExtension(certificate, &context, NID_basic_constraints, "critical,CA:FALSE")
            try SelfSignedCertificate.addExtension(
                certificate,
                &context,
                NID_key_usage,
                "critical,digitalSignature,keyEncipherment"
            )
            try SelfSignedCertificate.addExtension(certificate, &context, NID_ext_key_usage, "serverAuth")
        }
        try SelfSignedCertificate.addExtension(certificate, &context, NID_subject_key_identifier, "hash")
        try SelfSignedCertificate.addExtension(certificate, &context, NID_authority_key_identifier, "keyid,issuer")
        if !dnsNames.isEmpty || !addresses.isEmpty {
            try SelfSignedCertificate.addSubjectAlternativeNames(certificate, dnsNames: dnsNames, addresses: addresses)
        }

        let digest: OpaquePointer? =
            switch EVP_PKEY_get_base_id(issuerKey) {
            case EVP_PKEY_ED25519, EVP_PKEY_ED448: nil
            default: EVP_sha256()
            }
        guard X509_sign(certificate, issuerKey, digest) > 0 else {
            throw openSSLFailure(.internalFailure, "signing the certificate failed")
        }
        return try X509Support.certificatePEM(certificate)
    }

    private static func setTime(_ field: UnsafeMutablePointer<ASN1_TIME>?, _ date: Date, _ what: String) throws {
        let seconds = date.timeIntervalSince1970.rounded(.down)
        guard let field, seconds.magnitude < 253_402_300_800, ASN1_TIME_set(field, time_t(seconds)) != nil else {
            throw openSSLFailure(.invalidArgument, "setting the certificate's \(what) failed")
        }
    }
}
