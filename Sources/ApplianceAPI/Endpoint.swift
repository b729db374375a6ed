import Foundation

/// One route of the management API: an HTTP method and a path template.
///
/// Path parameters are written `{name}` as in the OpenAPI document (`docs/openapi.yaml`). The server registers
/// exactly `Endpoint.all`, the client calls only endpoints from it, and a test compares the list with the
/// document, so the three cannot drift apart.
public struct Endpoint: Sendable, Hashable, CustomStringConvertible {
    public var method: String
    public var path: String

    public init(_ method: String, _ path: String) {
        self.method = method
        self.path = path
    }

    public var description: String { "\(method) \(path)" }

    /// The path with `{name}` parameters replaced by the given values (percent-encoded).
    public func path(_ parameters: [String: String]) -> String {
        var result = path
        for (name, value) in parameters {
            let encoded = value.addingPercentEncodingForPath()
            result = result.replacingOccurrences(of: "{\(name)}", with: encoded)
        }
        return result
    }
}

extension Endpoint {
    // Unauthenticated.
    public static let health = Endpoint("GET", "/health")
    public static let login = Endpoint("POST", "/api/session")

    // Any authenticated user, also while a password change is still required.
    public static let logout = Endpoint("DELETE", "/api/session")
    public static let changePassword = Endpoint("POST", "/api/account/password")

    // /appliance: the box.
    public static let status = Endpoint("GET", "/appliance/api/status")
    public static let network = Endpoint("GET", "/appliance/api/network")
    public static let updateNetworkSettings = Endpoint("PUT", "/appliance/api/network/settings")
    public static let addAddress = Endpoint("POST", "/appliance/api/network/addresses")
    public static let updateAddress = Endpoint("PUT", "/appliance/api/network/addresses/{id}")
    public static let deleteAddress = Endpoint("DELETE", "/appliance/api/network/addresses/{id}")
    public static let listCertificates = Endpoint("GET", "/appliance/api/certificates")
    public static let importCertificate = Endpoint("POST", "/appliance/api/certificates")
    public static let exportCertificate = Endpoint("POST", "/appliance/api/certificates/{id}/export")
    public static let deleteCertificate = Endpoint("DELETE", "/appliance/api/certificates/{id}")
    public static let assignCertificate = Endpoint("PUT", "/appliance/api/network/addresses/{id}/certificate")
    public static let updates = Endpoint("GET", "/appliance/api/updates")
    public static let setUpdateSource = Endpoint("PUT", "/appliance/api/updates/source")
    public static let installUpdate = Endpoint("POST", "/appliance/api/updates/install")
    public static let uploadUpdate = Endpoint("POST", "/appliance/api/updates/upload")
    public static let downloadKey = Endpoint("POST", "/appliance/api/updates/download-key")
    public static let updateSlots = Endpoint("GET", "/appliance/api/updates/slots")
    public static let rollbackUpdate = Endpoint("POST", "/appliance/api/updates/rollback")
    public static let listRecordings = Endpoint("GET", "/appliance/api/recordings")
    public static let putRecording = Endpoint("PUT", "/appliance/api/recordings/{name}")
    public static let getRecording = Endpoint("GET", "/appliance/api/recordings/{name}")
    public static let factoryReset = Endpoint("POST", "/appliance/api/factory-reset")
    public static let shutdown = Endpoint("POST", "/appliance/api/shutdown")
    public static let reboot = Endpoint("POST", "/appliance/api/reboot")
    public static let maintenance = Endpoint("GET", "/appliance/api/maintenance")
    public static let setMaintenance = Endpoint("PUT", "/appliance/api/maintenance")

    // /login: the site.
    public static let security = Endpoint("GET", "/login/api/security")
    public static let updateSecurity = Endpoint("PUT", "/login/api/security")
    public static let settings = Endpoint("GET", "/login/api/settings")
    public static let updateSettings = Endpoint("PUT", "/login/api/settings")
    public static let listUsers = Endpoint("GET", "/login/api/users")
    public static let createUser = Endpoint("POST", "/login/api/users")
    public static let listHistory = Endpoint("GET", "/login/api/history")
    public static let appendHistory = Endpoint("POST", "/login/api/history")
    public static let listFiles = Endpoint("GET", "/login/api/files")
    public static let putFile = Endpoint("PUT", "/login/api/files/{name}")
    public static let getFile = Endpoint("GET", "/login/api/files/{name}")
    public static let siteSummary = Endpoint("GET", "/login/api/site/summary")
    public static let generateSiteData = Endpoint("POST", "/login/api/site/generate")
    public static let backup = Endpoint("POST", "/login/api/backup")
    public static let restore = Endpoint("POST", "/login/api/restore")

    // /login: failover (A7).
    public static let failoverKey = Endpoint("GET", "/login/api/security/failover-key")
    public static let setFailoverKey = Endpoint("PUT", "/login/api/security/failover-key")
    public static let failoverStatus = Endpoint("GET", "/login/api/failover")
    public static let establishFailover = Endpoint("POST", "/login/api/failover/establish")
    public static let syncNow = Endpoint("POST", "/login/api/failover/sync")
    public static let becomePrimary = Endpoint("POST", "/login/api/failover/become-primary")
    public static let breakFailover = Endpoint("POST", "/login/api/failover/break")
    public static let fixFailover = Endpoint("POST", "/login/api/failover/fix")

    // Between the two appliances of a pair: authenticated by the pre-shared key's proof, not by a session.
    public static let peerHello = Endpoint("POST", "/failover/api/peer/hello")
    public static let peerJoin = Endpoint("POST", "/failover/api/peer/join")
    public static let peerChanges = Endpoint("POST", "/failover/api/peer/changes")
    public static let peerFile = Endpoint("GET", "/failover/api/peer/files/{name}")
    public static let peerRecording = Endpoint("GET", "/failover/api/peer/recordings/{name}")
    public static let peerQuiesce = Endpoint("POST", "/failover/api/peer/quiesce")
    public static let peerDemote = Endpoint("POST", "/failover/api/peer/demote")
    public static let peerBreak = Endpoint("POST", "/failover/api/peer/break")
    public static let peerFixState = Endpoint("POST", "/failover/api/peer/fix-state")
    public static let peerHistory = Endpoint("POST", "/failover/api/peer/history")
    public static let peerMerge = Endpoint("POST", "/failover/api/peer/merge")

    /// Every route the appliance serves.
    public static let all: [Endpoint] = [
        .health, .login, .logout, .changePassword,
        .status, .network, .updateNetworkSettings, .addAddress, .updateAddress, .deleteAddress,
        .listCertificates, .importCertificate, .exportCertificate, .deleteCertificate, .assignCertificate,
        .updates, .setUpdateSource, .installUpdate, .uploadUpdate, .downloadKey, .updateSlots, .rollbackUpdate,
        .listRecordings, .putRecording, .getRecording, .factoryReset, .shutdown, .reboot,
        .maintenance, .setMaintenance,
        .security, .updateSecurity, .settings, .updateSettings, .listUsers, .createUser,
        .listHistory, .appendHistory, .listFiles, .putFile, .getFile, .siteSummary, .generateSiteData,
        .backup, .restore,
        .failoverKey, .setFailoverKey, .failoverStatus, .establishFailover, .syncNow, .becomePrimary, .breakFailover,
        .fixFailover,
        .peerHello, .peerJoin, .peerChanges, .peerFile, .peerRecording, .peerQuiesce, .peerDemote, .peerBreak,
        .peerFixState, .peerHistory, .peerMerge,
    ]
}

extension Endpoint {
    /// Who may call an endpoint (A2). The server checks this one table for every request.
    public enum Access: Sendable {
        /// No session: the health probe and the login.
        case open
        /// Any session, also one whose password must still be changed (a factory-fresh box): only these.
        case beforePasswordChange
        /// A session whose password has been changed; `/appliance` and `/login/api` also need an administrator.
        case session
        /// The failover peer: no session, the request carries the inter-appliance key's proof (A7).
        case peer
    }

    public var access: Access {
        switch self {
        case .health, .login: .open
        case .logout, .changePassword: .beforePasswordChange
        case .peerHello, .peerJoin, .peerChanges, .peerFile, .peerRecording, .peerQuiesce, .peerDemote, .peerBreak,
            .peerFixState, .peerHistory, .peerMerge:
            .peer
        default: .session
        }
    }

    /// Endpoints that change the site's data (settings, users, history, files, recordings, policy, restore):
    /// refused while the appliance is in maintenance mode (A8), so nothing is written that a migration would miss.
    /// The endpoint a request's method and path belong to (path parameters match any one segment).
    public static func matching(method: String, path: String) -> Endpoint? {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        return all.first { endpoint in
            guard endpoint.method == method else { return false }
            let template = endpoint.path.split(separator: "/", omittingEmptySubsequences: false)
            guard template.count == segments.count else { return false }
            return zip(template, segments).allSatisfy { pattern, segment in
                pattern.hasPrefix("{") ? !segment.isEmpty : pattern == segment
            }
        }
    }

    public var writesSite: Bool {
        [
            Endpoint.updateSecurity, .updateSettings, .createUser, .appendHistory, .putFile, .putRecording,
            .generateSiteData, .restore,
        ].contains(self)
    }
}

extension String {
    func addingPercentEncodingForPath() -> String {
        var out = ""
        for byte in self.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return out
    }

    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
