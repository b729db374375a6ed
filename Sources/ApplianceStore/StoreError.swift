/// Every failure of the appliance's persistent state, with a message that says what to do.
public struct StoreError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: Hashable, Sendable {
            case invalidInput, notFound, conflict, unavailable, passwordChangeRequired, unauthorized
            case throttled, locked, policy, forbidden, storage, diskFull
        }

        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// The request itself is wrong; nothing was changed.
        public static let invalidInput = Code(.invalidInput)
        public static let notFound = Code(.notFound)
        /// The change would break a rule of the current state (duplicate, last admin address …).
        public static let conflict = Code(.conflict)
        /// The store is being replaced (restore, factory reset); retry shortly.
        public static let unavailable = Code(.unavailable)
        public static let passwordChangeRequired = Code(.passwordChangeRequired)
        public static let unauthorized = Code(.unauthorized)
        /// Login backoff: the next attempt is allowed later.
        public static let throttled = Code(.throttled)
        public static let locked = Code(.locked)
        /// A new password breaks the password policy.
        public static let policy = Code(.policy)
        public static let forbidden = Code(.forbidden)
        /// The disk or database failed.
        public static let storage = Code(.storage)
        /// The data file system has no room left (or not enough for the operation); nothing was changed.
        public static let diskFull = Code(.diskFull)

        public var description: String { "\(value)" }
    }

    public var code: Code
    public var message: String
    /// For `.throttled` and `.locked`: seconds until the next attempt is accepted.
    public var retryAfterSeconds: Int?

    public init(_ code: Code, _ message: String, retryAfterSeconds: Int? = nil) {
        self.code = code
        self.message = message
        self.retryAfterSeconds = retryAfterSeconds
    }

    public var description: String { message }
}
