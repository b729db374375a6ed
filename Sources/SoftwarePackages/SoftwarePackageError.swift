/// The one error type thrown by SoftwarePackages. Match on `code`; show `message` to the operator.
public struct SoftwarePackageError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, as a closed set of cases that callers compare with `==`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String, Hashable, Sendable {
            case notAPackage
            case truncated
            case untrustedKey
            case badSignature
            case tamperedPayload
            case unsupportedFormat
            case downgrade
            case missingRequirement
            case invalidRepository
            case conflict
            case invalidDownloadKey
            case clockSkew
            case invalidArgument
            case storage
        }

        private let value: Value

        private init(_ value: Value) {
            self.value = value
        }

        /// The file is not a software package: not a tar archive, a damaged one, or one without the package
        /// members (`manifest.json`, `signature`, `payload`) or with an unreadable manifest.
        public static let notAPackage = Code(.notAPackage)
        /// The package file ends early (an interrupted copy or download).
        public static let truncated = Code(.truncated)
        /// The package is signed by a key that is not in the trusted list.
        public static let untrustedKey = Code(.untrustedKey)
        /// The signature does not match the manifest: the manifest or signature was changed after signing.
        public static let badSignature = Code(.badSignature)
        /// The payload's size or SHA-256 differs from the signed manifest.
        public static let tamperedPayload = Code(.tamperedPayload)
        /// A package, index or ledger in a format version newer than this software reads.
        public static let unsupportedFormat = Code(.unsupportedFormat)
        /// The package is not newer than the installed version (a downgrade, or the same version again).
        public static let downgrade = Code(.downgrade)
        /// A package this one requires is not installed at the required version.
        public static let missingRequirement = Code(.missingRequirement)
        /// A repository's `index.json` is missing, unreadable or names files unsafely.
        public static let invalidRepository = Code(.invalidRepository)
        /// The repository already holds a different file for the same package name and version.
        public static let conflict = Code(.conflict)
        /// A download key is malformed, its signature is wrong or it belongs to another appliance.
        public static let invalidDownloadKey = Code(.invalidDownloadKey)
        /// A download key's time is too far in the future or too old for this machine's clock.
        public static let clockSkew = Code(.clockSkew)
        /// The caller passed a value the format cannot hold (a bad package name or version, for example).
        public static let invalidArgument = Code(.invalidArgument)
        /// Reading or writing a file failed (permissions, free space, a missing directory).
        public static let storage = Code(.storage)

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
