import Foundation
import Testing

@testable import ApplianceInventory

/// Recording address, id and pin edits only those lines and keeps the rest of the file byte for byte.
@Suite struct InventoryRecordTests {
    static let inventory = """
        # appliancectl inventory for the lab
        hypervisors:
          local:
            uri: session   # our own session daemon

        appliances:
          # the box being replaced
          old-box:
            physical:
              address: 127.0.0.11:9443   # shared IP
            pin: null
            password: OLD_BOX_PASSWORD

          new-vm:
            virtual:
              hypervisor: local
              memory_mib: 256        # 96…65536
            address: null            # recorded by provisioning
            id:                      # recorded by provisioning
            pin: null                # recorded at first contact
            password: NEW_VM_PASSWORD

          # a spare, not provisioned yet
          spare-vm:
            virtual:
              hypervisor: local
            password: SPARE_VM_PASSWORD
            # more to come

          # the end
          last-vm:
            virtual:
              hypervisor: local
        """

    static func lines(_ url: URL) throws -> [String] {
        try String(contentsOf: url, encoding: .utf8).components(separatedBy: "\n")
    }

    @Test func replacesExistingValuesInPlaceKeepingComments() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let file = try directory.file("inventory.yml", Self.inventory)
        let before = try Self.lines(file)

        let id = "3f1c2a9e-8d1b-4c55-9a0e-2b7f0c6d1e42"
        let pin = "sha256/q83vEjRWeJq8T7mA+X0e3zJ1cm9vdA=="
        let result = try Inventory.record(appliance: "new-vm", address: "127.0.0.1:40123", id: id, pin: pin, in: file)

        let after = try Self.lines(file)
        #expect(after.count == before.count)
        #expect(after[17] == "    address: 127.0.0.1:40123 # recorded by provisioning")
        #expect(after[18] == "    id: 3f1c2a9e-8d1b-4c55-9a0e-2b7f0c6d1e42 # recorded by provisioning")
        #expect(after[19] == "    pin: sha256/q83vEjRWeJq8T7mA+X0e3zJ1cm9vdA== # recorded at first contact")
        for index in before.indices where ![17, 18, 19].contains(index) {
            #expect(after[index] == before[index], "line \(index + 1) changed")
        }
        let entry = try Inventory.load(from: file).appliance(named: "new-vm")
        #expect(entry.address == "127.0.0.1:40123" && entry.id == id && entry.pin == pin)
        #expect(try result.appliance(named: "new-vm") == entry)
    }

    @Test func keepsTheCommentColumnWhenTheValueIsShort() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let file = try directory.file("inventory.yml", Self.inventory)
        try Inventory.record(appliance: "new-vm", address: "10.0.0.5:443", id: nil, pin: nil, in: file)
        #expect(try Self.lines(file)[17] == "    address: 10.0.0.5:443    # recorded by provisioning")
    }

    @Test func addsMissingKeysAtTheEndOfTheBlock() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let file = try directory.file("inventory.yml", Self.inventory)
        let before = try Self.lines(file)

        try Inventory.record(appliance: "spare-vm", address: "[::1]:40124", id: "id-1", pin: "0123", in: file)

        let after = try Self.lines(file)
        // The block's own trailing comment stays inside it; the next appliance's comment stays with that one.
        let added = ["    address: \"[::1]:40124\"", "    id: id-1", "    pin: \"0123\""]
        #expect(Array(after[0...27]) == Array(before[0...27]))
        #expect(Array(after[28...30]) == added)
        #expect(Array(after[31...]) == Array(before[28...]))

        let entry = try Inventory.load(from: file).appliance(named: "spare-vm")
        #expect(entry.address == "[::1]:40124" && entry.id == "id-1" && entry.pin == "0123")
    }

    @Test func addsKeysToTheLastApplianceOfAFileWithoutFinalNewline() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let file = try directory.file("inventory.yml", Self.inventory)
        try Inventory.record(appliance: "last-vm", address: "127.0.0.1:40125", id: nil, pin: nil, in: file)
        let text = try String(contentsOf: file, encoding: .utf8)
        #expect(text == Self.inventory + "\n    address: 127.0.0.1:40125")
    }

    @Test func recordsThePinOfAPhysicalBoxAndMovesItsAddress() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let file = try directory.file("inventory.yml", Self.inventory)
        let before = try Self.lines(file)

        try Inventory.record(appliance: "old-box", address: "127.0.0.12:9443", id: nil, pin: "sha256/AAAA", in: file)

        let after = try Self.lines(file)
        #expect(after[9] == "      address: 127.0.0.12:9443   # shared IP")
        #expect(after[10] == "    pin: sha256/AAAA")
        for index in before.indices where ![9, 10].contains(index) {
            #expect(after[index] == before[index], "line \(index + 1) changed")
        }
        #expect(
            try Inventory.load(from: file).appliance(named: "old-box").kind == .physical(address: "127.0.0.12:9443")
        )
    }

    @Test func keepsTheFileModeAndWindowsLineEndings() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let crlf = Self.inventory.replacingOccurrences(of: "\n", with: "\r\n") + "\r\n"
        let file = try directory.file("inventory.yml", crlf, mode: 0o640)

        try Inventory.record(appliance: "spare-vm", address: nil, id: nil, pin: "p1", in: file)

        let attributes = try FileManager.default.attributesOfItem(atPath: file.path)
        #expect((attributes[.posixPermissions] as? Int) == 0o640)
        let text = try String(contentsOf: file, encoding: .utf8)
        #expect(
            text.contains("    password: SPARE_VM_PASSWORD\r\n    # more to come\r\n    pin: p1\r\n\r\n  # the end")
        )
        #expect(!text.replacingOccurrences(of: "\r\n", with: "").contains("\n"))
        // Nothing else is left in the directory (the temporary file was renamed).
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.url.path) == ["inventory.yml"])
    }

    @Test func doesNotRewriteWhenNothingChanges() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let file = try directory.file("inventory.yml", Self.inventory)
        let inode = try FileManager.default.attributesOfItem(atPath: file.path)[.systemFileNumber] as? Int
        try Inventory.record(appliance: "old-box", address: "127.0.0.11:9443", id: nil, pin: nil, in: file)
        #expect(try FileManager.default.attributesOfItem(atPath: file.path)[.systemFileNumber] as? Int == inode)
        #expect(try String(contentsOf: file, encoding: .utf8) == Self.inventory)
    }

    @Test func refusesToAddKeysToAFlowStyleAppliance() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let text = "hypervisors: {local: {}}\nappliances:\n  vm: {virtual: {hypervisor: local}}\n"
        let file = try directory.file("inventory.yml", text)
        let error = try #require(throws: InventoryError.self) {
            try Inventory.record(appliance: "vm", address: "127.0.0.1:40000", id: nil, pin: nil, in: file)
        }
        #expect(error.code == .cannotEdit)
        #expect(error.description.hasPrefix(file.path + ":3:3: "))
        #expect(error.message.contains("flow style"))
        #expect(try String(contentsOf: file, encoding: .utf8) == text)
    }

    @Test func refusesAMultiLineValue() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let text = "appliances:\n  box:\n    physical: {address: '10.0.0.1:443'}\n    pin: first\n      part\n"
        let file = try directory.file("inventory.yml", text)
        let error = try #require(throws: InventoryError.self) {
            try Inventory.record(appliance: "box", address: nil, id: nil, pin: "new", in: file)
        }
        #expect(error.code == .cannotEdit)
        #expect(try String(contentsOf: file, encoding: .utf8) == text)
    }

    @Test func refusesUnknownAppliancesAndBadValues() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let file = try directory.file("inventory.yml", Self.inventory)
        let unknown = try #require(throws: InventoryError.self) {
            try Inventory.record(appliance: "nope", address: nil, id: nil, pin: "x", in: file)
        }
        #expect(unknown.code == .unknownAppliance)
        #expect(unknown.message.contains("known appliances: old-box, new-vm, spare-vm, last-vm"))

        let badAddress = try #require(throws: InventoryError.self) {
            try Inventory.record(appliance: "new-vm", address: "::1:80", id: nil, pin: nil, in: file)
        }
        #expect(badAddress.code == .invalidArgument)
        let emptyPin = try #require(throws: InventoryError.self) {
            try Inventory.record(appliance: "new-vm", address: nil, id: nil, pin: "", in: file)
        }
        #expect(emptyPin.code == .invalidArgument)
        #expect(try String(contentsOf: file, encoding: .utf8) == Self.inventory)
    }

    @Test func refusesToRecordIntoAnInvalidFile() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let text = Self.inventory.replacingOccurrences(of: "memory_mib: 256", with: "memory_mb: 256")
        let file = try directory.file("inventory.yml", text)
        let error = try #require(throws: InventoryError.self) {
            try Inventory.record(appliance: "new-vm", address: "127.0.0.1:40123", id: nil, pin: nil, in: file)
        }
        #expect(error.description.hasPrefix(file.path + ":17:7: unknown key 'memory_mb'"))
        #expect(try String(contentsOf: file, encoding: .utf8) == text)
    }

    @Test func aFailedVerificationLeavesTheOriginalUntouched() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let file = try directory.file("inventory.yml", Self.inventory)
        struct Refused: Error {}
        #expect(throws: Refused.self) {
            try InventoryFile.replaceAtomically(file, with: Data("garbage".utf8)) { written in
                #expect(written == Data("garbage".utf8))
                throw Refused()
            }
        }
        #expect(try String(contentsOf: file, encoding: .utf8) == Self.inventory)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.url.path) == ["inventory.yml"])
    }

    @Test func recordsThroughASymbolicLink() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let real = try directory.file("real.yml", Self.inventory)
        let link = directory.url.appendingPathComponent("inventory.yml")
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: real)
        try Inventory.record(appliance: "new-vm", address: nil, id: "abc", pin: nil, in: link)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link.path) == real.path)
        #expect(try Inventory.load(from: real).appliance(named: "new-vm").id == "abc")
    }

    @Test(arguments: ["[::1]:9443", "0123", "null", "yes", "a b", "sha256/x+y=", "ends-with:", "quote\"d", "#hash"])
    func rendersValuesThatReadBackUnchanged(_ value: String) throws {
        let rendered = InventoryEditor.render(value)
        let text = "appliances:\n  box:\n    physical: {address: '10.0.0.1:443'}\n    pin: \(rendered)\n"
        #expect(try Inventory.parse(text, file: "inventory.yml").appliance(named: "box").pin == value)
    }
}

/// Flow-style (`{…}`) entries can have existing values replaced, not new keys added.
@Suite struct InventoryRecordFlowTests {
    @Test func replacesValuesInsideBraces() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let text = """
            appliances:
              box: {physical: {address: '10.0.0.1:443'}, pin: null, password: BOX_PW}  # the lab box
              other: {physical: {address: 10.0.0.2:443}, pin: keep}

            """
        let file = try directory.file("inventory.yml", text)
        try Inventory.record(appliance: "box", address: "10.0.0.9:8443", id: nil, pin: "sha256/Zm9v", in: file)
        let expected = text.replacingOccurrences(
            of: "{address: '10.0.0.1:443'}, pin: null,",
            with: "{address: 10.0.0.9:8443}, pin: sha256/Zm9v,"
        )
        #expect(try String(contentsOf: file, encoding: .utf8) == expected)

        try Inventory.record(appliance: "other", address: "[::1]:1", id: nil, pin: "x", in: file)
        let entry = try Inventory.load(from: file).appliance(named: "other")
        #expect(entry.address == "[::1]:1" && entry.pin == "x")
        #expect(try String(contentsOf: file, encoding: .utf8).contains("{physical: {address: \"[::1]:1\"}, pin: x}"))
    }
}

/// Messages name the inventory the way the operator wrote its path.
@Suite struct InventoryFileNameTests {
    @Test func aRelativePathStaysRelative() {
        #expect(InventoryFile.displayName(of: URL(fileURLWithPath: "inventory.yml")) == "inventory.yml")
        #expect(InventoryFile.displayName(of: URL(fileURLWithPath: "lab/inventory.yml")) == "lab/inventory.yml")
        #expect(InventoryFile.displayName(of: URL(fileURLWithPath: "/etc/inventory.yml")) == "/etc/inventory.yml")
    }
}
