import ApplianceMigration
import Testing

/// What a cutover hook sees of appliancectl's environment: the documented variables, never a password.
@Suite struct CutoverHookEnvironmentTests {
    static let inherited = [
        "PATH": "/opt/bin:/usr/bin",
        "HOME": "/home/operator",
        "LANG": "C.UTF-8",
        "APPLIANCE_PASSWORD": "admin-secret-1",
        "OLD_BOX_PASSWORD": "old-secret-2",
        "BACKUP_PASSWORD": "backup-secret-3",
        "CERT_PASSPHRASE": "cert-secret-4",
        "OLD_PW": "old-secret-5",
        "AWS_SECRET_ACCESS_KEY": "aws-secret-6",
        "CUTOVER_NAT_PIDFILE": "/tmp/nat.pid",
        "CUTOVER_DNS_TOKEN": "dns-secret-7",
        "SSH_AUTH_SOCK": "/run/agent",
    ]

    static func variables() -> [String: String] {
        let list = CutoverHookEnvironment.variables(
            inherited: inherited,
            site: "127.0.0.12:8443",
            oldAddress: "127.0.0.11:8443",
            newAddress: "127.0.0.13:8443",
            newHost: "127.0.0.13",
            newPort: 8443
        )
        var result: [String: String] = [:]
        for line in list {
            let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
            result[parts[0]] = parts.count > 1 ? parts[1] : ""
        }
        return result
    }

    @Test func onlyTheDocumentedVariablesReachTheHook() {
        let seen = Self.variables()
        #expect(seen["APPLIANCE_SITE_ADDRESS"] == "127.0.0.12:8443")
        #expect(seen["APPLIANCE_OLD_ADDRESS"] == "127.0.0.11:8443")
        #expect(seen["APPLIANCE_NEW_ADDRESS"] == "127.0.0.13:8443")
        #expect(seen["APPLIANCE_NEW_HOST"] == "127.0.0.13")
        #expect(seen["APPLIANCE_NEW_PORT"] == "8443")
        #expect(seen["PATH"] == "/opt/bin:/usr/bin")
        #expect(seen["HOME"] == "/home/operator")
        #expect(seen["LANG"] == "C.UTF-8")
        #expect(seen["CUTOVER_NAT_PIDFILE"] == "/tmp/nat.pid", "the operator's own settings for the hook")
        #expect(Set(seen.keys).count == 9, "\(seen.keys.sorted())")
    }

    @Test func noSecretReachesTheHook() {
        let values = Set(Self.variables().values)
        for (name, value) in Self.inherited where value.contains("secret") {
            #expect(!values.contains(value), "\(name) reached the hook")
        }
        #expect(Self.variables()["SSH_AUTH_SOCK"] == nil)
    }

    @Test func aHookGetsAPathEvenWhenAppliancectlHasNone() {
        let list = CutoverHookEnvironment.variables(
            inherited: [:],
            site: "a:1",
            oldAddress: "b:1",
            newAddress: "c:1",
            newHost: "c",
            newPort: 1
        )
        #expect(list.contains { $0.hasPrefix("PATH=/") })
    }
}
