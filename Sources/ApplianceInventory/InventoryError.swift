/// The one error type thrown by ApplianceInventory. Match on `code`; show `description` to the operator.
///
/// `message` says what is wrong and what to do. When the error comes from a file, `location` names the file and,
/// where known, the line and column; `description` then reads like a compiler diagnostic:
/// `inventory.yml:12:5: unknown key 'adress' in appliance 'old-box'; did you mean 'address'?`.
/// No message ever contains a secret value.
public struct InventoryError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, as a closed set of cases that callers compare with `==`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String, Hashable, Sendable {
            case syntax
            case invalidInventory
            case secretInInventory
            case invalidPlaybook
            case secretInPlaybook
            case unknownAppliance
            case unknownHypervisor
            case cannotEdit
            case missingSecret
            case invalidSecretsFile
            case insecureSecretsFile
            case locked
            case invalidArgument
            case io
        }

        private let value: Value

        private init(_ value: Value) {
            self.value = value
        }

        /// The file is not well-formed YAML (or has duplicate keys).
        public static let syntax = Code(.syntax)
        /// The YAML is well-formed but breaks an inventory rule: unknown key, wrong type, bad name or value.
        public static let invalidInventory = Code(.invalidInventory)
        /// The inventory holds what looks like a secret value; secrets belong in the environment or secrets file.
        public static let secretInInventory = Code(.secretInInventory)
        /// The playbook is well-formed YAML but breaks a playbook rule: unknown key, key of another kind of
        /// playbook, missing key, wrong type or value, or an appliance of the wrong kind for the playbook.
        public static let invalidPlaybook = Code(.invalidPlaybook)
        /// The playbook holds what looks like a secret value where the NAME of a secret belongs.
        public static let secretInPlaybook = Code(.secretInPlaybook)
        /// No appliance of that name in the inventory.
        public static let unknownAppliance = Code(.unknownAppliance)
        /// No hypervisor of that name in the inventory.
        public static let unknownHypervisor = Code(.unknownHypervisor)
        /// Recording into the inventory would need an edit this module does not make safely (see the message).
        public static let cannotEdit = Code(.cannotEdit)
        /// A secret is neither in the environment nor in the secrets file.
        public static let missingSecret = Code(.missingSecret)
        /// The secrets file cannot be read as `NAME=value` lines.
        public static let invalidSecretsFile = Code(.invalidSecretsFile)
        /// The secrets file can be read by other users.
        public static let insecureSecretsFile = Code(.insecureSecretsFile)
        /// Another process holds the lock on that name.
        public static let locked = Code(.locked)
        /// The caller passed a value that cannot be used (a bad name, address or empty pin).
        public static let invalidArgument = Code(.invalidArgument)
        /// Reading or writing a file failed.
        public static let io = Code(.io)

        public var description: String {
            value.rawValue
        }
    }

    /// Where in a file the problem is. `line` and `column` start at 1; columns count Unicode scalars.
    public struct Location: Hashable, Sendable, CustomStringConvertible {
        public var file: String
        public var line: Int?
        public var column: Int?

        public init(file: String, line: Int? = nil, column: Int? = nil) {
            self.file = file
            self.line = line
            self.column = column
        }

        /// `file`, `file:line` or `file:line:column`.
        public var description: String {
            switch (line, column) {
            case (let line?, let column?): "\(file):\(line):\(column)"
            case (let line?, nil): "\(file):\(line)"
            default: file
            }
        }
    }

    public var code: Code
    /// What is wrong and what to do about it, without the location prefix.
    public var message: String
    public var location: Location?
    public var cause: (any Error & Sendable)?

    public init(code: Code, message: String, location: Location? = nil, cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.location = location
        self.cause = cause
    }

    /// `file:line:column: message`, or just the message when there is no location.
    public var description: String {
        guard let location else { return message }
        return "\(location): \(message)"
    }
}
