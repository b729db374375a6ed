public import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The pins `appliancectl` has recorded, one per appliance address, in a 0600 JSON file.
///
/// A pin is recorded at first contact (trust on first use) and checked on every later connection; a mismatch
/// is refused until the operator resets the pin on purpose.
public struct PinStore: Sendable {
    public let file: URL

    public init(directory: URL) {
        self.file = directory.appendingPathComponent("pins.json")
    }

    public func pin(for address: String) throws -> TLSPin? {
        guard let text = try load()[address] else { return nil }
        guard let pin = TLSPin(text) else {
            throw ApplianceClientError.fileError(
                "the pin of \(address) in \(file.path) is damaged; run `appliancectl pin --reset \(address)`"
            )
        }
        return pin
    }

    public func record(_ pin: TLSPin, for address: String) throws {
        var pins = try load()
        pins[address] = pin.description
        try save(pins)
    }

    public func remove(_ address: String) throws {
        var pins = try load()
        pins[address] = nil
        try save(pins)
    }

    private func load() throws -> [String: String] {
        guard let data = try? Data(contentsOf: file) else { return [:] }
        do {
            return try JSONDecoder().decode([String: String].self, from: data)
        } catch {
            throw ApplianceClientError.fileError("\(file.path) is damaged (\(error)); fix or delete it")
        }
    }

    private func save(_ pins: [String: String]) throws {
        let fm = FileManager.default
        try fm.createDirectory(
            at: file.deletingLastPathComponent(),
            withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o700]
        )
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let temporary = file.appendingPathExtension("tmp")
        try encoder.encode(pins).write(to: temporary)
        try fm.setAttributes([.posixPermissions: 0o600], ofItemAtPath: temporary.path)
        guard rename(temporary.path, file.path) == 0 else {
            throw ApplianceClientError.fileError("cannot write \(file.path) (errno \(errno)); check its directory")
        }
    }
}

/// Secrets come from environment variables or 0600 files, never from arguments or playbooks (P1).
public enum Secrets {
    /// Reads a secret from the environment variable `name`, or from `file` (which must not be readable by
    /// group or others). Returns nil when neither is given.
    public static func read(environment name: String?, file: String?) throws -> String? {
        if let file {
            let attributes = try FileManager.default.attributesOfItem(atPath: file)
            if let mode = attributes[.posixPermissions] as? Int, mode & 0o077 != 0 {
                throw ApplianceClientError.fileError(
                    "\(file) is readable by others (mode \(String(mode, radix: 8))); run chmod 600 \(file)"
                )
            }
            let text = try String(contentsOfFile: file, encoding: .utf8)
            return text.trimmingCharacters(in: .newlines)
        }
        if let name, let value = ProcessInfo.processInfo.environment[name], !value.isEmpty {
            return value
        }
        return nil
    }
}
