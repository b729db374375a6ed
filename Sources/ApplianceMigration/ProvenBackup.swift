import ApplianceAPI
import ApplianceClient
import BackupFormat
import Foundation
import ProcedureEngine

/// A backup downloaded into a run's directory (0600) and proven restorable before anything trusts it (X1): the
/// one way the migration and the upgrade take their backups.
enum ProvenBackup {
    /// The backup `file` holds, if it is there, whole, opens with `password` and is of `applianceId`. A complete
    /// download is renamed into place, so a file there is whole; it is still proven before it is trusted.
    static func existing(file: URL, password: String, applianceId: String) -> BackupVerification? {
        guard FileManager.default.fileExists(atPath: file.path),
            let proven = try? BackupVerifier.verify(file: file.path, password: password),
            proven.manifest.applianceId == applianceId
        else { return nil }
        return proven
    }

    /// Downloads a backup of `box` into `file` and proves it: every member readable with `request`'s password,
    /// checksums as its manifest says, of the appliance `applianceId`. A backup that is not is deleted.
    ///
    /// - Throws: `MigrationError(.backup)` saying the run stops, when the backup does not prove restorable.
    static func download(
        _ request: BackupRequest,
        from connection: ApplianceConnection,
        box: String,
        applianceId: String,
        to file: URL,
        environment: RunEnvironment
    ) async throws -> BackupVerification {
        try? FileManager.default.removeItem(at: file)
        let label = "backup \(box)"
        _ = try await connection.backup(
            request,
            to: file.path,
            progress: environment.progress(label, kind: "backup", total: nil)
        )
        environment.events(.transferFinished(label: label))
        let proven: BackupVerification
        do {
            proven = try BackupVerifier.verify(file: file.path, password: request.password)
        } catch {
            try? FileManager.default.removeItem(at: file)
            throw MigrationError(.backup, "the backup of \(box) is not restorable: \(error); the run stops here")
        }
        guard proven.manifest.applianceId == applianceId else {
            throw MigrationError(.backup, "the backup came from another appliance (\(proven.manifest.applianceId))")
        }
        return proven
    }

    /// What the journal keeps of a proven backup.
    static func facts(_ proven: BackupVerification, file: URL) -> [String: String] {
        [
            "backupFile": file.path,
            "backupBytes": "\(proven.fileBytes)",
            "backupSHA256": proven.fileSHA256,
            "backupMembers": "\(proven.memberCount)",
            "backupSiteVersion": proven.manifest.siteVersion,
            "backupCounts": proven.manifest.counts.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
                .joined(separator: ","),
            "oldApplianceId": proven.manifest.applianceId,
        ]
    }
}
