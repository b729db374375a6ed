import ApplianceInventory
import ApplianceMigration
import ArgumentParser
import Foundation

/// `appliancectl abort RUN`: abandon a run; the old appliance serves exactly as before.
struct Abort: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Abandon a run: the old appliance leaves maintenance and serves as before.",
        discussion: """
            Refused once the site answers from the new appliance (the old one must not take writes again then): \
            finish such a run with resume. The new appliance is left as the report says.
            """
    )

    @Argument(help: "The run id (see `appliancectl runs`).")
    var id: String

    @OptionGroup var options: InventoryOptions
    @OptionGroup var run: RunOptions

    func run() async throws {
        let journal = try Journal(url: options.stateDirectory.appendingPathComponent("journal.sqlite"))
        let record = try journal.run(id)
        var options = options
        if options.inventory == nil { options.inventory = record.inventory }
        let locks = try MigrationSession.lock(record.settings, options: options)
        defer { locks.forEach { $0.release() } }
        let secrets = try MigrationSession.secrets(for: record, options: options)
        try await MigrationSession(options: options, run: run).abort(record, journal: journal, secrets: secrets)
    }
}
