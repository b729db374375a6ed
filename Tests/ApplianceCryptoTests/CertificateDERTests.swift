import ApplianceCrypto
import Foundation
import Testing

/// Issue 11 §2: a DER certificate where PEM is expected is read, or refused with how to convert it.
@Suite struct CertificateDERTests {
    /// The DER bytes inside a PEM certificate.
    static func der(_ pem: String) throws -> [UInt8] {
        let body = pem.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
        return Array(try #require(Data(base64Encoded: body)))
    }

    @Test func aDERFileBecomesPEM() throws {
        let pki = try TestPKI()
        let der = try Self.der(pki.leaf)
        #expect(String(validating: der, as: UTF8.self) == nil, "DER is not UTF-8 text, which is what used to fail")
        let pem = try CertificateImport.pemText(fileContents: der, fileName: "site.cer")
        #expect(pem == pki.leaf)
        let material = try CertificateImport.pemBundle(pem, passphrase: nil)
        #expect(material.certificatePEM == pki.leaf)
        // PEM files pass through untouched.
        #expect(try CertificateImport.pemText(fileContents: Array(pki.leaf.utf8), fileName: "a.pem") == pki.leaf)
    }

    @Test func aFileThatIsNeitherSaysHowToConvert() throws {
        let pki = try TestPKI()
        var damaged = try Self.der(pki.leaf)
        damaged.removeLast(10)
        for bytes in [damaged, [0xFF, 0xFE, 0x00, 0x01]] {
            let error = try #require(throws: CryptoError.self) {
                try CertificateImport.pemText(fileContents: bytes, fileName: "site.cer")
            }
            #expect(error.code == .invalidCertificate)
            #expect(error.message.contains("openssl x509 -inform der -in site.cer -out site.cer.pem"), "\(error)")
        }
    }

    @Test func bareBase64DERIsReadAndBinaryTextIsRefused() throws {
        let pki = try TestPKI()
        let der = try Self.der(pki.leaf)
        let base64 = Data(der).base64EncodedString(options: .lineLength64Characters)
        let material = try CertificateImport.pemBundle(base64 + "\n", passphrase: nil)
        #expect(material.certificatePEM == pki.leaf)

        // DER decoded as if it were text (what a script reading the file as a string sends).
        let mangled = String(decoding: der, as: UTF8.self)
        let error = try #require(throws: CryptoError.self) {
            try CertificateImport.pemBundle(mangled, passphrase: nil)
        }
        #expect(error.message.contains("this is DER"), "\(error)")
        #expect(error.message.contains("openssl x509 -inform der"), "\(error)")
    }
}
