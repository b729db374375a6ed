public import ApplianceAPI

/// Software slots and rollback (X4).
extension ApplianceConnection {
    /// The software installed now and the previous slot a rollback would return to.
    public func softwareSlots() async throws -> SoftwareSlotsResponse {
        try await call(.updateSlots)
    }

    /// Returns base, site and add-on versions to the previous slot; the appliance answers 409 `no_previous_slot`
    /// when there is none (before the first install, or after a rollback).
    public func rollback() async throws -> RollbackResponse {
        try await call(.rollbackUpdate)
    }
}
