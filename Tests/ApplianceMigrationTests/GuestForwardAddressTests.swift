import ApplianceInventory
import Foundation
import Testing

@testable import ApplianceMigration

/// Where a new virtual appliance reaches the old box for the live method's sync, from the inventory alone.
@Suite struct GuestForwardAddressTests {
    static let inventory = """
        hypervisors:
          local:
            network: user
          rack:
            uri: qemu+ssh://virt@rack.example.net/system
            network: appliance-nat
        appliances:
          old-box:
            physical:
              address: 127.0.0.11:9443
            password: OLD
          user-vm:
            virtual:
              hypervisor: local
            password: NEW
          bridged-vm:
            virtual:
              hypervisor: rack
            password: NEW
          other-box:
            physical:
              address: 127.0.0.21:8443
            password: OTHER
        """

    @Test func onlyAVMOnUserNetworkingSyncsThroughAGuestForward() throws {
        let inventory = try Inventory.parse(Self.inventory, file: "inventory.yml")
        let old = BoxReference(name: "old-box", address: "127.0.0.11:9443", pin: nil, isVirtual: false)
        func address(_ name: String) throws -> String? {
            try RunSession.guestForwardAddress(to: old, from: inventory.appliance(named: name), inventory: inventory)
        }
        // User networking reaches nothing on its own: the guest side of a forward, on the old box's port.
        #expect(try address("user-vm") == "10.0.2.100:9443")
        // A libvirt network and a physical box reach the old box's own address.
        #expect(try address("bridged-vm") == nil)
        #expect(try address("other-box") == nil)
        // An old box with no address yet gives nothing to forward to.
        let unknown = BoxReference(name: "old-box", address: nil, pin: nil, isVirtual: false)
        #expect(
            try RunSession.guestForwardAddress(
                to: unknown,
                from: inventory.appliance(named: "user-vm"),
                inventory: inventory
            )
                == nil
        )
    }
}
