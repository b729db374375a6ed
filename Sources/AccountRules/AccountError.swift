/// The one error type thrown by AccountRules. Match on `code`; show `message` to the user or operator, it says what
/// to do next.
public struct AccountError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, as a closed set of cases that callers compare with `==`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String, Hashable, Sendable {
            case invalidSecret
            case invalidCode
            case codeAlreadyUsed
            case invalidAccountLabel
            case invalidDisplayName
            case photoTooLarge
            case photoDimensionsOutOfRange
            case photoUnsupportedFormat
            case photoMalformed
            case invalidInstallerOption
        }

        private let value: Value

        private init(_ value: Value) {
            self.value = value
        }

        /// A TOTP secret is not valid base32, or too short, or its parameters are out of range.
        public static let invalidSecret = Code(.invalidSecret)
        /// A one-time code is malformed or does not match the current or the previous step.
        public static let invalidCode = Code(.invalidCode)
        /// A one-time code matches, but its step was already used for this user (a replay).
        public static let codeAlreadyUsed = Code(.codeAlreadyUsed)
        /// The issuer or account name of an otpauth URI is empty or contains a colon.
        public static let invalidAccountLabel = Code(.invalidAccountLabel)
        /// A display name is empty, too long or contains control characters.
        public static let invalidDisplayName = Code(.invalidDisplayName)
        /// The photo file is larger than the policy allows.
        public static let photoTooLarge = Code(.photoTooLarge)
        /// The photo has fewer pixels per side than the policy asks for, or more than it allows.
        public static let photoDimensionsOutOfRange = Code(.photoDimensionsOutOfRange)
        /// The photo is neither PNG nor JPEG.
        public static let photoUnsupportedFormat = Code(.photoUnsupportedFormat)
        /// The photo claims to be PNG or JPEG but its structure is damaged or truncated.
        public static let photoMalformed = Code(.photoMalformed)
        /// An MSI installer option (file name, INSTALLDIR) cannot be written into a safe command line.
        public static let invalidInstallerOption = Code(.invalidInstallerOption)

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
