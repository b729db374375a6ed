/// The one error type thrown by ApplianceCrypto. Match on `code`; show `message` to the operator.
public struct CryptoError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, as a closed set of cases that callers compare with `==`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String, Hashable, Sendable {
            case authenticationFailed
            case invalidArgument
            case invalidCertificate
            case internalFailure
            case passphraseRequired
            case wrongPassphrase
        }

        private let value: Value

        private init(_ value: Value) {
            self.value = value
        }

        /// Sealed data failed its integrity check: wrong key, or the data was modified.
        public static let authenticationFailed = Code(.authenticationFailed)
        /// A parameter was out of range or malformed; the message names it.
        public static let invalidArgument = Code(.invalidArgument)
        /// A certificate or key could not be parsed.
        public static let invalidCertificate = Code(.invalidCertificate)
        /// OpenSSL reported a failure that valid input should not cause (for example, out of memory).
        public static let internalFailure = Code(.internalFailure)
        /// The input is encrypted (or the output must be) and no passphrase was given.
        public static let passphraseRequired = Code(.passphraseRequired)
        /// The passphrase given does not decrypt the input.
        public static let wrongPassphrase = Code(.wrongPassphrase)

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
