public import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Resolves secret NAMEs (admin passwords, backup password, key passphrase) to values: first the environment
/// variable NAME, then the secrets file given with `--secrets FILE`, if any.
///
/// The secrets file holds `NAME=value` lines; blank lines and lines starting with '#' are skipped. The value is
/// everything after the first '=', without surrounding white space; wrap it in double or single quotes to keep
/// white space at its ends (one pair of quotes is removed). The file must not be readable or writable by group
/// or others (mode 0600 or stricter). Nothing this type prints or throws contains a secret value.
public struct SecretSource: Sendable, CustomStringConvertible, CustomReflectable {
    /// The secrets file, if any.
    public let secretsFile: URL?
    private let environment: [String: String]
    private let fileSecrets: [String: String]

    /// Reads and checks the secrets file, if one is given.
    ///
    /// - Parameters:
    ///   - environment: The environment to look in first; the process environment by default.
    ///   - secretsFile: The `NAME=value` file to look in next, or nil for none.
    /// - Throws: `InventoryError` with code `.insecureSecretsFile` when the file is readable or writable by group
    ///   or others, `.invalidSecretsFile` for a line that is not `NAME=value`, `.io` when it cannot be read.
    public init(environment: [String: String] = ProcessInfo.processInfo.environment, secretsFile: URL? = nil) throws {
        self.environment = environment
        self.secretsFile = secretsFile
        self.fileSecrets = try secretsFile.map(Self.readSecretsFile) ?? [:]
    }

    /// The secret called `name`.
    ///
    /// - Throws: `InventoryError` with code `.missingSecret`, saying where to put it, or `.invalidArgument` when
    ///   `name` is not a secret name.
    public func resolve(_ name: String) throws -> Secret {
        guard InventoryRules.isValidSecretName(name) else {
            throw InventoryError(
                code: .invalidArgument,
                message: "'\(name)' is not a secret name; use capital letters, digits and '_', such as OLD_BOX_PASSWORD"
            )
        }
        if let value = environment[name], !value.isEmpty {
            return Secret(name: name, value: value, origin: .environment)
        }
        if let value = fileSecrets[name], let secretsFile {
            return Secret(name: name, value: value, origin: .secretsFile(path: secretsFile.relativePath))
        }
        var message = "secret \(name) is not set: set the environment variable \(name) or add \(name)=… to "
        if let secretsFile {
            message += "the secrets file \(secretsFile.relativePath)"
        } else {
            message += "a secrets file (mode 0600) and pass it with --secrets FILE"
        }
        if environment[name] != nil { message += " (the environment variable \(name) is empty)" }
        throw InventoryError(code: .missingSecret, message: message)
    }

    /// The admin password of `appliance`, from the secret its inventory entry names.
    public func adminPassword(for appliance: ApplianceEntry) throws -> Secret {
        try resolve(appliance.passwordSecret)
    }

    /// Names only, never values.
    public var description: String {
        let file = secretsFile.map { ", secrets file \($0.relativePath) with \(fileSecrets.count) secret(s)" } ?? ""
        return "SecretSource(environment\(file))"
    }

    public var customMirror: Mirror {
        Mirror(self, children: ["secretsFile": secretsFile as Any, "secretNames": fileSecrets.keys.sorted()])
    }

    // MARK: The secrets file

    private static func readSecretsFile(_ url: URL) throws -> [String: String] {
        let path = url.relativePath
        let descriptor = open(url.path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            let reason = String(cString: strerror(errno))
            throw InventoryError(
                code: .io,
                message: "cannot open the secrets file \(path): \(reason); check the path given with --secrets"
            )
        }
        let handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
        // Check the file that was opened, not whatever the path names by now.
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            throw InventoryError(code: .io, message: "cannot inspect the secrets file \(path)")
        }
        guard status.st_mode & S_IFMT == S_IFREG else {
            throw InventoryError(code: .invalidSecretsFile, message: "the secrets file \(path) is not a regular file")
        }
        let mode = status.st_mode & 0o777
        guard mode & 0o077 == 0 else {
            throw InventoryError(
                code: .insecureSecretsFile,
                message: "the secrets file \(path) can be read or written by other users (mode "
                    + "\(String(mode, radix: 8).leftPadded(to: 4))); chmod 600 \(path)"
            )
        }
        let data: Data
        do {
            data = try handle.readToEnd() ?? Data()
        } catch {
            throw InventoryError(code: .io, message: "cannot read the secrets file \(path); check its permissions")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw InventoryError(code: .invalidSecretsFile, message: "the secrets file \(path) is not UTF-8 text")
        }
        return try parseSecrets(text, path: path)
    }

    /// Parses `NAME=value` lines. Messages name the line but never show it: it may hold a secret.
    static func parseSecrets(_ text: String, path: String) throws -> [String: String] {
        var secrets: [String: String] = [:]
        var lineOf: [String: Int] = [:]
        for (offset, rawLine) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated()
        {
            let number = offset + 1
            let line = rawLine.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let location = InventoryError.Location(file: path, line: number)
            guard let equals = line.firstIndex(of: "=") else {
                throw InventoryError(
                    code: .invalidSecretsFile,
                    message: "expected NAME=value (the line is not shown: it may hold a secret)",
                    location: location
                )
            }
            let name = line[..<equals].trimmingCharacters(in: .whitespaces)
            guard InventoryRules.isValidSecretName(name) else {
                throw InventoryError(
                    code: .invalidSecretsFile,
                    message: "expected NAME=value with NAME in capital letters, digits and '_' "
                        + "(the line is not shown: it may hold a secret)",
                    location: location
                )
            }
            var value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            if value.count >= 2, let first = value.first, first == "\"" || first == "'", value.last == first {
                value = String(value.dropFirst().dropLast())
            }
            guard !value.isEmpty else {
                throw InventoryError(code: .invalidSecretsFile, message: "\(name) is empty", location: location)
            }
            if let earlier = lineOf[name] {
                throw InventoryError(
                    code: .invalidSecretsFile,
                    message: "\(name) is set twice (lines \(earlier) and \(number)); keep one",
                    location: location
                )
            }
            secrets[name] = value
            lineOf[name] = number
        }
        return secrets
    }
}

extension String {
    fileprivate func leftPadded(to length: Int) -> String {
        String(repeating: "0", count: Swift.max(0, length - count)) + self
    }
}
