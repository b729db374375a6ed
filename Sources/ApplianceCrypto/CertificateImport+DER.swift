import COpenSSL
import Foundation

/// DER (binary) certificates where PEM text is expected: a `.der`/`.cer` file exported from Windows or a browser.
extension CertificateImport {
    /// The PEM text of a certificate file: PEM as it is, a DER certificate converted to PEM.
    ///
    /// - Parameters:
    ///   - bytes: the file's contents.
    ///   - fileName: shown in the message when the file is neither.
    /// - Throws: `CryptoError` `.invalidCertificate` saying how to convert the file.
    public static func pemText(fileContents bytes: [UInt8], fileName: String) throws -> String {
        if let text = String(validating: bytes, as: UTF8.self), text.contains("-----BEGIN") {
            return text
        }
        if let pem = try derCertificateAsPEM(bytes) {
            return pem
        }
        throw CryptoError(
            code: .invalidCertificate,
            message: "\(fileName) is neither PEM text (-----BEGIN CERTIFICATE-----) nor a DER certificate; if it is "
                + "DER, convert it with openssl x509 -inform der -in \(fileName) -out \(fileName).pem, "
                + "if it is PKCS#12 (.p12/.pfx), import it with --pkcs12"
        )
    }

    /// A whole DER-encoded X.509 certificate written out as PEM; nil when `der` is not one.
    static func derCertificateAsPEM(_ der: [UInt8]) throws -> String? {
        guard der.first == 0x30 else { return nil }
        var consumed = 0
        let decoded = withNonNullBytes(der) { base, count -> OpaquePointer? in
            var cursor: UnsafePointer<UInt8>? = base
            let certificate = d2i_X509(nil, &cursor, count)
            if let cursor { consumed = base.distance(to: cursor) }
            return certificate
        }
        ERR_clear_error()
        guard let certificate = decoded else { return nil }
        defer { X509_free(certificate) }
        guard consumed == der.count else { return nil }
        return try X509Support.certificatePEM(certificate)
    }

    /// Text without any PEM block: the base64 of a DER certificate (accepted), or binary DER that was sent as
    /// text (refused, saying how to convert it).
    static func certificateBlockFromBareText(_ text: String) throws -> X509Support.PEMBlock? {
        let compact = text.filter { !$0.isWhitespace }
        if !compact.isEmpty, let der = Data(base64Encoded: compact).map(Array.init),
            (try? derCertificateAsPEM(der)) ?? nil != nil
        {
            return X509Support.PEMBlock(name: "CERTIFICATE", header: "", der: der)
        }
        let binary = text.unicodeScalars.contains { scalar in
            scalar == "\u{FFFD}" || (scalar.value < 0x20 && !["\n", "\r", "\t"].contains(scalar))
        }
        if binary {
            throw CryptoError(
                code: .invalidCertificate,
                message: "this is DER (binary), not PEM text; convert it with "
                    + "openssl x509 -inform der -in FILE -out FILE.pem and import FILE.pem"
            )
        }
        return nil
    }
}
