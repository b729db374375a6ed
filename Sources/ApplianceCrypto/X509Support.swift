import COpenSSL

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Certificates and at most one private key decoded from the caller's input. Owns the OpenSSL objects and frees
/// them when it goes away, so every exit path of an import or inspection cleans up.
final class X509Credentials {
    private(set) var certificates: [OpaquePointer] = []
    private(set) var key: OpaquePointer?

    init() {}

    deinit {
        for certificate in certificates {
            X509_free(certificate)
        }
        if let key {
            EVP_PKEY_free(key)
        }
    }

    /// Takes ownership of `certificate`.
    func append(certificate: OpaquePointer) {
        certificates.append(certificate)
    }

    /// Takes ownership of `key`; the caller has checked there is no key yet.
    func set(key: OpaquePointer) {
        precondition(self.key == nil, "X509Credentials holds one key")
        self.key = key
    }
}

/// OpenSSL plumbing shared by the certificate import, inspection, export and issuing code.
enum X509Support {
    /// One PEM block: its type from the BEGIN line, its RFC 1421 headers (encrypted legacy keys have
    /// "Proc-Type: 4,ENCRYPTED") and the decoded bytes.
    struct PEMBlock {
        var name: String
        var header: String
        var der: [UInt8]
    }

    /// Calls `body` with a read-only memory BIO over `bytes`.
    static func withMemoryBIO<Result>(_ bytes: [UInt8], _ body: (OpaquePointer) throws -> Result) throws -> Result {
        guard bytes.count < Int(Int32.max) else {
            throw CryptoError(code: .invalidArgument, message: "the input of \(bytes.count) bytes is too large")
        }
        return try withNonNullBytes(bytes) { base, count in
            guard let bio = BIO_new_mem_buf(base, Int32(count)) else {
                throw openSSLFailure(.internalFailure, "allocating a memory BIO failed")
            }
            defer { BIO_free(bio) }
            return try body(bio)
        }
    }

    /// Splits PEM text into its blocks. Text outside the blocks (comments, `openssl x509 -text` output) is skipped.
    static func readPEMBlocks(_ text: String) throws -> [PEMBlock] {
        ERR_clear_error()
        return try withMemoryBIO(Array(text.utf8)) { bio in
            var blocks: [PEMBlock] = []
            while true {
                var name: UnsafeMutablePointer<CChar>?
                var header: UnsafeMutablePointer<CChar>?
                var data: UnsafeMutablePointer<UInt8>?
                var length = 0
                guard PEM_read_bio(bio, &name, &header, &data, &length) == 1 else {
                    if shim_ERR_last_is_pem_no_start_line() != 0 {
                        // The normal end of the input: no further "-----BEGIN" line.
                        ERR_clear_error()
                        return blocks
                    }
                    throw openSSLFailure(
                        .invalidCertificate,
                        "PEM block \(blocks.count + 1) of the text is damaged; copy the PEM text again, "
                            + "including the -----BEGIN and -----END lines"
                    )
                }
                defer {
                    shim_OPENSSL_free(name)
                    shim_OPENSSL_free(header)
                    shim_OPENSSL_free(data)
                }
                blocks.append(
                    PEMBlock(
                        name: name.map { String(cString: $0) } ?? "",
                        header: header.map { String(cString: $0) } ?? "",
                        der: data.map { Array(UnsafeBufferPointer(start: $0, count: length)) } ?? []
                    )
                )
            }
        }
    }

    /// Writes one PEM block back out as text, headers included.
    static func pemText(_ block: PEMBlock) throws -> String {
        try memoryText("writing a PEM block") { bio in
            let written = withNonNullBytes(block.der) { base, count in
                PEM_write_bio(bio, block.name, block.header, base, count)
            }
            return written > 0
        }
    }

    /// Whatever `write` puts into a fresh memory BIO, as text; `write` returns false when it fails.
    static func memoryText(_ what: String, _ write: (OpaquePointer) -> Bool) throws -> String {
        guard let bio = BIO_new(BIO_s_mem()) else {
            throw openSSLFailure(.internalFailure, "allocating a memory BIO failed")
        }
        defer { BIO_free(bio) }
        guard write(bio) else {
            throw openSSLFailure(.internalFailure, "\(what) failed")
        }
        return memoryBIOString(bio)
    }

    /// Decodes a DER certificate. The caller owns the result.
    static func decodeCertificate(der: [UInt8], trusted: Bool = false) -> OpaquePointer? {
        withNonNullBytes(der) { base, count -> OpaquePointer? in
            var cursor: UnsafePointer<UInt8>? = base
            return trusted ? d2i_X509_AUX(nil, &cursor, count) : d2i_X509(nil, &cursor, count)
        }
    }

    /// Decodes the first certificate in `pem`. The caller owns the result.
    static func readCertificate(pem: String, what: String) throws -> OpaquePointer {
        ERR_clear_error()
        let certificate = try withMemoryBIO(Array(pem.utf8)) { bio in
            PEM_read_bio_X509(bio, nil, shim_passphrase_callback, nil)
        }
        guard let certificate else {
            throw openSSLFailure(
                .invalidCertificate,
                "\(what) is not a PEM certificate (expected -----BEGIN CERTIFICATE-----)"
            )
        }
        return certificate
    }

    /// Decodes one private key from PEM text (PKCS#8, encrypted PKCS#8, or traditional RSA/EC/DSA, including
    /// legacy "Proc-Type: 4,ENCRYPTED" keys). Never prompts: without a passphrase an encrypted key is refused.
    /// The caller owns the result.
    static func readPrivateKey(pem: [UInt8], passphrase: String?, what: String = "the private key") throws
        -> OpaquePointer
    {
        ERR_clear_error()
        let secret = passphrase.map { Array($0.utf8).map { CChar(bitPattern: $0) } } ?? []
        guard secret.count < 1024 else {
            throw CryptoError(
                code: .invalidArgument,
                message: "the passphrase is \(secret.count) bytes; OpenSSL accepts at most 1023"
            )
        }
        var source = shim_passphrase_source(passphrase: nil, length: 0, requested: 0)
        let key = try withMemoryBIO(pem) { bio in
            secret.withUnsafeBufferPointer { buffer -> OpaquePointer? in
                source.passphrase = buffer.baseAddress
                source.length = Int32(buffer.count)
                return shim_PEM_read_bio_PrivateKey(bio, &source)
            }
        }
        if let key {
            ERR_clear_error()
            return key
        }
        if source.requested != 0 {
            _ = drainOpenSSLErrors()
            if secret.isEmpty {
                throw CryptoError(code: .passphraseRequired, message: "\(what) is encrypted; give its passphrase")
            }
            throw CryptoError(
                code: .wrongPassphrase,
                message: "the passphrase does not decrypt \(what); check the passphrase and try again"
            )
        }
        throw openSSLFailure(
            .invalidCertificate,
            "\(what) cannot be decoded; give it as PEM (PKCS#8 or traditional RSA/EC)"
        )
    }

    /// The certificate as PEM text.
    static func certificatePEM(_ certificate: OpaquePointer) throws -> String {
        try SelfSignedCertificate.writePEM("the certificate") { PEM_write_bio_X509($0, certificate) }
    }

    /// The key as unencrypted PKCS#8 PEM.
    static func privateKeyPEM(_ key: OpaquePointer) throws -> String {
        try SelfSignedCertificate.writePEM("the private key") {
            PEM_write_bio_PKCS8PrivateKey($0, key, nil, nil, 0, nil, nil)
        }
    }

    /// The DER encoding of a certificate.
    static func certificateDER(_ certificate: OpaquePointer) throws -> [UInt8] {
        let length = i2d_X509(certificate, nil)
        guard length > 0 else {
            throw openSSLFailure(.internalFailure, "encoding the certificate as DER failed")
        }
        return try [UInt8](unsafeUninitializedCapacity: Int(length)) { buffer, initialized in
            var cursor = buffer.baseAddress
            guard i2d_X509(certificate, &cursor) == length else {
                throw openSSLFailure(.internalFailure, "encoding the certificate as DER failed")
            }
            initialized = Int(length)
        }
    }

    /// The DER SubjectPublicKeyInfo of a certificate's key.
    static func subjectPublicKeyInfoDER(_ certificate: OpaquePointer) throws -> [UInt8] {
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

    /// Whether the certificate says it is a CA (basicConstraints CA:TRUE).
    static func isCA(_ certificate: OpaquePointer) -> Bool {
        let flags = X509_get_extension_flags(certificate)
        ERR_clear_error()
        return flags & UInt32(EXFLAG_CA) != 0
    }

    /// Whether `issuer` plausibly issued `subject`: names match, key identifiers agree and the issuer may sign
    /// certificates. The signature is not checked.
    static func isIssuer(_ issuer: OpaquePointer, of subject: OpaquePointer) -> Bool {
        let result = X509_check_issued(issuer, subject)
        ERR_clear_error()
        return result == X509_V_OK
    }

    /// Issuer name equals subject name and the certificate's own key verifies its signature.
    static func isSelfSigned(_ certificate: OpaquePointer) -> Bool {
        defer { ERR_clear_error() }
        guard X509_NAME_cmp(X509_get_issuer_name(certificate), X509_get_subject_name(certificate)) == 0,
            let key = X509_get0_pubkey(certificate)
        else {
            return false
        }
        return X509_verify(certificate, key) == 1
    }

    /// Whether the certificate's public key is the public half of `key`.
    static func publicKeyMatches(_ certificate: OpaquePointer, _ key: OpaquePointer) -> Bool {
        defer { ERR_clear_error() }
        guard let publicKey = X509_get0_pubkey(certificate) else {
            return false
        }
        return EVP_PKEY_eq(publicKey, key) == 1
    }

    /// A name in the one-line form `openssl x509 -subject` prints ("CN = example, O = Org").
    static func oneLine(_ name: OpaquePointer?) throws -> String {
        guard let name else {
            return ""
        }
        return try memoryText("printing a certificate name") { bio in
            X509_NAME_print_ex(bio, name, 0, shim_XN_FLAG_ONELINE_UTF8()) >= 0
        }
    }

    /// The first commonName in `name`, as UTF-8, or nil.
    static func commonName(_ name: OpaquePointer?) -> String? {
        guard let name else {
            return nil
        }
        let index = X509_NAME_get_index_by_NID(name, NID_commonName, -1)
        guard index >= 0, let entry = X509_NAME_get_entry(name, index),
            let data = X509_NAME_ENTRY_get_data(entry)
        else {
            return nil
        }
        var utf8: UnsafeMutablePointer<UInt8>?
        let length = ASN1_STRING_to_UTF8(&utf8, data)
        guard length >= 0, let utf8 else {
            ERR_clear_error()
            return nil
        }
        defer { shim_OPENSSL_free(utf8) }
        return String(decoding: UnsafeBufferPointer(start: utf8, count: Int(length)), as: UTF8.self)
    }

    /// The subjectAltName DNS names and IP addresses (as text) of a certificate.
    static func subjectAlternativeNames(_ certificate: OpaquePointer) -> (dnsNames: [String], ipAddresses: [String]) {
        guard let raw = X509_get_ext_d2i(certificate, NID_subject_alt_name, nil, nil) else {
            ERR_clear_error()
            return ([], [])
        }
        let names = OpaquePointer(raw)
        defer { GENERAL_NAMES_free(names) }
        var dnsNames: [String] = []
        var ipAddresses: [String] = []
        for index in 0..<shim_GENERAL_NAMES_count(names) {
            guard let entry = shim_GENERAL_NAMES_value(names, index) else {
                continue
            }
            var type: Int32 = 0
            guard let value = GENERAL_NAME_get0_value(entry, &type) else {
                continue
            }
            let string = value.assumingMemoryBound(to: ASN1_STRING.self)
            let length = Int(ASN1_STRING_length(string))
            guard let data = ASN1_STRING_get0_data(string), length >= 0 else {
                continue
            }
            let bytes = Array(UnsafeBufferPointer(start: data, count: length))
            switch type {
            case GEN_DNS:
                dnsNames.append(String(decoding: bytes, as: UTF8.self))
            case GEN_IPADD:
                if let text = ipAddressText(bytes) {
                    ipAddresses.append(text)
                }
            default:
                break
            }
        }
        return (dnsNames, ipAddresses)
    }

    /// 4 or 16 network-order bytes as IPv4 or IPv6 text.
    static func ipAddressText(_ bytes: [UInt8]) -> String? {
        let family: Int32
        switch bytes.count {
        case 4: family = AF_INET
        case 16: family = AF_INET6
        default: return nil
        }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        let ok = bytes.withUnsafeBytes { source in
            buffer.withUnsafeMutableBufferPointer { target in
                inet_ntop(family, source.baseAddress, target.baseAddress, socklen_t(target.count)) != nil
            }
        }
        guard ok else {
            return nil
        }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Seconds since 1970 of an ASN1_TIME.
    static func secondsSince1970(_ time: UnsafePointer<ASN1_TIME>?) throws -> Int {
        var parts = tm()
        guard let time, ASN1_TIME_to_tm(time, &parts) == 1 else {
            throw openSSLFailure(.invalidCertificate, "the certificate has an unreadable validity date")
        }
        return Int(timegm(&parts))
    }

    /// "2026-12-04" for a time in seconds since 1970, in UTC.
    static func dayText(secondsSince1970 seconds: Int) -> String {
        var time = time_t(seconds)
        var parts = tm()
        guard gmtime_r(&time, &parts) != nil else {
            return "\(seconds)"
        }
        func pad(_ value: Int32, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))"
    }

    /// The display name of a key type: "RSA", "RSA-PSS", "EC", "Ed25519", "Ed448", "DSA", or OpenSSL's name.
    static func keyTypeName(_ key: OpaquePointer) -> String {
        switch EVP_PKEY_get_base_id(key) {
        case EVP_PKEY_RSA: return "RSA"
        case EVP_PKEY_RSA_PSS: return "RSA-PSS"
        case EVP_PKEY_EC: return "EC"
        case EVP_PKEY_ED25519: return "Ed25519"
        case EVP_PKEY_ED448: return "Ed448"
        case EVP_PKEY_DSA: return "DSA"
        default:
            guard let name = EVP_PKEY_get0_type_name(key) else {
                return "unknown"
            }
            return String(cString: name)
        }
    }
}
