/// The one error type thrown by BackupFormat. Match on `code`; show `message` to the operator.
public struct BackupFormatError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, as a closed set of cases that callers compare with `==`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String, Hashable, Sendable {
            case notEncrypted
            case wrongPassword
            case corrupt
            case truncated
            case notABackup
            case unsupported
            case invalidArgument
            case passwordRequired
            case unreadable
        }

        private let value: Value

        private init(_ value: Value) {
            self.value = value
        }

        /// The input is not age-encrypted; callers treat it as a plain (unencrypted) tar archive.
        public static let notEncrypted = Code(.notEncrypted)
        /// The passphrase does not unlock the backup.
        public static let wrongPassword = Code(.wrongPassword)
        /// The data was damaged or modified (failed authentication, bad checksum, malformed structure).
        public static let corrupt = Code(.corrupt)
        /// The data ends before its format says it is complete (for example an interrupted upload).
        public static let truncated = Code(.truncated)
        /// The archive is readable but is not an appliance backup (for example, no valid manifest).
        public static let notABackup = Code(.notABackup)
        /// A valid file using a feature or version this software does not handle.
        public static let unsupported = Code(.unsupported)
        /// The caller passed something that cannot be written (a name or size the format cannot hold).
        public static let invalidArgument = Code(.invalidArgument)
        /// The backup is encrypted and no password was given.
        public static let passwordRequired = Code(.passwordRequired)
        /// The backup file cannot be opened or read (missing, no permission, an I/O error).
        public static let unreadable = Code(.unreadable)

        public var description: String {
            value.rawValue
        }
    }

    public var code: Code
    public var message: String

    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String {
        "\(code): \(message)"
    }
}
