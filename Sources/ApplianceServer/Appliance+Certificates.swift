import ApplianceAPI
import ApplianceCrypto
import ApplianceStore
import Foundation
import HTTPTypes
import NIOCore
import NIOSSL
import Synchronization

/// A4: certificates — list with warnings, import, export, delete, assign.
extension Appliance {
    func certificateEntries() throws -> [CertificateEntry] {
        let hostname = try box.networkSettings().hostname
        let addresses = try box.addresses()
        let factoryId = try box.factoryCertificate().id
        return try box.certificates().map { certificate in
            let assigned = addresses.filter { ($0.certificateId ?? factoryId) == certificate.id }.map(\.address)
            return try entry(certificate, hostname: hostname, assignedTo: assigned)
        }
    }

    func entry(_ certificate: StoredCertificate, hostname: String, assignedTo: [String]) throws -> CertificateEntry {
        let material = Self.material(certificate)
        let (info, findings) = try CertificateInspector.inspect(material, hostname: hostname)
        return CertificateEntry(
            id: certificate.id,
            name: certificate.name,
            isFactory: certificate.isFactory,
            hasPrivateKey: certificate.privateKeyPEM != nil,
            chainLength: material.chainPEM.count,
            details: CertificateDetails(
                subject: info.subject,
                commonName: info.commonName,
                issuer: info.issuer,
                serialHex: info.serialHex,
                notBefore: info.notBefore,
                notAfter: info.notAfter,
                dnsNames: info.dnsNames,
                ipAddresses: info.ipAddresses,
                keyType: info.keyType,
                keyBits: info.keyBits,
                isSelfSigned: info.isSelfSigned,
                isCA: info.isCA,
                sha256Fingerprint: info.sha256Fingerprint,
                pin: info.pin
            ),
            warnings: findings.map { CertificateWarningEntry(code: $0.warning.rawValue, message: $0.message) },
            assignedTo: assignedTo.sorted()
        )
    }

    static func material(_ certificate: StoredCertificate) -> CertificateMaterial {
        CertificateMaterial(
            certificatePEM: certificate.certificatePEM,
            chainPEM: pemBlocks(certificate.chainPEM),
            privateKeyPEM: certificate.privateKeyPEM
        )
    }

    /// Splits concatenated PEM certificates into single blocks.
    static func pemBlocks(_ text: String) -> [String] {
        let end = "-----END CERTIFICATE-----"
        return text.components(separatedBy: end).compactMap { part in
            guard let start = part.range(of: "-----BEGIN CERTIFICATE-----") else { return nil }
            return String(part[start.lowerBound...]) + end + "\n"
        }
    }

    func importCertificate(_ request: CertificateImportRequest) throws -> CertificateEntry {
        let name = request.name.trimmingCharacters(in: .whitespaces)
        guard !name.isEmpty, request.name.unicodeScalars.count <= 128 else {
            throw ApplianceServerError.badRequest("give the certificate a name of 1 to 128 characters")
        }
        let material: CertificateMaterial
        switch (request.pem, request.pkcs12Base64) {
        case (let pem?, nil):
            material = try CertificateImport.pemBundle(pem, passphrase: request.passphrase)
        case (nil, let encoded?):
            guard let der = Data(base64Encoded: encoded) else {
                throw ApplianceServerError.badRequest(
                    "pkcs12Base64 is not base64; send the PKCS#12 file base64-encoded"
                )
            }
            material = try CertificateImport.pkcs12(Array(der), passphrase: request.passphrase ?? "")
        default:
            throw ApplianceServerError.badRequest("send exactly one of pem (a PEM bundle) or pkcs12Base64")
        }
        let stored = try box.addCertificate(
            name: name,
            certificatePEM: material.certificatePEM,
            privateKeyPEM: material.privateKeyPEM,
            chainPEM: material.chainPEM.joined()
        )
        return try entry(stored, hostname: try box.networkSettings().hostname, assignedTo: [])
    }

    func exportCertificate(id: Int64, _ request: CertificateExportRequest) throws -> (String, [UInt8]) {
        let certificate = try box.certificate(id: id)
        let material = Self.material(certificate)
        let passphrase = request.passphrase.flatMap { $0.isEmpty ? nil : $0 }
        switch request.format {
        case .pem:
            let text = try CertificateExport.pem(
                material,
                includeChain: request.includeChain,
                includeKey: request.includeKey,
                passphrase: passphrase
            )
            return ("application/x-pem-file", Array(text.utf8))
        case .pkcs12:
            guard let passphrase else {
                throw ApplianceServerError.badRequest("a PKCS#12 export needs a passphrase")
            }
            let bytes = try CertificateExport.pkcs12(
                material,
                includeChain: request.includeChain,
                passphrase: passphrase,
                friendlyName: certificate.name
            )
            return ("application/x-pkcs12", bytes)
        }
    }

    func deleteCertificate(id: Int64) throws {
        try box.deleteCertificate(id: id)
    }

    /// Assigns a certificate to an address; its listener serves it from the next handshake.
    func assignCertificate(_ certificateId: Int64?, toAddress addressId: Int64) async throws -> AddressEntry {
        if let certificateId {
            // Refuse what cannot serve TLS (proved by a handshake in memory) before anything is saved.
            _ = try ServedCertificates.identity(try box.certificate(id: certificateId))
        }
        try box.assignCertificate(certificateId, toAddress: addressId)
        try served.reload(from: box)
        guard let address = try box.addresses().first(where: { $0.id == addressId }) else {
            throw ApplianceServerError.notFound("address entry \(addressId) vanished")
        }
        return entry(address, listening: await listeners.addresses)
    }
}
