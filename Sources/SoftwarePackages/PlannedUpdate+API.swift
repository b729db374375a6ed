public import ApplianceAPI

extension UpdateEntry {
    /// A planned update as the API lists it (`GET /updates`): the box's own plan, and the plan an offline upgrade
    /// makes on the operator's machine from the box's download key.
    public init(_ planned: PlannedUpdate) {
        var waitingFor: String?
        if case .blocked(let what) = planned.status { waitingFor = what }
        self.init(
            name: planned.manifest.name,
            kind: planned.manifest.kind.rawValue,
            version: planned.manifest.version,
            description: planned.manifest.description,
            eula: planned.manifest.eula,
            status: waitingFor == nil ? "applicable" : "blocked",
            waitingFor: waitingFor,
            message: planned.message
        )
    }
}
