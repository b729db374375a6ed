import CLibvirt

/// The one error type thrown by Libvirt. Match on `code`; show `message` to the operator.
public struct LibvirtError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, as a closed set of cases that callers compare with `==`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String, Hashable, Sendable {
            case connectionFailed
            case notFound
            case alreadyExists
            case invalidOperation
            case invalidArgument
            case unsupported
            case operationFailed
        }

        private let value: Value

        private init(_ value: Value) {
            self.value = value
        }

        /// The hypervisor connection could not be opened, or it broke.
        public static let connectionFailed = Code(.connectionFailed)
        /// No domain, pool, volume or network has that name.
        public static let notFound = Code(.notFound)
        /// An object with that name or UUID already exists.
        public static let alreadyExists = Code(.alreadyExists)
        /// The object is not in a state that allows the operation (for example, the connection is closed or the
        /// domain is not running).
        public static let invalidOperation = Code(.invalidOperation)
        /// An argument or an XML description was malformed; the message says which.
        public static let invalidArgument = Code(.invalidArgument)
        /// The hypervisor driver behind the connection does not support the operation.
        public static let unsupported = Code(.unsupported)
        /// Any other libvirt failure; `libvirtCode` and `libvirtDomain` hold libvirt's own classification.
        public static let operationFailed = Code(.operationFailed)

        public var description: String {
            value.rawValue
        }
    }

    public var code: Code
    /// What failed, libvirt's explanation, and what to do about it.
    public var message: String
    /// libvirt's `virErrorNumber` (0 when the error did not come from libvirt).
    public var libvirtCode: Int32
    /// libvirt's `virErrorDomain`: the subsystem that raised the error (0 when none).
    public var libvirtDomain: Int32

    public init(code: Code, message: String, libvirtCode: Int32 = 0, libvirtDomain: Int32 = 0) {
        self.code = code
        self.message = message
        self.libvirtCode = libvirtCode
        self.libvirtDomain = libvirtDomain
    }

    public var description: String {
        "\(code): \(message)"
    }
}

extension LibvirtError {
    /// Builds an error from libvirt's last error on this thread.
    ///
    /// Call this immediately after the failing libvirt call, on the same thread, with nothing in between that could
    /// call libvirt (every public libvirt function, including the `*Free` ones run by a handle's `deinit`, clears the
    /// last error on entry) and no `await`.
    ///
    /// - Parameters:
    ///   - operation: What was attempted, for example `start domain 'web'`.
    ///   - code: Overrides the code derived from libvirt's error number.
    static func last(_ operation: String, code: Code? = nil) -> LibvirtError {
        // Copy everything out of libvirt's thread-local error before doing anything else.
        guard let error = virGetLastError() else {
            return LibvirtError(
                code: code ?? .operationFailed,
                message: "could not \(operation): libvirt reported no reason."
            )
        }
        let number = error.pointee.code
        let domain = error.pointee.domain
        let text = error.pointee.message.map { String(cString: $0) } ?? ""

        // libvirt's messages may end in a newline or a full stop; the advice follows as its own sentence.
        var reason = Substring(text)
        while let last = reason.last, last.isWhitespace || last == "." {
            reason = reason.dropLast()
        }
        if reason.isEmpty {
            reason = "libvirt gave no message"
        }

        let resolved = code ?? classify(number)
        let message = "could not \(operation): \(reason). \(advice(for: resolved))"
        return LibvirtError(code: resolved, message: message, libvirtCode: number, libvirtDomain: domain)
    }

    /// The error for an operation on a connection that `close()` has already closed.
    static func closed(_ operation: String) -> LibvirtError {
        LibvirtError(
            code: .invalidOperation,
            message: "could not \(operation): the connection is closed. Open a new one with LibvirtConnection.open(_:)."
        )
    }

    private static func classify(_ number: Int32) -> Code {
        switch virErrorNumber(rawValue: UInt32(bitPattern: number)) {
        case VIR_ERR_NO_DOMAIN, VIR_ERR_NO_STORAGE_POOL, VIR_ERR_NO_STORAGE_VOL, VIR_ERR_NO_NETWORK,
            VIR_ERR_NO_DOMAIN_SNAPSHOT, VIR_ERR_NO_DOMAIN_CHECKPOINT, VIR_ERR_NO_NETWORK_PORT, VIR_ERR_NO_SECRET,
            VIR_ERR_NO_INTERFACE, VIR_ERR_NO_NODE_DEVICE, VIR_ERR_NO_NWFILTER:
            return .notFound
        case VIR_ERR_DOM_EXIST, VIR_ERR_NETWORK_EXIST, VIR_ERR_STORAGE_VOL_EXIST, VIR_ERR_NETWORK_PORT_EXIST:
            return .alreadyExists
        case VIR_ERR_OPERATION_INVALID:
            return .invalidOperation
        case VIR_ERR_INVALID_ARG, VIR_ERR_XML_ERROR, VIR_ERR_XML_DETAIL:
            return .invalidArgument
        case VIR_ERR_NO_SUPPORT, VIR_ERR_ARGUMENT_UNSUPPORTED:
            return .unsupported
        case VIR_ERR_NO_CONNECT, VIR_ERR_AUTH_FAILED, VIR_ERR_INVALID_CONN:
            return .connectionFailed
        default:
            return .operationFailed
        }
    }

    private static func advice(for code: Code) -> String {
        switch code {
        case .connectionFailed:
            return "Check the URI and that the libvirt daemon is running and reachable."
        case .notFound:
            return "Check the name; the list functions show what exists on this connection."
        case .alreadyExists:
            return "Choose another name, or undefine the existing object first."
        case .invalidOperation:
            return "The object is not in a state that allows this; check its state first."
        case .invalidArgument:
            return "Correct the XML description or the argument named above."
        case .unsupported:
            return "This hypervisor driver does not support the operation."
        default:
            return "See the libvirt daemon's log for details."
        }
    }
}
