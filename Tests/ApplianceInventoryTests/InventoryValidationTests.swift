import ApplianceInventory
import Testing

/// Every refusal names the file, line and column at fault and what to do.
@Suite struct InventoryValidationTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var yaml: String
        var location: String
        var code: InventoryError.Code
        var says: String
        /// Text that must not appear in the message (a secret value).
        var neverSays: String? = nil

        var testDescription: String { name }
    }

    static let physical = "    physical:\n      address: 127.0.0.11:9443\n"
    static let local = "hypervisors:\n  local:\n"

    static let cases: [Case] = [
        Case(
            name: "unknown key with a suggestion",
            yaml: "appliances:\n  old-box:\n\(physical)    adress: 10.0.0.1:443\n",
            location: "inventory.yml:5:5",
            code: .invalidInventory,
            says: "unknown key 'adress' in appliance 'old-box'; did you mean 'address'?"
        ),
        Case(
            name: "unknown top-level key",
            yaml: "applainces:\n  old-box:\n\(physical)",
            location: "inventory.yml:1:1",
            code: .invalidInventory,
            says: "unknown key 'applainces' at the top level; did you mean 'appliances'?"
        ),
        Case(
            name: "unknown hypervisor key",
            yaml: "hypervisors:\n  local:\n    pol: x\n",
            location: "inventory.yml:3:5",
            code: .invalidInventory,
            says: "unknown key 'pol' in hypervisor 'local'; did you mean 'pool'?"
        ),
        Case(
            name: "unknown key under virtual",
            yaml: "\(local)appliances:\n  vm:\n    virtual:\n      hypervisor: local\n      memory: 512\n",
            location: "inventory.yml:7:7",
            code: .invalidInventory,
            says: "did you mean 'memory_mib'?"
        ),
        Case(
            name: "wrong type for a number",
            yaml: "\(local)appliances:\n  vm:\n    virtual:\n      hypervisor: local\n      memory_mib: lots\n",
            location: "inventory.yml:7:19",
            code: .invalidInventory,
            says: "'memory_mib' in 'virtual' of appliance 'vm' must be a whole number from 96 to 65536"
        ),
        Case(
            name: "memory out of range",
            yaml: "\(local)appliances:\n  vm:\n    virtual:\n      hypervisor: local\n      memory_mib: 64\n",
            location: "inventory.yml:7:19",
            code: .invalidInventory,
            says: "from 96 to 65536, not 64"
        ),
        Case(
            name: "vcpus out of range",
            yaml: "\(local)appliances:\n  vm:\n    virtual: {hypervisor: local, vcpus: 65}\n",
            location: "inventory.yml:5:41",
            code: .invalidInventory,
            says: "'vcpus' in 'virtual' of appliance 'vm' must be a whole number from 1 to 64, not 65"
        ),
        Case(
            name: "wrong type for a section",
            yaml: "appliances:\n  - old-box\n",
            location: "inventory.yml:2:3",
            code: .invalidInventory,
            says: "'appliances' must be a mapping"
        ),
        Case(
            name: "wrong type for an address",
            yaml: "appliances:\n  old-box:\n    physical:\n      address:\n        host: x\n",
            location: "inventory.yml:5:9",
            code: .invalidInventory,
            says: "must be a single value, not a list or mapping"
        ),
        Case(
            name: "bad appliance name",
            yaml: "appliances:\n  Old_Box:\n\(physical)",
            location: "inventory.yml:2:3",
            code: .invalidInventory,
            says: "bad appliance name 'Old_Box': names are 1 to 63 lower-case letters, digits or '-'"
        ),
        Case(
            name: "bad hypervisor name",
            yaml: "hypervisors:\n  -local:\n",
            location: "inventory.yml:2:3",
            code: .invalidInventory,
            says: "bad hypervisor name '-local'"
        ),
        Case(
            name: "both physical and virtual",
            yaml: "\(local)appliances:\n  box:\n\(physical)    virtual:\n      hypervisor: local\n",
            location: "inventory.yml:7:5",
            code: .invalidInventory,
            says: "appliance 'box' is both physical and virtual (see line 5); keep one"
        ),
        Case(
            name: "neither physical nor virtual",
            yaml: "appliances:\n  box:\n    pin: null\n",
            location: "inventory.yml:2:3",
            code: .invalidInventory,
            says: "appliance 'box' is neither physical nor virtual; add 'physical:'"
        ),
        Case(
            name: "unknown hypervisor reference",
            yaml: "\(local)appliances:\n  vm:\n    virtual:\n      hypervisor: lokal\n",
            location: "inventory.yml:6:19",
            code: .unknownHypervisor,
            says: "unknown hypervisor 'lokal' in 'virtual' of appliance 'vm' (did you mean 'local'?); "
                + "known hypervisors: local — declare it under 'hypervisors:'"
        ),
        Case(
            name: "virtual without hypervisor",
            yaml: "\(local)appliances:\n  vm:\n    virtual:\n      vcpus: 2\n",
            location: "inventory.yml:5:5",
            code: .invalidInventory,
            says: "virtual appliance 'vm' needs 'hypervisor: NAME' under 'virtual:'"
        ),
        Case(
            name: "address without port",
            yaml: "appliances:\n  box:\n    physical:\n      address: 127.0.0.11\n",
            location: "inventory.yml:4:16",
            code: .invalidInventory,
            says: "bad address in 'physical' of appliance 'box': the port is missing"
        ),
        Case(
            name: "address with a bad IPv4 host",
            yaml: "appliances:\n  box:\n    physical:\n      address: 300.0.0.1:443\n",
            location: "inventory.yml:4:16",
            code: .invalidInventory,
            says: "'300.0.0.1' is not an IPv4 address"
        ),
        Case(
            name: "address with a bad port",
            yaml: "appliances:\n  box:\n    physical:\n      address: 10.0.0.1:70000\n",
            location: "inventory.yml:4:16",
            code: .invalidInventory,
            says: "the port must be a number from 1 to 65535"
        ),
        Case(
            name: "IPv6 address without brackets",
            yaml: "appliances:\n  box:\n    physical:\n      address: fd00::1:9443\n",
            location: "inventory.yml:4:16",
            code: .invalidInventory,
            says: "IPv6 addresses go in brackets"
        ),
        Case(
            name: "IPv6 address without quotes",
            yaml: "appliances:\n  box:\n    physical:\n      address: [::1]:9443\n",
            location: "inventory.yml:4:17",
            code: .syntax,
            says: "YAML syntax error"
        ),
        Case(
            name: "recorded address of a virtual appliance",
            yaml: "\(local)appliances:\n  vm:\n    virtual: {hypervisor: local}\n    address: localhost\n",
            location: "inventory.yml:6:14",
            code: .invalidInventory,
            says: "bad address in appliance 'vm': the port is missing"
        ),
        Case(
            name: "appliance-level address on a physical appliance",
            yaml: "appliances:\n  box:\n\(physical)    address: 10.0.0.1:443\n",
            location: "inventory.yml:5:5",
            code: .invalidInventory,
            says: "the address of a physical appliance goes under 'physical:'"
        ),
        Case(
            name: "empty pin",
            yaml: "appliances:\n  box:\n\(physical)    pin: ''\n",
            location: "inventory.yml:5:10",
            code: .invalidInventory,
            says: "'pin' in appliance 'box' is not usable: it is empty"
        ),
        Case(
            name: "duplicate key found by Yams",
            yaml: "appliances:\n  box:\n\(physical)    pin: a\n    pin: b\n",
            location: "inventory.yml:6:5",
            code: .syntax,
            says: "duplicate key 'pin' (already at line 5); keep only one of them"
        ),
        Case(
            name: "duplicate appliance",
            yaml: "appliances:\n  box:\n\(physical)\n  box:\n\(physical)",
            location: "inventory.yml:6:3",
            code: .syntax,
            says: "duplicate key 'box' (already at line 2)"
        ),
        Case(
            name: "duplicate key spelt differently",
            yaml: "appliances:\n  '1':\n\(physical)  1:\n\(physical)",
            location: "inventory.yml:5:3",
            code: .syntax,
            says: "duplicate key '1' (already at line 2)"
        ),
        Case(
            name: "anchors and aliases",
            yaml: "\(local)appliances:\n  a:\n    virtual: &small {hypervisor: local}\n  b:\n    virtual: *small\n",
            location: "inventory.yml:5:14",
            code: .invalidInventory,
            says: "anchor and alias"
        ),
        Case(
            name: "empty file",
            yaml: "# nothing yet\n",
            location: "inventory.yml:1:1",
            code: .invalidInventory,
            says: "the inventory is empty"
        ),
        Case(
            name: "password value instead of a name",
            yaml: "appliances:\n  old-box:\n\(physical)    password: \"Tr0ub4dor&3\"\n",
            location: "inventory.yml:5:15",
            code: .secretInInventory,
            says: "must be the NAME of the secret that holds the admin password (capital letters, digits and '_', "
                + "such as APPLIANCE_PASSWORD_OLD_BOX), not the password: secrets never go in the inventory; put it "
                + "in the environment variable APPLIANCE_PASSWORD_OLD_BOX or the secrets file",
            neverSays: "Tr0ub4dor"
        ),
        Case(
            name: "password_value key",
            yaml: "appliances:\n  old-box:\n\(physical)    password: OLD_BOX_PASSWORD\n    password_value: hunter2\n",
            location: "inventory.yml:6:5",
            code: .secretInInventory,
            says: "'password_value' in appliance 'old-box' looks like a secret: secrets never go in the inventory; "
                + "put it in the environment variable OLD_BOX_PASSWORD or the secrets file",
            neverSays: "hunter2"
        ),
        Case(
            name: "secret key",
            yaml: "appliances:\n  old-box:\n\(physical)    secret: hunter2\n",
            location: "inventory.yml:5:5",
            code: .secretInInventory,
            says: "secrets never go in the inventory; put it in the environment variable",
            neverSays: "hunter2"
        ),
        Case(
            name: "passphrase key at the top level",
            yaml: "backup_passphrase: hunter2\nappliances: {}\n",
            location: "inventory.yml:1:1",
            code: .secretInInventory,
            says: "put it in the environment variable BACKUP_PASSPHRASE or the secrets file",
            neverSays: "hunter2"
        ),
        Case(
            name: "password key inside physical",
            yaml: "appliances:\n  old-box:\n    physical:\n      address: 10.0.0.1:443\n      password: hunter2\n",
            location: "inventory.yml:5:7",
            code: .secretInInventory,
            says: "environment variable APPLIANCE_PASSWORD_OLD_BOX or the secrets file",
            neverSays: "hunter2"
        ),
        Case(
            name: "password in a libvirt URI",
            yaml: "hypervisors:\n  far:\n    uri: qemu+ssh://root:hunter2@far/system\n",
            location: "inventory.yml:3:10",
            code: .secretInInventory,
            says: "the libvirt URI in hypervisor 'far' holds a password",
            neverSays: "hunter2"
        ),
        Case(
            name: "a secret in a line with a syntax error is not echoed",
            yaml: "appliances:\n  box:\n    password: \"hunter2\n",
            location: "inventory.yml:4:1",
            code: .syntax,
            says: "while scanning a quoted scalar that starts at line 3, column 15",
            neverSays: "hunter2"
        ),
        Case(
            name: "tab indentation",
            yaml: "appliances:\n\tbox:\n",
            location: "inventory.yml:2:1",
            code: .syntax,
            says: "indent with spaces, not tabs"
        ),
        Case(
            name: "two documents",
            yaml: "appliances: {}\n---\nappliances: {}\n",
            location: "inventory.yml:2:1",
            code: .syntax,
            says: "YAML syntax error"
        ),
        Case(
            name: "a multi-line pin",
            yaml: "appliances:\n  box:\n\(physical)    pin: |\n      abc\n",
            location: "inventory.yml:5:10",
            code: .invalidInventory,
            says: "'pin' in appliance 'box' is not usable: it contains a line break"
        ),
        Case(
            name: "a quoted number",
            yaml: "\(local)appliances:\n  vm:\n    virtual: {hypervisor: local, disk_gib: \"4\"}\n",
            location: "inventory.yml:5:44",
            code: .invalidInventory,
            says: "'disk_gib' in 'virtual' of appliance 'vm' must be a whole number from 1 to 16384"
        ),
        Case(
            name: "merge keys",
            yaml: "appliances:\n  box:\n\(physical)    <<: {pin: x}\n",
            location: "inventory.yml:5:5",
            code: .invalidInventory,
            says: "unknown key '<<' in appliance 'box'"
        ),
        Case(
            name: "bad libvirt URI",
            yaml: "hypervisors:\n  far:\n    uri: far.example.net\n",
            location: "inventory.yml:3:10",
            code: .invalidInventory,
            says: "'uri' in hypervisor 'far' must be 'session' or a libvirt URI"
        ),
        Case(
            name: "bad network name",
            yaml: "hypervisors:\n  far:\n    network: my net\n",
            location: "inventory.yml:3:14",
            code: .invalidInventory,
            says: "bad network 'my net' in hypervisor 'far'"
        ),
    ]

    @Test(arguments: cases)
    func isRefusedWithLineAndColumn(_ example: Case) throws {
        let error = try #require(throws: InventoryError.self) {
            try Inventory.parse(example.yaml, file: "inventory.yml")
        }
        #expect(error.code == example.code)
        #expect(error.location?.description == example.location)
        #expect(error.description.hasPrefix(example.location + ": "))
        #expect(error.message.contains(example.says), "\(error)")
        if let secret = example.neverSays {
            #expect(!error.description.contains(secret))
            #expect(!String(describing: error.cause as Any).contains(secret))
        }
    }

    @Test func theMessageReadsLikeACompilerDiagnostic() throws {
        let yaml = "appliances:\n  old-box:\n    physical:\n      address: 127.0.0.11:9443\n    adress: 10.0.0.1:1\n"
        let error = try #require(throws: InventoryError.self) { try Inventory.parse(yaml, file: "inventory.yml") }
        #expect(
            error.description
                == "inventory.yml:5:5: unknown key 'adress' in appliance 'old-box'; did you mean 'address'?"
        )
    }
}
