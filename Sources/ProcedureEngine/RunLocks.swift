public import ApplianceInventory
public import Foundation

/// The locks of a run: one per appliance it touches, so no other run, provision or destroy touches them
/// meanwhile.
public struct RunLocks: Sendable {
    public let held: [NameLock]

    /// Takes every lock, in name order (so two runs never wait on each other crosswise), or none.
    public init(_ names: [String], directory: URL, command: String) throws {
        var held: [NameLock] = []
        do {
            for name in Set(names).sorted() {
                held.append(try NameLock.acquire(name: name, directory: directory, command: command))
            }
        } catch {
            held.forEach { $0.release() }
            throw error
        }
        self.held = held
    }

    /// The locks of a run of procedure `P` with these settings.
    public init<P: ProcedureRules>(_ type: P.Type, settings: P.Settings, directory: URL) throws {
        try self.init(P.appliances(settings), directory: directory, command: "appliancectl run/resume")
    }

    public func release() { held.forEach { $0.release() } }
}
