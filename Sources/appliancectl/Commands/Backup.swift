import ApplianceAPI
import ApplianceClient
import ArgumentParser
import Foundation

/// `appliancectl backup ADDRESS --out FILE`: download a backup (A6) with a progress bar.
struct Backup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Download a backup of an appliance's site.",
        discussion: """
            The backup password is read from --backup-password-env (default BACKUP_PASSWORD) or \
            --backup-password-file; without one the backup is an unencrypted tar. A lost backup password cannot \
            be recovered. Encrypted backups are in the age format: `age -d FILE | tar -t` lists them.
            """
    )

    @OptionGroup var box: BoxOptions

    @Option(help: "File to write; it appears only when the download is complete.")
    var out: String

    @OptionGroup var backupPassword: BackupPasswordOptions

    @Flag(help: "Leave the logged session history out of the backup.")
    var noHistory = false

    @Flag(help: "Allow a backup without a password.")
    var unencrypted = false

    func run() async throws {
        let password = try backupPassword.password()
        if password == nil && !unencrypted {
            throw CommandError(
                "no backup password: set \(backupPassword.backupPasswordEnv) or give --backup-password-file (or --unencrypted)"
            )
        }
        let connection = try await box.session()
        let bar = ProgressBar(label: "backup", total: nil)
        _ = try await connection.backup(
            BackupRequest(password: password, includeHistory: !noHistory),
            to: out,
            progress: { bar.update($0) }
        )
        bar.finish()
        let size = fileSize(out)
        if box.json {
            try printJSON(["file": out, "bytes": "\(size)", "encrypted": "\(password != nil)"])
        } else {
            print("Backup of \(box.address) written to \(out) (\(Terminal.bytes(size)))")
        }
    }
}
