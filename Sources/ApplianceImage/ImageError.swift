/// The one error type of the ApplianceImage module. Match on `code`; show `message` to the operator.
///
/// Messages say what to do next: which apt package provides a missing tool, when to run `apt-get update`.
public struct ImageError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, as a closed set of cases that callers compare with `==`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String, Hashable, Sendable {
            case missingTool
            case packageLookup
            case download
            case invalidInput
            case toolFailed
            case fileSystem
        }

        private let value: Value

        private init(_ value: Value) {
            self.value = value
        }

        /// A host tool the recipe runs is not installed; the message names the apt package that provides it.
        public static let missingTool = Code(.missingTool)
        /// apt does not know a Debian package the recipe needs (empty or stale package lists).
        public static let packageLookup = Code(.packageLookup)
        /// A Debian package could not be downloaded.
        public static let download = Code(.download)
        /// The input is unusable: the applianced binary is missing, or a library it needs is not installed.
        public static let invalidInput = Code(.invalidInput)
        /// A build tool ran and failed; the message carries its standard error.
        public static let toolFailed = Code(.toolFailed)
        /// Reading or writing the cache directory failed.
        public static let fileSystem = Code(.fileSystem)

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
