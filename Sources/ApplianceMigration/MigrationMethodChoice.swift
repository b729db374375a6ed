import ApplianceAPI
import ApplianceClient
public import ApplianceInventory
import Foundation

/// The migration's method when the playbook names none: `live` where both boxes support failover sync and the
/// new one can reach the old one, else the manual's `backup-restore`. The choice is made once, when the run
/// starts, journaled with the run's settings (a resumed run never changes it), and told with its reason.
public struct MethodChoice: Sendable, Equatable {
    public var method: MigrationMethod
    public var reason: String

    public init(_ method: MigrationMethod, _ reason: String) {
        self.method = method
        self.reason = reason
    }

    /// What the run prints.
    public var line: String { "Method: \(method.rawValue) (no 'method' in the playbook: \(reason))" }
}

extension RunSession {
    /// The settings with a method: the playbook's, or the one chosen for it, with the line that says why (nil
    /// when the playbook names one). The run and its dry run both use it, so they can never disagree.
    public func withMethod(_ settings: MigrationSettings) async -> (settings: MigrationSettings, line: String?) {
        guard settings.method == nil else { return (settings, nil) }
        var settings = settings
        let choice = await chooseMethod(settings)
        settings.method = choice.method
        return (settings, choice.line)
    }

    /// Looks at both boxes (reads only) and chooses the method for settings without one.
    public func chooseMethod(_ settings: MigrationSettings) async -> MethodChoice {
        if let method = settings.method { return MethodChoice(method, "named in the playbook") }
        let oldName = settings.old.name
        let newName = settings.new.name
        guard let oldAddress = settings.old.address else {
            return MethodChoice(.backupRestore, "\(oldName) has no address in the inventory")
        }
        let oldPin = settings.old.pin.flatMap(TLSPin.init)
        guard await Self.hasFailoverSync(address: oldAddress, pin: oldPin) else {
            return MethodChoice(.backupRestore, "\(oldName) has no failover sync (an older applianced)")
        }
        if settings.new.isVirtual {
            // The image carries this version's applianced, which syncs; on user networking the new box reaches
            // the old one through the guest forward its domain is defined with.
            guard let forward = settings.oldAddressFromNew else {
                return MethodChoice(
                    .backupRestore,
                    "\(newName) is on a libvirt network, which may not reach \(oldName); write `method: live` "
                        + "once it does"
                )
            }
            if let refusal = await standaloneRefusal(settings) { return refusal }
            return MethodChoice(
                .live,
                "both boxes support failover sync; \(newName) reaches \(oldName) through a QEMU guest forward at "
                    + "\(forward)"
            )
        }
        guard let newAddress = settings.new.address,
            await Self.hasFailoverSync(address: newAddress, pin: settings.new.pin.flatMap(TLSPin.init))
        else {
            return MethodChoice(.backupRestore, "\(newName) has no failover sync (an older applianced)")
        }
        if let refusal = await standaloneRefusal(settings) { return refusal }
        return MethodChoice(.live, "both boxes support failover sync")
    }

    /// A box already in a relationship is not taken over by a default: the operator decides. (Its password goes
    /// only to a box whose key is pinned.)
    func standaloneRefusal(_ settings: MigrationSettings) async -> MethodChoice? {
        let oldName = settings.old.name
        guard let oldAddress = settings.old.address, let oldPin = settings.old.pin.flatMap(TLSPin.init),
            let password = try? secrets.resolve(settings.oldPasswordSecret).reveal(),
            var box = try? BoxClient(name: oldName, address: oldAddress, pin: oldPin, passwords: [password]),
            let status: FailoverStatus = try? await box.session().call(.failoverStatus),
            status.role != "standalone"
        else { return nil }
        return MethodChoice(
            .backupRestore,
            "\(oldName) is already the failover \(status.role) of \(status.peer ?? "another box"); break that "
                + "relationship and write `method: live` to migrate it while it serves"
        )
    }

    /// Whether the box has the failover API: an unauthenticated request is refused (401), not unknown (404). No
    /// secret is sent, so a box not pinned yet (a dry run before first contact) may be asked too.
    static func hasFailoverSync(address: String, pin: TLSPin?) async -> Bool {
        guard let parsed = HostPort(address) else { return false }
        let connection = ApplianceConnection(host: parsed.host, port: parsed.port, pin: pin)
        guard let answer = try? await connection.client.send(method: "GET", path: Endpoint.failoverStatus.path) else {
            return false
        }
        return answer.status == 401 || answer.status == 403 || answer.status == 200
    }
}
