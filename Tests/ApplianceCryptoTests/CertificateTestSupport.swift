import ApplianceCrypto
import Foundation
import Testing

/// A PKI built at test time: root CA → intermediate CA → leaf for appliance.example.test and 127.0.0.1.
/// Nothing is checked in; every test run makes fresh keys.
struct TestPKI {
    static let hostname = "appliance.example.test"
    static let address = "127.0.0.1"

    /// The reference time for dates in the PKI; pass it to `CertificateInspector.inspect(now:)`.
    let now: Date
    let rootKey: String
    let root: String
    let intermediateKey: String
    let intermediate: String
    let leafKey: String
    let leaf: String

    /// The good material: leaf, full chain (issuer first) and key.
    var material: CertificateMaterial {
        CertificateMaterial(certificatePEM: leaf, chainPEM: [intermediate, root], privateKeyPEM: leafKey)
    }

    init(now: Date = Date()) throws {
        self.now = now
        rootKey = try CertificateIssuer.makeKey(.ecP256)
        root = try CertificateIssuer.issue(
            subjectCommonName: "Test Root CA",
            dnsNames: [],
            ipAddresses: [],
            isCA: true,
            notBefore: now - 86_400,
            notAfter: now + 3_650 * 86_400,
            subjectKeyPEM: rootKey,
            issuerCertificatePEM: nil,
            issuerKeyPEM: rootKey
        )
        intermediateKey = try CertificateIssuer.makeKey(.ecP256)
        intermediate = try CertificateIssuer.issue(
            subjectCommonName: "Test Intermediate CA",
            dnsNames: [],
            ipAddresses: [],
            isCA: true,
            notBefore: now - 86_400,
            notAfter: now + 1_825 * 86_400,
            subjectKeyPEM: intermediateKey,
            issuerCertificatePEM: root,
            issuerKeyPEM: rootKey
        )
        leafKey = try CertificateIssuer.makeKey(.ecP256)
        leaf = try CertificateIssuer.issue(
            subjectCommonName: Self.hostname,
            dnsNames: [Self.hostname],
            ipAddresses: [Self.address],
            isCA: false,
            notBefore: now - 3_600,
            notAfter: now + 365 * 86_400,
            subjectKeyPEM: leafKey,
            issuerCertificatePEM: intermediate,
            issuerKeyPEM: intermediateKey
        )
    }

    /// Another leaf issued by the intermediate, with its own key; returned as material with the full chain.
    func issueLeaf(
        keyType: CertificateIssuer.KeyType = .ecP256,
        dnsNames: [String] = [TestPKI.hostname],
        ipAddresses: [String] = [TestPKI.address],
        notBefore: Date? = nil,
        notAfter: Date? = nil
    ) throws -> CertificateMaterial {
        let key = try CertificateIssuer.makeKey(keyType)
        let certificate = try CertificateIssuer.issue(
            subjectCommonName: dnsNames.first ?? "leaf",
            dnsNames: dnsNames,
            ipAddresses: ipAddresses,
            isCA: false,
            notBefore: notBefore ?? now - 3_600,
            notAfter: notAfter ?? now + 365 * 86_400,
            subjectKeyPEM: key,
            issuerCertificatePEM: intermediate,
            issuerKeyPEM: intermediateKey
        )
        return CertificateMaterial(certificatePEM: certificate, chainPEM: [intermediate, root], privateKeyPEM: key)
    }

    /// The warnings `inspect` reports for `material` at `now`.
    func warnings(_ material: CertificateMaterial, hostname: String = TestPKI.hostname) throws -> [CertificateWarning] {
        try CertificateInspector.inspect(material, hostname: hostname, now: now).findings.map(\.warning)
    }
}

/// The openssl command-line tool, run through Foundation's Process, with files in a scratch directory.
struct OpenSSLCommand {
    let executable: String
    let directory: URL

    init() throws {
        executable = try #require(ExternalTool.find("openssl"), "the openssl CLI is needed: apt-get install openssl")
        directory = try ExternalTool.temporaryDirectory()
    }

    /// Removes the scratch directory.
    func cleanUp() {
        try? FileManager.default.removeItem(at: directory)
    }

    /// Writes `text` to a file in the scratch directory and returns its path.
    @discardableResult
    func write(_ name: String, _ text: String) throws -> String {
        try write(name, Array(text.utf8))
    }

    @discardableResult
    func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        let url = directory.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url.path
    }

    func read(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: directory.appendingPathComponent(name)))
    }

    func path(_ name: String) -> String {
        directory.appendingPathComponent(name).path
    }

    /// Runs `openssl arguments…` and requires it to succeed; returns standard output.
    @discardableResult
    func run(_ arguments: [String], input: [UInt8] = []) throws -> String {
        let result = try ExternalTool.run(executable, arguments, input: input)
        try #require(result.status == 0, "openssl \(arguments.joined(separator: " ")) failed: \(result.stderr)")
        return result.stdoutText
    }

    /// The public key of a certificate or private key file as PEM, for comparing keys.
    func publicKey(ofCertificate path: String) throws -> String {
        try run(["x509", "-in", path, "-noout", "-pubkey"])
    }

    func publicKey(ofKey path: String, passphrase: String? = nil) throws -> String {
        var arguments = ["pkey", "-in", path, "-pubout"]
        if let passphrase {
            arguments += ["-passin", "pass:\(passphrase)"]
        }
        return try run(arguments)
    }
}

/// Whether `error` is a CryptoError with `code`.
func isCryptoError(_ error: any Error, _ code: CryptoError.Code) -> Bool {
    (error as? CryptoError)?.code == code
}

/// The certificate PEM blocks in `text`, in order.
func certificateBlocks(_ text: String) -> [String] {
    let begin = "-----BEGIN CERTIFICATE-----"
    let end = "-----END CERTIFICATE-----\n"
    var blocks: [String] = []
    var rest = Substring(text)
    while let start = rest.range(of: begin), let stop = rest.range(of: end, range: start.upperBound..<rest.endIndex) {
        blocks.append(String(rest[start.lowerBound..<stop.upperBound]))
        rest = rest[stop.upperBound...]
    }
    return blocks
}
