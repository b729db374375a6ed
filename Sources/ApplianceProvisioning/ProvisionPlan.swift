/// The steps of provisioning one virtual appliance, as a value: which step comes next, what was created on the way,
/// and what a failure must remove (in reverse order). No I/O here; `Provisioner` carries the steps out.
public struct ProvisionPlan: Sendable, Equatable {
    public enum Step: String, Sendable, Equatable, CaseIterable {
        /// Connect to the hypervisor and make sure its pool is ready.
        case connect
        /// Look for a domain of that name: adopt it when it is ours, refuse when it is not.
        case inspect
        /// Put the image into the pool (kept: it is shared by every appliance).
        case image
        /// Create the appliance's disk as a copy-on-write overlay of the image.
        case createDisk
        /// Render the domain from the templates and define it.
        case defineDomain
        case start
        /// Wait until the TLS health probe answers with the expected appliance id.
        case waitReady
        /// Replace the factory password with the inventory's.
        case firstLogin
        case done
        case failed
    }

    /// Something the run created, which a failure removes.
    public enum Resource: Sendable, Equatable, CustomStringConvertible {
        case volume(String)
        case domain(String)
        case running(String)

        public var description: String {
            switch self {
            case .volume(let name): "volume \(name)"
            case .domain(let name): "domain \(name)"
            case .running(let name): "running domain \(name)"
            }
        }
    }

    public private(set) var step: Step = .connect
    /// Resources created by this run, oldest first.
    public private(set) var created: [Resource] = []
    /// Whether the run found an existing appliance and adopted it instead of creating one.
    public private(set) var adopted = false

    public init() {}

    /// The step succeeded; move on. `existing` (from `.inspect`) says a matching domain was found: adopting skips
    /// image, disk and definition, and starts the domain only when it is not running (`running`).
    public mutating func succeeded(existing: Bool = false, running: Bool = false) {
        switch step {
        case .connect: step = .inspect
        case .inspect:
            adopted = existing
            step = existing ? (running ? .waitReady : .start) : .image
        case .image: step = .createDisk
        case .createDisk: step = .defineDomain
        case .defineDomain: step = .start
        case .start: step = .waitReady
        case .waitReady: step = .firstLogin
        case .firstLogin: step = .done
        case .done, .failed: break
        }
    }

    /// Records what the current step created (before the step's next call can fail).
    public mutating func record(_ resource: Resource) {
        created.append(resource)
    }

    /// The step failed. Returns what to remove, newest first: everything this run created, unless `keepFailed`.
    /// An adopted appliance is never removed: this run did not create it.
    public mutating func failed(keepFailed: Bool) -> [Resource] {
        step = .failed
        return keepFailed ? [] : created.reversed()
    }
}
