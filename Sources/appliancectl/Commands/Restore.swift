import ApplianceAPI
import ApplianceClient
import ArgumentParser
import Foundation

/// `appliancectl restore ADDRESS --file FILE`: upload and restore a backup (A6).
struct Restore: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Restore a backup into an appliance (replaces its site; recordings stay).",
        discussion: "The appliance refuses a wrong password, a damaged or truncated file and a newer backup."
    )

    @OptionGroup var box: BoxOptions

    @Option(help: "The backup file.")
    var file: String

    @OptionGroup var backupPassword: BackupPasswordOptions

    func validate() throws {
        guard FileManager.default.isReadableFile(atPath: file) else {
            throw ValidationError("cannot read \(file); give the path of a backup file")
        }
    }

    func run() async throws {
        let password = try backupPassword.password()
        let connection = try await box.session()
        let size = fileSize(file)
        let bar = ProgressBar(label: "restore", total: size)
        let result = try await connection.restore(file: file, password: password, progress: { bar.update($0) })
        bar.finish()
        if box.json {
            try printJSON(result)
        } else {
            print(
                "Restored \(box.address) from a backup of \(result.sourceApplianceId) (site \(result.siteVersion)): "
                    + result.counts.sorted(by: { $0.key < $1.key }).map { "\($0.key) \($0.value)" }
                    .joined(separator: ", ")
            )
            print("Every user was logged out; log in again with the restored site's credentials.")
        }
    }
}
