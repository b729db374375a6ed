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
        let console = RunConsole(quiet: options.json)
        let session = try options.runSession(run, console: console, explicitInventory: true)
        let (done, outcome) = try await session.abort(id)
        for line in done { Terminal.note(line) }
        try console.finish(outcome, json: options.json)
    }
}
