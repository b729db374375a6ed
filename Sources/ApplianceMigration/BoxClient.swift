import ApplianceAPI
public import ApplianceClient
import ApplianceInventory
import Foundation
import ProcedureEngine

/// One appliance of a migration: where it is, the key it must present, and the passwords that may open it.
///
/// The pin changes twice in a migration, both times by the run's own doing: when the imported certificate is
/// assigned to the new box (step 4), and when the old box is factory-reset (a new factory certificate). The run
/// names the pins it expects (`acceptablePins`), so a resumed run accepts exactly those and nothing else.
public struct BoxClient: Sendable {
    public var name: String
    /// HOST:PORT as the inventory gives it.
    public var address: String
    public var host: String
    public var port: Int
    public var pin: TLSPin
    /// Tried in order; the first that logs in without a required password change wins.
    public var passwords: [String]
    /// Other keys this box may present because of the run's own actions.
    public var acceptablePins: [TLSPin] = []

    public init(name: String, address: String, pin: TLSPin, passwords: [String]) throws {
        guard let parsed = HostPort(address) else {
            throw MigrationError(.appliance, "\(name): \(address) is not HOST:PORT; fix the inventory")
        }
        self.name = name
        self.address = address
        self.host = parsed.host
        self.port = parsed.port
        self.pin = pin
        self.passwords = passwords
    }

    /// A connection pinned to the box's key, moving to an acceptable pin the box now presents.
    public mutating func connection() async throws -> ApplianceConnection {
        let connection = ApplianceConnection(host: host, port: port, pin: pin, requestTimeout: .seconds(3600))
        do {
            _ = try await connection.health()
            return connection
        } catch let error as ApplianceClientError where error.code == .pinMismatch {
            let (observed, _) = try await PinnedHTTPClient.fetchPeerCertificate(host: host, port: port)
            guard acceptablePins.contains(observed) else { throw error }
            pin = observed
            return ApplianceConnection(host: host, port: port, pin: pin, requestTimeout: .seconds(3600))
        } catch {
            throw MigrationError(.appliance, "\(name) at \(address) does not answer (\(error)); check that it runs")
        }
    }

    /// Logs in with the first password that works (and tries that one first next time); waits out the
    /// appliance's login backoff rather than failing on it, and a site that is being switched by a restore
    /// (503, or a 500 from a request caught in the switch: a restore cut off by a kill is still being undone
    /// when the resumed run logs in), for up to 30 s.
    public mutating func session() async throws -> ApplianceConnection {
        let connection = try await connection()
        var refusals: [String] = []
        for (index, password) in passwords.enumerated() {
            for attempt in 0..<30 {
                do {
                    let login = try await connection.login(username: "admin", password: password)
                    if login.passwordChangeRequired {
                        refusals.append("the factory password still works (password change required)")
                        break
                    }
                    passwords.insert(passwords.remove(at: index), at: 0)
                    return connection.authenticated(login.token)
                } catch let error as ApplianceClientError where error.apiStatus == 429 && attempt < 7 {
                    try await Task.sleep(for: .milliseconds(1200))
                } catch let error as ApplianceClientError
                    where (error.apiStatus == 503 || error.apiStatus == 500) && attempt < 29
                {
                    try await Task.sleep(for: .seconds(1))
                } catch let error as ApplianceClientError where error.code == .refused {
                    refusals.append(error.message)
                    break
                }
            }
        }
        throw MigrationError(
            .appliance,
            "cannot log in to \(name) at \(address) as admin (\(refusals.joined(separator: "; "))); "
                + "check its password secret"
        )
    }

    /// Whether the box still has its factory password (a factory-fresh or factory-reset appliance).
    public mutating func hasFactoryPassword() async throws -> Bool {
        let connection = try await connection()
        for _ in 0..<8 {
            do {
                return try await connection.login(username: "admin", password: "password").passwordChangeRequired
            } catch let error as ApplianceClientError where error.apiStatus == 429 {
                try await Task.sleep(for: .milliseconds(1200))
            } catch let error as ApplianceClientError where error.code == .refused {
                return false
            }
        }
        return false
    }
}

extension BoxClient {
    /// The client of a box a run recorded (its address and pin), logging in with `password`.
    init(reference: BoxReference, password: String) throws {
        guard let address = reference.address, let pin = reference.pin.flatMap(TLSPin.init) else {
            throw MigrationError(
                .preflight,
                "\(reference.name) has no recorded address and pin; run `appliancectl status ADDRESS` once to pin it"
            )
        }
        try self.init(name: reference.name, address: address, pin: pin, passwords: [password])
    }
}
