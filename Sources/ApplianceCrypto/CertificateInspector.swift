import COpenSSL
public import Foundation

/// What an operator needs to know about a certificate, decoded once.
public struct CertificateInfo: Sendable, Equatable, Codable {
    /// The subject in one line, as `openssl x509 -subject` prints it ("CN = appliance, O = Example").
    public var subject: String
    /// The subject's commonName, or "" when it has none.
    public var commonName: String
    /// The issuer in one line.
    public var issuer: String
    /// The serial number as lowercase hex without separators ("-" first if it is negative).
    public var serialHex: String
    public var notBefore: Date
    public var notAfter: Date
    /// The subjectAltName DNS names, in certificate order.
    public var dnsNames: [String]
    /// The subjectAltName IP addresses as text (IPv6 in its compressed form), in certificate order.
    public var ipAddresses: [String]
    /// "RSA", "RSA-PSS", "EC", "Ed25519", "Ed448", "DSA", or OpenSSL's name for other key types.
    public var keyType: String
    public var keyBits: Int
    /// The issuer equals the subject and the certificate's own key verifies its signature.
    public var isSelfSigned: Bool
    /// basicConstraints says CA:TRUE.
    public var isCA: Bool
    /// Lowercase hex SHA-256 of the DER certificate, without separators.
    public var sha256Fingerprint: String
    /// The public-key pin in `PublicKeyPin` format, "sha256:<hex>".
    public var pin: String

    public init(
        subject: String,
        commonName: String,
        issuer: String,
        serialHex: String,
        notBefore: Date,
        notAfter: Date,
        dnsNames: [String],
        ipAddresses: [String],
        keyType: String,
        keyBits: Int,
        isSelfSigned: Bool,
        isCA: Bool,
        sha256Fingerprint: String,
        pin: String
    ) {
        self.subject = subject
        self.commonName = commonName
        self.issuer = issuer
        self.serialHex = serialHex
        self.notBefore = notBefore
        self.notAfter = notAfter
        self.dnsNames = dnsNames
        self.ipAddresses = ipAddresses
        self.keyType = keyType
        self.keyBits = keyBits
        self.isSelfSigned = isSelfSigned
        self.isCA = isCA
        self.sha256Fingerprint = sha256Fingerprint
        self.pin = pin
    }

    /// Decodes an OpenSSL certificate.
    init(certificate: OpaquePointer) throws {
        guard let key = X509_get0_pubkey(certificate) else {
            throw openSSLFailure(.invalidCertificate, "the certificate's public key cannot be decoded")
        }
        let names = X509Support.subjectAlternativeNames(certificate)
        self.init(
            subject: try X509Support.oneLine(X509_get_subject_name(certificate)),
            commonName: X509Support.commonName(X509_get_subject_name(certificate)) ?? "",
            issuer: try X509Support.oneLine(X509_get_issuer_name(certificate)),
            serialHex: Self.serialHex(certificate),
            notBefore: Date(
                timeIntervalSince1970: Double(try X509Support.secondsSince1970(X509_get0_notBefore(certificate)))
            ),
            notAfter: Date(
                timeIntervalSince1970: Double(try X509Support.secondsSince1970(X509_get0_notAfter(certificate)))
            ),
            dnsNames: names.dnsNames,
            ipAddresses: names.ipAddresses,
            keyType: X509Support.keyTypeName(key),
            keyBits: Int(EVP_PKEY_get_bits(key)),
            isSelfSigned: X509Support.isSelfSigned(certificate),
            isCA: X509Support.isCA(certificate),
            sha256Fingerprint: SHA256Hasher.hash(try X509Support.certificateDER(certificate)).hexString,
            pin: PublicKeyPin.sha256(spkiDER: try X509Support.subjectPublicKeyInfoDER(certificate))
        )
    }

    private static func serialHex(_ certificate: OpaquePointer) -> String {
        guard let serial = X509_get0_serialNumber(certificate), let data = ASN1_STRING_get0_data(serial) else {
            return ""
        }
        let bytes = Array(UnsafeBufferPointer(start: data, count: Int(ASN1_STRING_length(serial))))
        let sign = ASN1_STRING_type(serial) == V_ASN1_NEG_INTEGER ? "-" : ""
        return sign + (bytes.isEmpty ? "00" : bytes.hexString)
    }
}

/// Something about a certificate that an operator should fix or at least know about.
public enum CertificateWarning: String, Sendable, Codable, CaseIterable {
    /// notAfter is in the past.
    case expired
    /// notBefore is in the future.
    case notYetValid
    /// notAfter is within 30 days.
    case expiresSoon
    /// The certificate's subjectAltName does not cover the appliance's host name or address.
    case hostnameMismatch
    /// The chain does not lead from the leaf to a root CA included with it.
    case chainIncomplete
    /// There is no private key, so the certificate cannot serve TLS.
    case privateKeyMissing
    /// The private key does not belong to the certificate.
    case keyMismatch
    /// RSA below 2048 bits, DSA, or an elliptic curve below 224 bits.
    case weakKey
    /// Clients will not trust the certificate unless they pin or trust it explicitly.
    case selfSigned
}

/// One warning with a message for the operator that says what to do next.
public struct CertificateFinding: Sendable, Equatable, Codable {
    public var warning: CertificateWarning
    public var message: String

    public init(warning: CertificateWarning, message: String) {
        self.warning = warning
        self.message = message
    }
}

/// Checks certificate material before the appliance starts serving it.
public enum CertificateInspector {
    /// How close to notAfter `expiresSoon` starts.
    public static let expiryWarningInterval: TimeInterval = 30 * 86_400

    /// Decodes the leaf and lists every problem found, in `CertificateWarning` declaration order.
    ///
    /// - `hostname` is the name (or IPv4/IPv6 literal) clients use to reach the appliance; it is matched against
    ///   the subjectAltName only (wildcards in the leftmost label, as browsers do), never the commonName. An empty
    ///   hostname skips that check.
    /// - The chain is verified with the self-signed certificates in `chainPEM` as the only trusted roots and the
    ///   rest as intermediates, ignoring validity dates (those are reported on their own). A certificate from a
    ///   public CA therefore needs its root in the chain to pass.
    /// - Throws when the certificate, a chain certificate or the key cannot be decoded.
    public static func inspect(
        _ material: CertificateMaterial,
        hostname: String,
        now: Date = Date()
    ) throws -> (info: CertificateInfo, findings: [CertificateFinding]) {
        let leaf = try X509Support.readCertificate(pem: material.certificatePEM, what: "the certificate")
        defer { X509_free(leaf) }
        var chain: [OpaquePointer] = []
        defer {
            for certificate in chain {
                X509_free(certificate)
            }
        }
        for (index, pem) in material.chainPEM.enumerated() {
            chain.append(try X509Support.readCertificate(pem: pem, what: "chain certificate \(index + 1)"))
        }
        var key: OpaquePointer?
        defer {
            if let key {
                EVP_PKEY_free(key)
            }
        }
        if let privateKeyPEM = material.privateKeyPEM {
            key = try X509Support.readPrivateKey(pem: Array(privateKeyPEM.utf8), passphrase: nil)
        }

        let info = try CertificateInfo(certificate: leaf)
        var findings: [CertificateFinding] = []
        func add(_ warning: CertificateWarning, _ message: String) {
            findings.append(CertificateFinding(warning: warning, message: message))
        }

        let notAfterDay = X509Support.dayText(secondsSince1970: Int(info.notAfter.timeIntervalSince1970))
        let notBeforeDay = X509Support.dayText(secondsSince1970: Int(info.notBefore.timeIntervalSince1970))
        if info.notAfter < now {
            add(
                .expired,
                "expired \(days(now.timeIntervalSince(info.notAfter))) ago (\(notAfterDay)); "
                    + "import a renewed certificate"
            )
        }
        if info.notBefore > now {
            add(
                .notYetValid,
                "not valid until \(notBeforeDay) (in \(days(info.notBefore.timeIntervalSince(now)))); check the "
                    + "appliance clock, or import a certificate that is valid now"
            )
        }
        if info.notAfter >= now, info.notAfter.timeIntervalSince(now) <= expiryWarningInterval {
            add(
                .expiresSoon,
                "expires in \(days(info.notAfter.timeIntervalSince(now))) (\(notAfterDay)); "
                    + "import a renewed certificate"
            )
        }
        if let problem = hostnameProblem(leaf, info: info, hostname: hostname) {
            add(.hostnameMismatch, problem)
        }
        if !info.isSelfSigned, let problem = try chainProblem(leaf, chain: chain) {
            add(
                .chainIncomplete,
                "the chain does not lead to a root CA included with the certificate (\(problem)); import the "
                    + "certificate together with its intermediate and root CA certificates"
            )
        }
        if let key {
            let matches = X509_check_private_key(leaf, key) == 1
            ERR_clear_error()
            if !matches {
                add(
                    .keyMismatch,
                    "the private key does not belong to this certificate; import the key the certificate was "
                        + "issued for"
                )
            }
        } else {
            add(
                .privateKeyMissing,
                "there is no private key, so the certificate cannot serve TLS; import it together with its key"
            )
        }
        if let weakness = weakness(info) {
            add(.weakKey, "\(weakness); import a certificate with an RSA key of 2048 bits or more, or an EC P-256 key")
        }
        if info.isSelfSigned {
            add(
                .selfSigned,
                "the certificate is self-signed, so clients warn unless they trust or pin it; import a certificate "
                    + "issued by a CA your clients trust"
            )
        }
        return (info, findings)
    }

    /// "12 days", "1 day", or "less than a day", rounded to the nearest day.
    private static func days(_ interval: TimeInterval) -> String {
        let count = Int((interval / 86_400).rounded())
        switch count {
        case ..<1: return "less than a day"
        case 1: return "1 day"
        default: return "\(count) days"
        }
    }

    private static func hostnameProblem(_ leaf: OpaquePointer, info: CertificateInfo, hostname: String) -> String? {
        var host = hostname
        if host.hasPrefix("["), host.hasSuffix("]") {
            host = String(host.dropFirst().dropLast())
        }
        if host.hasSuffix(".") {
            host = String(host.dropLast())
        }
        guard !host.isEmpty else {
            return nil
        }
        defer { ERR_clear_error() }
        let isAddress = (try? SelfSignedCertificate.parseIPAddress(host)) != nil
        let matches =
            isAddress
            ? X509_check_ip_asc(leaf, host, 0) == 1
            : X509_check_host(
                leaf,
                host,
                host.utf8.count,
                UInt32(X509_CHECK_FLAG_NEVER_CHECK_SUBJECT | X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS),
                nil
            ) == 1
        if matches {
            return nil
        }
        let covered = info.dnsNames + info.ipAddresses
        let coveredText =
            covered.isEmpty
            ? "the certificate has no subjectAltName names or addresses"
            : "the certificate is for \(covered.joined(separator: ", "))"
        return "\(coveredText), not \(host); import a certificate whose subjectAltName includes \(host)"
    }

    /// OpenSSL's reason when the leaf does not verify up to a self-signed certificate from `chain`, else nil.
    private static func chainProblem(_ leaf: OpaquePointer, chain: [OpaquePointer]) throws -> String? {
        ERR_clear_error()
        guard let store = X509_STORE_new() else {
            throw openSSLFailure(.internalFailure, "allocating a certificate store failed")
        }
        defer { X509_STORE_free(store) }
        guard let untrusted = shim_X509_stack_new() else {
            throw openSSLFailure(.internalFailure, "allocating a certificate list failed")
        }
        // The list borrows the certificates; `chain` still owns them.
        defer { shim_X509_stack_free(untrusted) }
        for certificate in chain {
            if X509Support.isSelfSigned(certificate) {
                guard X509_STORE_add_cert(store, certificate) == 1 else {
                    throw openSSLFailure(.internalFailure, "adding a root certificate to the store failed")
                }
            } else {
                guard shim_X509_stack_push(untrusted, certificate) > 0 else {
                    throw openSSLFailure(.internalFailure, "adding an intermediate certificate failed")
                }
            }
        }
        guard let context = X509_STORE_CTX_new() else {
            throw openSSLFailure(.internalFailure, "allocating a verification context failed")
        }
        defer { X509_STORE_CTX_free(context) }
        guard X509_STORE_CTX_init(context, store, leaf, untrusted) == 1,
            let parameters = X509_STORE_CTX_get0_param(context)
        else {
            throw openSSLFailure(.internalFailure, "setting up certificate verification failed")
        }
        X509_VERIFY_PARAM_set_flags(parameters, UInt(X509_V_FLAG_NO_CHECK_TIME))
        X509_VERIFY_PARAM_clear_flags(parameters, UInt(X509_V_FLAG_PARTIAL_CHAIN))
        let verified = X509_verify_cert(context) == 1
        ERR_clear_error()
        if verified {
            return nil
        }
        let code = X509_STORE_CTX_get_error(context)
        guard let reason = X509_verify_cert_error_string(Int(code)) else {
            return "verification error \(code)"
        }
        return String(cString: reason)
    }

    private static func weakness(_ info: CertificateInfo) -> String? {
        switch info.keyType {
        case "RSA" where info.keyBits < 2048, "RSA-PSS" where info.keyBits < 2048:
            return "the \(info.keyType) key has only \(info.keyBits) bits"
        case "DSA":
            return "the certificate has a DSA key, which TLS clients no longer accept"
        case "EC" where info.keyBits < 224:
            return "the EC key has only \(info.keyBits) bits"
        default:
            return nil
        }
    }
}
