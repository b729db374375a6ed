import ApplianceInventory
import Foundation
import Testing

/// Reading inventories: the shipped example, defaults, file order and look-ups.
@Suite struct InventoryParsingTests {
    static let example = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Playbooks/inventory.example.yml")

    @Test func theShippedExampleParses() throws {
        let inventory = try Inventory.load(from: Self.example)
        #expect(inventory.hypervisors.map(\.name) == ["local", "rack-2"])
        #expect(inventory.appliances.map(\.name) == ["old-box", "new-vm", "edge-vm", "test-vm", "site-a", "site-b"])

        let local = try inventory.hypervisor(named: "local")
        #expect(local == Hypervisor(name: "local", uri: .session, pool: "appliances", network: .user))
        let remote = try inventory.hypervisor(named: "rack-2")
        #expect(remote.uri == .uri("qemu+ssh://virt@rack-2.example.net/system"))
        #expect(remote.network == .libvirt("appliance-nat"))

        let old = try inventory.appliance(named: "old-box")
        #expect(old.kind == .physical(address: "127.0.0.11:9443"))
        #expect(old.address == "127.0.0.11:9443")
        #expect(old.pin == nil)
        #expect(old.passwordSecret == "OLD_BOX_PASSWORD")

        let edge = try inventory.appliance(named: "edge-vm")
        #expect(edge.kind == .virtual(VirtualSpec(hypervisor: "rack-2", memoryMiB: 512, vcpus: 2, diskGiB: 4)))
        #expect(edge.passwordSecret == "APPLIANCE_PASSWORD_EDGE_VM")
        #expect(edge.address == nil && edge.id == nil)
    }

    @Test func missingKeysTakeTheirDefaults() throws {
        let inventory = try Inventory.parse(
            """
            hypervisors:
              here:
            appliances:
              vm-1:
                virtual:
                  hypervisor: here
            """,
            file: "inventory.yml"
        )
        #expect(inventory.hypervisors == [Hypervisor(name: "here", uri: .session, pool: "appliances", network: .user)])
        let entry = try inventory.appliance(named: "vm-1")
        #expect(entry.kind == .virtual(VirtualSpec(hypervisor: "here", memoryMiB: 512, vcpus: 1, diskGiB: 4)))
        #expect(entry.passwordSecret == "APPLIANCE_PASSWORD_VM_1")
        #expect(entry.address == nil && entry.id == nil && entry.pin == nil)
    }

    @Test func recordedValuesAndIPv6AddressesAreRead() throws {
        let inventory = try Inventory.parse(
            """
            hypervisors:
              local: {uri: "qemu:///system", network: default}
            appliances:
              vm:
                virtual: {hypervisor: local}
                address: "[::1]:40123"
                id: 3f1c2a9e-8d1b-4c55-9a0e-2b7f0c6d1e42
                pin: sha256/q83vEjRWeJq8T7mA+X0e3zJ1cm9vdA==
              box:
                physical:
                  address: "[fd00::11]:9443"
                password: BOX_ADMIN
            """,
            file: "inventory.yml"
        )
        let vm = try inventory.appliance(named: "vm")
        #expect(vm.address == "[::1]:40123")
        #expect(vm.id == "3f1c2a9e-8d1b-4c55-9a0e-2b7f0c6d1e42")
        #expect(vm.pin == "sha256/q83vEjRWeJq8T7mA+X0e3zJ1cm9vdA==")
        #expect(try inventory.hypervisor(named: "local").uri == .uri("qemu:///system"))
        #expect(try inventory.appliance(named: "box").kind == .physical(address: "[fd00::11]:9443"))
    }

    @Test func pinsAreOpaqueEvenWhenTheyLookLikeNumbers() throws {
        let inventory = try Inventory.parse(
            "appliances:\n  box:\n    physical: {address: 'box.example.net:443'}\n    pin: 0123456789\n",
            file: "inventory.yml"
        )
        #expect(try inventory.appliance(named: "box").pin == "0123456789")
    }

    @Test func fileOrderIsKept() throws {
        let names = ["zulu", "alpha", "mike", "bravo", "x-ray", "charlie"]
        let text =
            "appliances:\n"
            + names.map { "  \($0):\n    physical:\n      address: 10.0.0.1:443\n" }.joined()
        #expect(try Inventory.parse(text, file: "inventory.yml").appliances.map(\.name) == names)
    }

    @Test func anUnknownApplianceListsTheKnownOnes() throws {
        let inventory = try Inventory.load(from: Self.example)
        let error = try #require(throws: InventoryError.self) { try inventory.appliance(named: "new-vn") }
        #expect(error.code == .unknownAppliance)
        #expect(error.description.contains("did you mean 'new-vm'?"))
        #expect(error.description.contains("known appliances: old-box, new-vm, edge-vm"))

        let hypervisorError = try #require(throws: InventoryError.self) { try inventory.hypervisor(named: "far") }
        #expect(hypervisorError.code == .unknownHypervisor)
        #expect(hypervisorError.description.contains("known hypervisors: local, rack-2"))
    }

    @Test func aMissingFileSaysWhatToDo() throws {
        let missing = URL(fileURLWithPath: "/nonexistent/inventory.yml")
        let error = try #require(throws: InventoryError.self) { try Inventory.load(from: missing) }
        #expect(error.code == .io)
        #expect(error.description.contains("does not exist; create it"))
    }
}
