/// Why a run could not go on, with what to do about it.
public struct ProcedureError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String, Hashable, Sendable {
            case journal, unknownRun, unreadableRun, refused, declined, failed
        }

        private let value: Value

        private init(_ value: Value) {
            self.value = value
        }

        /// The journal could not be read or written.
        public static let journal = Code(.journal)
        /// No run of that id.
        public static let unknownRun = Code(.unknownRun)
        /// The journal holds a kind, step, phase or setting this appliancectl does not know (another version
        /// wrote it).
        public static let unreadableRun = Code(.unreadableRun)
        /// A safety rule refuses the step; nothing further was changed.
        public static let refused = Code(.refused)
        /// The operator declined a destructive step.
        public static let declined = Code(.declined)
        /// A step failed, and putting back what it left also failed (the message says what to do by hand).
        public static let failed = Code(.failed)

        public var description: String { value.rawValue }
    }

    public var code: Code
    public var message: String
    public var cause: (any Error & Sendable)?

    public init(_ code: Code, _ message: String, cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String { message }
}
