/// An error from talking to an appliance, with a message meant for an operator that says what to do next.
public struct ApplianceClientError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is; compare with `==` against the static members of ``Code``.
    public var code: Code
    /// A human-readable explanation, including the appliance address and the next step to take.
    public var message: String

    /// For `.refused`: the HTTP status of the appliance's answer.
    public var apiStatus: Int?
    /// For `.refused`: the appliance's stable error code (e.g. `wrong_password`).
    public var apiCode: String?

    /// Creates an error with a code and an operator-facing message.
    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    /// The appliance understood the request and refused it; `message` is the appliance's own explanation.
    public static func api(status: Int, code: String, message: String) -> ApplianceClientError {
        var error = ApplianceClientError(code: .refused, message: message)
        error.apiStatus = status
        error.apiCode = code
        return error
    }

    static func protocolError(_ message: String) -> ApplianceClientError {
        ApplianceClientError(code: .protocolError, message: message)
    }

    static func fileError(_ message: String) -> ApplianceClientError {
        ApplianceClientError(code: .fileError, message: message)
    }

    public var description: String { self.message }

    /// The kind of failure. New kinds may be added, so don't switch over it exhaustively.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Kind: String, Sendable, Hashable {
            case connectionFailed
            case tlsHandshakeFailed
            case pinMismatch
            case timeout
            case protocolError
            case fileError
            case refused
        }

        private let kind: Kind

        private init(_ kind: Kind) {
            self.kind = kind
        }

        /// The appliance could not be reached, or the connection was lost.
        public static let connectionFailed = Code(.connectionFailed)
        /// The TLS handshake failed for a reason other than a pin mismatch.
        public static let tlsHandshakeFailed = Code(.tlsHandshakeFailed)
        /// The appliance presented a public key that does not match the recorded pin.
        public static let pinMismatch = Code(.pinMismatch)
        /// Connecting or the whole request took longer than allowed.
        public static let timeout = Code(.timeout)
        /// The appliance sent something that isn't acceptable HTTP, or too much of it.
        public static let protocolError = Code(.protocolError)
        /// A local file could not be read or written.
        public static let fileError = Code(.fileError)
        /// The appliance answered with an error (see `apiStatus`, `apiCode`).
        public static let refused = Code(.refused)

        public var description: String { self.kind.rawValue }
    }
}
