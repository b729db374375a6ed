import ApplianceAPI
import ApplianceClient
import ApplianceInventory
import ArgumentParser
import Foundation

/// Options shared by every command that talks to one appliance.
struct BoxOptions: ParsableArguments {
    @Argument(help: "The appliance's address as HOST:PORT, e.g. 127.0.0.11:8443.")
    var address: String

    @Option(help: "User to log in as.")
    var user: String = "admin"

    @Option(help: "Environment variable holding the user's password.")
    var passwordEnv: String = "APPLIANCE_PASSWORD"

    @Option(help: "File (mode 0600) holding the user's password; wins over --password-env.")
    var passwordFile: String?

    @Option(help: "Where pins are kept (default: $APPLIANCECTL_HOME or ~/.appliancectl).")
    var stateDir: String?

    @Flag(help: "Print machine-readable JSON instead of text.")
    var json = false

    func validate() throws {
        guard parsedAddress != nil else {
            throw ValidationError("address must be HOST:PORT, e.g. 127.0.0.11:8443 or [::1]:8443")
        }
    }

    var parsedAddress: (host: String, port: Int)? {
        HostPort(address).map { ($0.host, $0.port) }
    }

    var pinStore: PinStore {
        PinStore(directory: StateDirectory(stateDir).url)
    }

    /// Connects, checking the recorded pin or recording it at first contact.
    func connect() async throws -> ApplianceConnection {
        guard let (host, port) = parsedAddress else { throw CommandError("bad address") }
        let store = pinStore
        if let pin = try store.pin(for: address) {
            return ApplianceConnection(host: host, port: port, pin: pin)
        }
        let (pin, _) = try await PinnedHTTPClient.fetchPeerCertificate(host: host, port: port)
        try store.record(pin, for: address)
        Terminal.note("First contact with \(address): recorded its key pin \(pin)")
        return ApplianceConnection(host: host, port: port, pin: pin)
    }

    func password() throws -> String {
        guard let password = try Secrets.read(environment: passwordEnv, file: passwordFile) else {
            throw CommandError(
                "no password for \(user): set the environment variable \(passwordEnv) or give --password-file"
            )
        }
        return password
    }

    /// Connects and logs in; refuses while the appliance still has its factory password.
    func session() async throws -> ApplianceConnection {
        let connection = try await connect()
        let login = try await connection.login(username: user, password: try password())
        if login.passwordChangeRequired {
            throw CommandError(
                "\(address) still has its factory password; run `appliancectl first-login \(address)` first"
            )
        }
        return connection.authenticated(login.token)
    }
}

/// Reads a secret named by an option, failing with what to set.
func requiredSecret(environment: String, file: String?, what: String) throws -> String {
    guard let value = try Secrets.read(environment: environment, file: file) else {
        throw CommandError("no \(what): set the environment variable \(environment) or give a 0600 file")
    }
    return value
}

/// Prints a value as JSON on standard output.
func printJSON(_ value: some Encodable) throws {
    let encoder = APICoding.encoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

/// Where the backup password comes from (backup and restore).
struct BackupPasswordOptions: ParsableArguments {
    @Option(help: "Environment variable holding the backup password.")
    var backupPasswordEnv: String = "BACKUP_PASSWORD"

    @Option(help: "File (mode 0600) holding the backup password.")
    var backupPasswordFile: String?

    func password() throws -> String? {
        try Secrets.read(environment: backupPasswordEnv, file: backupPasswordFile)
    }
}
