import ApplianceAPI
import ApplianceClient
import ApplianceInventory
import ApplianceProvisioning
import ArgumentParser
import Foundation
import Libvirt

/// `appliancectl list`: every appliance in the inventory with its state, address and version (P1, P3).
struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the inventory's appliances with state, address and version.",
        discussion: """
            Virtual appliances show their domain state on their hypervisor; every appliance with an address is \
            probed over TLS (checking its recorded pin). The version needs the appliance's password secret.
            """
    )

    @OptionGroup var options: InventoryOptions

    struct Row: Codable {
        var name: String
        var kind: String
        var state: String
        var address: String?
        var health: String?
        var siteVersion: String?
        var applianceId: String?
    }

    func run() async throws {
        let inventory = try options.loadInventory()
        var hypervisors: [String: ApplianceProvisioning.Hypervisor] = [:]
        var rows: [Row] = []
        let secrets = try options.secretSource()
        for entry in inventory.appliances {
            var row = Row(name: entry.name, kind: entry.isVirtual ? "virtual" : "physical", state: "-")
            row.address = entry.address
            if case .virtual(let spec) = entry.kind {
                do {
                    let hypervisor: ApplianceProvisioning.Hypervisor
                    if let open = hypervisors[spec.hypervisor] {
                        hypervisor = open
                    } else {
                        hypervisor = try await Hypervisor.open(
                            options.target(for: try inventory.hypervisor(named: spec.hypervisor))
                        )
                        hypervisors[spec.hypervisor] = hypervisor
                    }
                    if let domain = try await hypervisor.connection.domain(named: entry.name) {
                        row.state = domain.state.description
                    } else {
                        row.state = "not provisioned"
                        row.address = nil
                    }
                } catch {
                    row.state = "hypervisor unreachable"
                }
            }
            if let address = row.address, let hostPort = HostPort(address), row.state != "shutoff" {
                await probe(
                    &row,
                    hostPort: hostPort,
                    pin: entry.pin.flatMap(TLSPin.init),
                    entry: entry,
                    secrets: secrets
                )
            }
            rows.append(row)
        }
        if options.json {
            try printJSON(rows)
            return
        }
        let header = ["NAME", "KIND", "STATE", "ADDRESS", "HEALTH", "SITE VERSION"]
        let table =
            [header]
            + rows.map { [$0.name, $0.kind, $0.state, $0.address ?? "-", $0.health ?? "-", $0.siteVersion ?? "-"] }
        let widths = header.indices.map { column in table.map { $0[column].count }.max() ?? 0 }
        for line in table {
            print(
                line.enumerated().map { $1.padding(toLength: widths[$0] + 2, withPad: " ", startingAt: 0) }.joined()
                    .trimmingCharacters(in: .whitespaces)
            )
        }
    }

    /// Health over TLS (with the recorded pin), then the version when the password secret is available.
    private func probe(
        _ row: inout Row,
        hostPort: HostPort,
        pin: TLSPin?,
        entry: ApplianceEntry,
        secrets: SecretSource
    ) async {
        do {
            let (observed, _) = try await PinnedHTTPClient.fetchPeerCertificate(
                host: hostPort.host,
                port: hostPort.port
            )
            if let pin, pin != observed {
                row.health = "WRONG KEY (pin mismatch)"
                return
            }
            let connection = ApplianceConnection(host: hostPort.host, port: hostPort.port, pin: observed)
            let (_, health, _) = try await connection.health()
            row.health = health.status
            row.applianceId = health.applianceId
            if row.kind == "physical" { row.state = "reachable" }
            guard let password = try? secrets.adminPassword(for: entry) else { return }
            let login = try await connection.login(username: "admin", password: password.reveal())
            guard !login.passwordChangeRequired else {
                row.siteVersion = "(factory password)"
                return
            }
            let status: StatusResponse = try await connection.authenticated(login.token).call(.status)
            row.siteVersion = status.software.siteVersion
        } catch {
            if row.health == nil { row.health = "unreachable" }
            if row.kind == "physical" { row.state = "unreachable" }
        }
    }
}
