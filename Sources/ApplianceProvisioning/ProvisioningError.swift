/// Why provisioning, destroying or listing virtual appliances failed, with what to do about it.
public struct ProvisioningError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// The local libvirt session daemon could not be started or reached.
        case daemon
        /// The hypervisor, its storage pool or network is missing or refused a call.
        case hypervisor
        /// The image is missing or incomplete.
        case image
        /// A domain or volume of that name exists but was not made for this appliance.
        case conflict
        /// The appliance did not answer its health probe in time, or answered with another id.
        case notReady
        /// The appliance answered but refused the login.
        case login
        /// A value is out of range or malformed.
        case invalid
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
