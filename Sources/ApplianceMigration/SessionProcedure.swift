import ApplianceInventory
import Foundation
import ProcedureEngine

/// A procedure a `RunSession` can open from the journal: how its runner is built with the session's secrets,
/// inventory and hypervisor. Resume and abort are the same for every one of them.
protocol SessionProcedure: Procedure {
    /// The runner of a journaled run, its procedure built from the journal's facts and the secrets read again.
    static func runner(
        _ record: RunRecord<Self>,
        journal: Journal,
        session: RunSession
    ) throws -> ProcedureRunner<Self>

    /// The run's failure as the operator is told it (default: as it is); e.g. an upgrade that was rolled back.
    func explain(_ failure: any Error, runId: String) async -> any Error
}

extension SessionProcedure {
    func explain(_ failure: any Error, runId: String) async -> any Error { failure }

    /// The one way `resume` and `abort` open a run: typed by its kind, every appliance it touches locked (the
    /// locks are released after `body`), its runner built.
    static func open<T>(
        _ stored: StoredRun,
        journal: Journal,
        session: RunSession,
        _ body: (ProcedureRunner<Self>) async throws -> T
    ) async throws -> T {
        let record = try stored.typed(as: Self.self)
        let locks = try RunLocks(Self.self, settings: record.settings, directory: session.state.locks)
        defer { locks.release() }
        return try await body(try runner(record, journal: journal, session: session))
    }

    static func resume(_ stored: StoredRun, journal: Journal, session: RunSession) async throws -> RunOutcome {
        try await open(stored, journal: journal, session: session) { try await session.execute($0) }
    }

    static func abort(
        _ stored: StoredRun,
        journal: Journal,
        session: RunSession
    ) async throws -> (done: [String], outcome: RunOutcome) {
        try await open(stored, journal: journal, session: session) { try await session.abort($0) }
    }
}

extension MigrationProcedure: SessionProcedure {
    static func runner(
        _ record: RunRecord<MigrationProcedure>,
        journal: Journal,
        session: RunSession
    ) throws -> ProcedureRunner<MigrationProcedure> {
        try session.migrationRunner(record, journal: journal)
    }
}

extension DecommissionProcedure: SessionProcedure {
    static func runner(
        _ record: RunRecord<DecommissionProcedure>,
        journal: Journal,
        session: RunSession
    ) throws -> ProcedureRunner<DecommissionProcedure> {
        let password = try session.secrets.resolve(record.settings.passwordSecret).reveal()
        return try session.decommissionRunner(record, journal: journal, password: password)
    }
}
