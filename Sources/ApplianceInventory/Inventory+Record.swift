public import Foundation
import Yams

extension Inventory {
    /// Records what provisioning or first contact learnt about an appliance — its address, id and TLS pin — in
    /// the inventory file.
    ///
    /// Only the lines of those keys inside the appliance's block change: an existing value is replaced in place
    /// (a comment after it stays), a missing key is added at the end of the block with the block's indentation.
    /// Comments, blank lines, key order and every other appliance stay byte for byte. For a physical appliance
    /// the address is its `physical.address`.
    ///
    /// The new text is written to a temporary file beside the inventory (same mode), fsynced, read back and
    /// validated; only when it parses to exactly the old inventory plus these values is it renamed over the
    /// file. Otherwise the file is left untouched. Concurrent recorders into one directory take turns.
    ///
    /// - Parameters:
    ///   - appliance: The appliance's name.
    ///   - address: The new `HOST:PORT`, or nil to leave the address as it is.
    ///   - id: The appliance id, or nil to leave it as it is.
    ///   - pin: The TLS pin, or nil to leave it as it is.
    ///   - file: The inventory file.
    /// - Returns: The inventory as it is now in the file.
    /// - Throws: `InventoryError`: the file is invalid, the appliance is unknown, a value is unusable, or the edit
    ///   cannot be made safely (`.cannotEdit`).
    @discardableResult
    public static func record(
        appliance name: String,
        address: String?,
        id: String?,
        pin: String?,
        in file: URL
    ) throws -> Inventory {
        if let address, let problem = InventoryRules.addressProblem(address) {
            throw InventoryError(code: .invalidArgument, message: "cannot record address for '\(name)': \(problem)")
        }
        for (key, value) in [("id", id), ("pin", pin)] {
            if let value, let problem = InventoryRules.opaqueValueProblem(value) {
                throw InventoryError(code: .invalidArgument, message: "cannot record \(key) for '\(name)': \(problem)")
            }
        }
        let target = file.resolvingSymlinksInPath()
        let displayName = InventoryFile.displayName(of: file)
        return try InventoryFile.withDirectoryLock(of: target) {
            let text = try InventoryFile.readText(of: target)
            let document = try InventoryDocument(text: text, file: displayName)
            let (newText, expected) = try edited(document, appliance: name, address: address, id: id, pin: pin)
            guard newText != text else { return document.inventory }
            try InventoryFile.replaceAtomically(target, with: Data(newText.utf8)) { written in
                let reparsed: Inventory
                do {
                    reparsed = try Inventory.parse(String(decoding: written, as: UTF8.self), file: displayName)
                } catch {
                    throw InventoryError(
                        code: .cannotEdit,
                        message: "recording into appliance '\(name)' would make the inventory invalid (\(error)); "
                            + "the file is unchanged — record the values by hand",
                        location: .init(file: displayName),
                        cause: error as? InventoryError
                    )
                }
                guard reparsed == expected else {
                    throw InventoryError(
                        code: .cannotEdit,
                        message: "recording into appliance '\(name)' would not give the expected values; "
                            + "the file is unchanged — record the values by hand",
                        location: .init(file: displayName)
                    )
                }
            }
            return expected
        }
    }

    /// The text with the values set, and the inventory it must parse to.
    private static func edited(
        _ document: InventoryDocument,
        appliance name: String,
        address: String?,
        id: String?,
        pin: String?
    ) throws -> (text: String, expected: Inventory) {
        var expected = document.inventory
        guard let index = expected.appliances.firstIndex(where: { $0.name == name }),
            let nodes = document.applianceNodes[name]
        else {
            _ = try expected.appliance(named: name)  // throws the "no appliance" error
            throw InventoryError(code: .unknownAppliance, message: "no appliance '\(name)' in \(document.file)")
        }
        let (applianceKey, applianceValue) = nodes
        var editor = InventoryEditor(text: document.text, file: document.file)
        var entry = expected.appliances[index]
        let scope = " in appliance '\(name)'"

        var changes: [InventoryEditor.Change] = []
        if let address, address != entry.address {
            if case .physical = entry.kind {
                guard case .mapping(let mapping) = applianceValue,
                    let physical = mapping.first(where: { $0.key.string == "physical" })
                else {
                    throw InventoryError(code: .cannotEdit, message: "cannot find 'physical'\(scope)")
                }
                changes.append(
                    .init(
                        key: "address",
                        value: address,
                        mapping: physical.value,
                        parentKey: physical.key,
                        scope: " in 'physical' of appliance '\(name)'"
                    )
                )
                entry.kind = .physical(address: address)
            } else {
                changes.append(
                    .init(
                        key: "address",
                        value: address,
                        mapping: applianceValue,
                        parentKey: applianceKey,
                        scope: scope
                    )
                )
            }
            entry.address = address
        }
        if let id, id != entry.id {
            changes.append(.init(key: "id", value: id, mapping: applianceValue, parentKey: applianceKey, scope: scope))
            entry.id = id
        }
        if let pin, pin != entry.pin {
            changes.append(
                .init(key: "pin", value: pin, mapping: applianceValue, parentKey: applianceKey, scope: scope)
            )
            entry.pin = pin
        }
        try editor.apply(changes)
        expected.appliances[index] = entry
        return (editor.text, expected)
    }
}
