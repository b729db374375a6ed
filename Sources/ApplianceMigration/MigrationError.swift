/// Why a migration, cutover, decommission or upgrade stopped, with what to do about it.
public struct MigrationError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// The journal could not be read or written.
        case journal
        /// No run of that id.
        case unknownRun
        /// A pre-flight check failed; nothing was changed.
        case preflight
        /// An appliance is unreachable, refused a call, or is not in the state the step needs.
        case appliance
        /// The backup is missing, damaged or not restorable.
        case backup
        /// The certificate could not be moved or is served with warnings.
        case certificate
        /// No package brings the new appliance to the old one's site version.
        case package
        /// A file or recording did not arrive intact.
        case transfer
        /// The new appliance does not hold what the old one held.
        case verification
        /// The temporary failover relationship of a live migration could not be set up, sync or end.
        case failover
        /// The site address does not answer from the new appliance.
        case cutover
        /// A safety rule refuses the step (e.g. decommission before verification).
        case refused
        /// The operator declined a destructive step.
        case declined
        /// An upgrade's install or the verification after it failed (the message says where the box stands).
        case upgrade
        /// An upgrade failed and the appliance was rolled back to its software and data before the run, proven.
        case rolledBack
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
