import ApplianceMigration
import ArgumentParser
import Foundation

/// `appliancectl resume RUN`: continue an interrupted or failed run from the journal.
struct Resume: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Continue a run after an interruption or a fixed failure.",
        discussion: """
            The journal says which step was under way; that step first checks the real state of the appliances \
            (what exists, what matches) and does only what is missing. Secrets are read again by their names.
            """
    )

    @Argument(help: "The run id (see `appliancectl runs`).")
    var id: String

    @OptionGroup var options: InventoryOptions
    @OptionGroup var run: RunOptions

    func run() async throws {
        let console = RunConsole(quiet: options.json)
        let session = try options.runSession(run, console: console, explicitInventory: true)
        try console.finish(try await session.resume(id), json: options.json)
    }
}
