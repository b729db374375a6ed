import ApplianceAPI
import ApplianceClient
import ApplianceInventory
import BackupFormat
import Foundation
import ProcedureEngine
import SoftwarePackages

extension MigrationProcedure {
    // MARK: 3 Certificate

    /// The certificate the old box serves on the address we reach it by.
    func activeCertificate(_ connection: ApplianceConnection) async throws -> CertificateEntry {
        let certificates: [CertificateEntry] = try await connection.call(.listCertificates)
        let (pin, _) = try await PinnedHTTPClient.fetchPeerCertificate(host: old.host, port: old.port)
        guard let served = certificates.first(where: { $0.details.pin == pin.description }) else {
            throw MigrationError(.certificate, "\(old.name) serves a certificate it does not list; check it by hand")
        }
        return served
    }

    func moveCertificate() async throws -> [String: String] {
        let oldConnection = try await oldSession()
        let active = try await activeCertificate(oldConnection)
        if active.isFactory {
            environment.events(
                .note("\(old.name) serves its factory certificate; the new appliance keeps its own factory one")
            )
            return ["certificate": "factory"]
        }
        let newConnection = try await newSession()
        if let found = try await importedCopy(of: active, on: newConnection) { return certificateFacts(found) }
        let passphrase = secrets.certificatePassphrase ?? UUID().uuidString + UUID().uuidString
        let exported = try await oldConnection.send(
            .exportCertificate,
            parameters: ["id": "\(active.id)"],
            body: CertificateExportRequest(format: .pem, includeChain: true, includeKey: true, passphrase: passphrase)
        )
        let imported: CertificateEntry = try await newConnection.call(
            .importCertificate,
            body: CertificateImportRequest(
                name: active.name,
                pem: String(decoding: exported.body, as: UTF8.self),
                passphrase: passphrase
            )
        )
        return certificateFacts(imported)
    }

    /// The old box's certificate on the new box, if it was imported before.
    func importedCopy(of active: CertificateEntry, on connection: ApplianceConnection) async throws -> CertificateEntry?
    {
        let existing: [CertificateEntry] = try await connection.call(.listCertificates)
        return existing.first { $0.details.sha256Fingerprint == active.details.sha256Fingerprint }
    }

    /// The certificate step's result as the boxes show it: the old box's certificate already on the new box.
    func importedCertificate() async throws -> CertificateEntry? {
        let active = try await activeCertificate(try await oldSession())
        guard !active.isFactory else { return nil }
        return try await importedCopy(of: active, on: try await newSession())
    }

    func certificateFacts(_ entry: CertificateEntry) -> [String: String] {
        [
            "certificate": entry.name,
            "certificateId": "\(entry.id)",
            "certificateFingerprint": entry.details.sha256Fingerprint,
            "certificatePin": entry.details.pin,
        ]
    }

    // MARK: 4 Address

    func assignAddress() async throws -> [String: String] {
        var detail: [String: String] = [:]
        // Assigning the certificate changes the key the box presents from the next handshake on.
        if let certificatePin = facts.certificatePin {
            new?.acceptablePins = [certificatePin]
        }
        var connection = try await newSession()
        var network: NetworkResponse = try await connection.call(.network)
        if settings.hostnameFromOld {
            let hostname = try required(facts.oldHostname, "oldHostname")
            if network.settings.hostname != hostname {
                var settings = network.settings
                settings.hostname = hostname
                try await connection.perform(.updateNetworkSettings, body: settings)
                network = try await connection.call(.network)
            }
            detail["newHostname"] = hostname
        }
        guard facts.certificate != "factory" else { return detail }
        let certificateId = String(try required(facts.certificateId, "certificateId"))
        let entry = try newAddressEntry(network)
        if entry.certificateId.map(String.init) != certificateId {
            try await connection.perform(
                .assignCertificate,
                parameters: ["id": "\(entry.id)"],
                body: CertificateAssignment(certificateId: Int64(certificateId))
            )
            connection = try await newSession()
        }
        let certificates: [CertificateEntry] = try await connection.call(.listCertificates)
        guard let assigned = certificates.first(where: { "\($0.id)" == certificateId }) else {
            throw MigrationError(.certificate, "the imported certificate #\(certificateId) is gone from the new box")
        }
        if !assigned.warnings.isEmpty {
            try await connection.perform(
                .assignCertificate,
                parameters: ["id": "\(entry.id)"],
                body: CertificateAssignment(certificateId: entry.certificateId)
            )
            throw MigrationError(
                .certificate,
                "the certificate has warnings on \(settings.new.name), so it was not left assigned: "
                    + assigned.warnings.map(\.message).joined(separator: "; ")
            )
        }
        // The next handshake presents the certificate's key: check it is served, then pin it.
        var box = try newBox()
        guard let pin = TLSPin(assigned.details.pin) else {
            throw MigrationError(.certificate, "the certificate's pin \(assigned.details.pin) cannot be read")
        }
        box.acceptablePins = [pin]
        let host = box.host
        let port = box.port
        let served = try await waitUntil(tries: 20, every: .milliseconds(250)) {
            (try? await PinnedHTTPClient.fetchPeerCertificate(host: host, port: port).pin) == pin
        }
        guard served else {
            throw MigrationError(.certificate, "\(box.address) does not serve the assigned certificate")
        }
        box.pin = pin
        new = box
        try services.recordPin(box.name, box.address, pin.description)
        detail["newPin"] = pin.description
        detail["assignedTo"] = entry.address
        return detail
    }

    /// The new box's address entry that clients reach: the one we talk to, or its only enabled one (a VM behind
    /// a port forward answers on 127.0.0.1 but listens on its guest address).
    func newAddressEntry(_ network: NetworkResponse) throws -> AddressEntry {
        try SiteCutover.addressTemplate(network, host: try newBox().host, name: settings.new.name)
    }
}
