public import ApplianceAPI
import ApplianceClient
import ApplianceInventory
public import Foundation
import ProcedureEngine

/// What one appliance looked like at a moment: identity, versions, site counts and checksums, certificates.
public struct BoxSnapshot: Codable, Sendable, Equatable {
    public var name: String
    public var address: String?
    public var takenAt: Date
    public var reachable: Bool
    public var note: String?
    public var applianceId: String?
    public var hostname: String?
    public var software: InstalledSoftware?
    public var site: SiteSummary?
    /// `name (sha256 fingerprint)` of every certificate.
    public var certificates: [String]
    /// `address (access)` of every enabled address.
    public var addresses: [String]

    public init(name: String, address: String?, note: String) {
        self.name = name
        self.address = address
        self.takenAt = Date()
        self.reachable = false
        self.note = note
        self.certificates = []
        self.addresses = []
    }
}

extension BoxSnapshot {
    /// A snapshot of `box` as it is now; an unreachable one says why.
    static func take(_ box: inout BoxClient, factoryFirst: Bool) async -> BoxSnapshot {
        var snapshot = BoxSnapshot(name: box.name, address: box.address, note: "")
        do {
            if factoryFirst, try await box.hasFactoryPassword() {
                snapshot.note = "factory password (factory-fresh or factory-reset)"
                snapshot.reachable = true
                return snapshot
            }
            let connection: ApplianceConnection
            do {
                connection = try await box.session()
            } catch let error as MigrationError where error.code == .appliance {
                guard try await box.hasFactoryPassword() else { throw error }
                snapshot.note = "factory password (factory-fresh or factory-reset)"
                snapshot.reachable = true
                return snapshot
            }
            let status: StatusResponse = try await connection.call(.status)
            snapshot.reachable = true
            snapshot.note = nil
            snapshot.applianceId = status.applianceId
            snapshot.hostname = status.hostname
            snapshot.software = status.software
            snapshot.site = try await connection.call(.siteSummary)
            let certificates: [CertificateEntry] = try await connection.call(.listCertificates)
            snapshot.certificates = certificates.map { "\($0.name) (\($0.details.sha256Fingerprint.prefix(23)))" }
            let network: NetworkResponse = try await connection.call(.network)
            snapshot.addresses = network.addresses.filter(\.enabled).map { "\($0.address) (\($0.access.rawValue))" }
        } catch {
            snapshot.note = "\(error)"
        }
        return snapshot
    }

    /// Markdown table rows of snapshots taken `when` ("before", "after").
    static func markdownRows(_ snapshots: [BoxSnapshot], when: String) -> [String] {
        snapshots.map { box in
            let site = box.site
            return "| \(box.name) | \(when) | \(box.reachable ? "yes" : "no") | \(box.applianceId ?? "-") | "
                + "\(box.hostname ?? "-") | \(box.software?.siteVersion ?? "-") | "
                + "\(site.map { "\($0.historyRows)" } ?? "-") | "
                + "\(site.map { "\($0.fileCount) (\($0.fileBytes) B)" } ?? "-") | "
                + "\(site.map { "\($0.recordingCount) (\($0.recordingBytes) B)" } ?? "-") | \(box.note ?? "") |"
        }
    }

    /// The Markdown section showing snapshots before and after.
    static func markdownSection(before: [BoxSnapshot], after: [BoxSnapshot]) -> String {
        var lines = ["", "## Before and after", ""]
        lines += ["| appliance | when | reachable | id | hostname | site | history | files | recordings | note |"]
        lines += ["| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        lines += markdownRows(before, when: "before") + markdownRows(after, when: "after")
        return lines.joined(separator: "\n")
    }
}
