import COpenSSL

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Self-signed TLS server certificates for the appliance's own HTTPS endpoint.
public enum SelfSignedCertificate {
    /// Creates an ECDSA P-256 key and a self-signed X.509 v3 server certificate for it.
    ///
    /// The certificate has a random positive 128-bit serial, subject = issuer = CN `commonName`, a subjectAltName
    /// with every DNS name and IP address (IPv4 or IPv6 text), `basicConstraints` CA:FALSE (critical),
    /// `keyUsage` digitalSignature (critical) and `extendedKeyUsage` serverAuth. It is valid from five minutes ago
    /// (tolerating small clock differences) for `validDays` days, and signed with ECDSA-SHA256.
    /// The key is returned as unencrypted PKCS#8 PEM.
    public static func make(
        commonName: String,
        dnsNames: [String],
        ipAddresses: [String],
        validDays: Int
    ) throws -> (certificatePEM: String, privateKeyPEM: String) {
        guard (1...36_500).contains(validDays) else {
            throw CryptoError(
                code: .invalidArgument,
                message: "certificate validity of \(validDays) days is outside 1...36500"
            )
        }
        guard !commonName.isEmpty, commonName.utf8.count <= 64 else {
            throw CryptoError(
                code: .invalidArgument,
                message: "certificate common name must be 1 to 64 bytes, got \(commonName.utf8.count)"
            )
        }
        for name in dnsNames where !isValidDNSName(name) {
            throw CryptoError(
                code: .invalidArgument,
                message: "\"\(name)\" is not a valid DNS name for a certificate (letters, digits, '-', '.', '*')"
            )
        }
        let addresses = try ipAddresses.map(parseIPAddress)

        guard let key = shim_EVP_EC_gen_P256() else {
            throw openSSLFailure(.internalFailure, "generating a P-256 key failed")
        }
        defer { EVP_PKEY_free(key) }
        guard let certificate = X509_new() else {
            throw openSSLFailure(.internalFailure, "allocating a certificate failed")
        }
        defer { X509_free(certificate) }

        try check(X509_set_version(certificate, 2), "setting the certificate version")  // 2 means X.509 v3.
        try setRandomSerial(certificate)
        try check(X509_gmtime_adj(X509_getm_notBefore(certificate), -300) != nil ? 1 : 0, "setting notBefore")
        try check(
            X509_time_adj_ex(X509_getm_notAfter(certificate), Int32(validDays), 0, nil) != nil ? 1 : 0,
            "setting notAfter"
        )
        let name = X509_get_subject_name(certificate)
        let commonNameBytes = Array(commonName.utf8)
        try check(
            X509_NAME_add_entry_by_txt(
                name,
                "CN",
                shim_MBSTRING_UTF8(),
                commonNameBytes,
                Int32(commonNameBytes.count),
                -1,
                0
            ),
            "setting the common name"
        )
        try check(X509_set_issuer_name(certificate, name), "setting the issuer")
        try check(X509_set_pubkey(certificate, key), "setting the public key")

        var context = X509V3_CTX()
        X509V3_set_ctx(&context, certificate, certificate, nil, nil, 0)
        try addExtension(certificate, &context, NID_basic_constraints, "critical,CA:FALSE")
        try addExtension(certificate, &context, NID_key_usage, "critical,digitalSignature")
        try addExtension(certificate, &context, NID_ext_key_usage, "serverAuth")
        try addExtension(certificate, &context, NID_subject_key_identifier, "hash")
        if !dnsNames.isEmpty || !addresses.isEmpty {
            try addSubjectAlternativeNames(certificate, dnsNames: dnsNames, addresses: addresses)
        }

        guard X509_sign(certificate, key, EVP_sha256()) > 0 else {
            throw openSSLFailure(.internalFailure, "signing the certificate failed")
        }
        let certificatePEM = try writePEM("the certificate") { PEM_write_bio_X509($0, certificate) }
        let privateKeyPEM = try writePEM("the private key") {
            PEM_write_bio_PKCS8PrivateKey($0, key, nil, nil, 0, nil, nil)
        }
        return (certificatePEM, privateKeyPEM)
    }

    static func check(_ status: Int32, _ what: String) throws {
        guard status == 1 else {
            throw openSSLFailure(.internalFailure, "\(what) failed")
        }
    }

    static func setRandomSerial(_ certificate: OpaquePointer) throws {
        var serial = SecureRandom.bytes(16)
        // Clear the top bit so the DER INTEGER is positive, and keep it non-zero (RFC 5280 section 4.1.2.2).
        serial[0] = serial[0] & 0x7f | 0x01
        guard let number = BN_bin2bn(serial, Int32(serial.count), nil) else {
            throw openSSLFailure(.internalFailure, "creating the serial number failed")
        }
        defer { BN_free(number) }
        guard BN_to_ASN1_INTEGER(number, X509_get_serialNumber(certificate)) != nil else {
            throw openSSLFailure(.internalFailure, "setting the serial number failed")
        }
    }

    static func addExtension(
        _ certificate: OpaquePointer,
        _ context: inout X509V3_CTX,
        _ nid: Int32,
        _ value: String
    ) throws {
        guard let fileExtension = X509V3_EXT_nconf_nid(nil, &context, nid, value) else {
            throw openSSLFailure(.internalFailure, "building certificate extension \(nid) = \(value) failed")
        }
        defer { X509_EXTENSION_free(fileExtension) }
        try check(X509_add_ext(certificate, fileExtension, -1), "adding certificate extension \(value)")
    }

    static func addSubjectAlternativeNames(
        _ certificate: OpaquePointer,
        dnsNames: [String],
        addresses: [[UInt8]]
    ) throws {
        guard let names = shim_GENERAL_NAMES_new_null() else {
            throw openSSLFailure(.internalFailure, "allocating the subjectAltName list failed")
        }
        defer { GENERAL_NAMES_free(names) }

        func append(type: Int32, bytes: [UInt8], makeString: () -> UnsafeMutablePointer<ASN1_STRING>?) throws {
            guard let string = makeString() else {
                throw openSSLFailure(.internalFailure, "allocating a subjectAltName entry failed")
            }
            guard ASN1_STRING_set(string, bytes, Int32(bytes.count)) == 1, let entry = GENERAL_NAME_new() else {
                ASN1_STRING_free(string)
                throw openSSLFailure(.internalFailure, "filling a subjectAltName entry failed")
            }
            // From here the entry owns the string, and once pushed the list owns the entry.
            GENERAL_NAME_set0_value(entry, type, UnsafeMutableRawPointer(string))
            guard shim_GENERAL_NAMES_push(names, entry) > 0 else {
                GENERAL_NAME_free(entry)
                throw openSSLFailure(.internalFailure, "adding a subjectAltName entry failed")
            }
        }
        for name in dnsNames {
            try append(type: GEN_DNS, bytes: Array(name.utf8)) { ASN1_IA5STRING_new() }
        }
        for address in addresses {
            try append(type: GEN_IPADD, bytes: address) { ASN1_OCTET_STRING_new() }
        }
        try check(
            X509_add1_ext_i2d(
                certificate,
                NID_subject_alt_name,
                UnsafeMutableRawPointer(names),
                0,
                UInt(X509V3_ADD_DEFAULT)
            ),
            "adding the subjectAltName extension"
        )
    }

    static func writePEM(_ what: String, _ write: (OpaquePointer) -> Int32) throws -> String {
        guard let bio = BIO_new(BIO_s_mem()) else {
            throw openSSLFailure(.internalFailure, "allocating a memory BIO failed")
        }
        defer { BIO_free(bio) }
        guard write(bio) == 1 else {
            throw openSSLFailure(.internalFailure, "writing \(what) as PEM failed")
        }
        return memoryBIOString(bio)
    }

    static func isValidDNSName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (1...253).contains(bytes.count), bytes.first != UInt8(ascii: "."), bytes.last != UInt8(ascii: ".")
        else {
            return false
        }
        return bytes.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "*"):
                true
            default:
                false
            }
        }
    }

    /// Parses IPv4 or IPv6 text into the 4 or 16 network-order bytes a subjectAltName iPAddress holds.
    static func parseIPAddress(_ text: String) throws -> [UInt8] {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { Array($0) }
        }
        throw CryptoError(
            code: .invalidArgument,
            message: "\"\(text)\" is not an IPv4 or IPv6 address; put host names in dnsNames instead"
        )
    }
}

/// Public-key pins for certificate pinning: `"sha256:"` + lowercase hex SHA-256 of the DER SubjectPublicKeyInfo.
///
/// Pinning the key rather than the certificate keeps the pin valid when the certificate is re-issued for the
/// same key.
public enum PublicKeyPin {
    /// The pin of the first certificate in `certificatePEM`.
    public static func sha256(certificatePEM: String) throws -> String {
        sha256(spkiDER: try subjectPublicKeyInfo(certificatePEM: certificatePEM))
    }

    /// The pin of a DER-encoded SubjectPublicKeyInfo.
    public static func sha256(spkiDER: [UInt8]) -> String {
        "sha256:" + SHA256Hasher.hash(spkiDER).hexString
    }

    /// The DER SubjectPublicKeyInfo of the first certificate in `certificatePEM`.
    public static func subjectPublicKeyInfo(certificatePEM: String) throws -> [UInt8] {
        let pem = Array(certificatePEM.utf8)
        let certificate: OpaquePointer? = withNonNullBytes(pem) { base, count in
            guard let bio = BIO_new_mem_buf(base, Int32(count)) else {
                return nil
            }
            defer { BIO_free(bio) }
            return PEM_read_bio_X509(bio, nil, nil, nil)
        }
        guard let certificate else {
            throw openSSLFailure(
                .invalidCertificate,
                "the text is not a PEM certificate (expected -----BEGIN CERTIFICATE-----)"
            )
        }
        defer { X509_free(certificate) }
        guard let key = X509_get0_pubkey(certificate) else {
            throw openSSLFailure(.invalidCertificate, "the certificate's public key cannot be decoded")
        }
        let length = i2d_PUBKEY(key, nil)
        guard length > 0 else {
            throw openSSLFailure(.invalidCertificate, "encoding the certificate's public key failed")
        }
        return try [UInt8](unsafeUninitializedCapacity: Int(length)) { buffer, initialized in
            var cursor = buffer.baseAddress
            guard i2d_PUBKEY(key, &cursor) == length else {
                throw openSSLFailure(.internalFailure, "encoding the certificate's public key failed")
            }
            initialized = Int(length)
        }
    }
}
