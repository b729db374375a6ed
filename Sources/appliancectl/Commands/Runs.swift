import ApplianceInventory
import ApplianceMigration
import ArgumentParser
import Foundation
import ProcedureEngine

/// `appliancectl runs`: the journal's runs and where each stands.
struct Runs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the runs in the journal and their state.")

    @Option(help: "Where the journal is kept (default: $APPLIANCECTL_HOME or ~/.appliancectl).")
    var stateDir: String?

    @Flag(help: "Print machine-readable JSON instead of text.")
    var json = false

    func run() async throws {
        let journal = try Journal(url: StateDirectory(stateDir).journal)
        let lines = try RunListing.lines(journal: journal, procedures: RunSession.procedures)
        if json {
            try printJSON(lines)
            return
        }
        if lines.isEmpty { print("No runs in \(journal.url.path).") }
        for line in lines {
            var text = "\(line.id)  \(line.kind)  \(line.old) → \(line.new)  \(line.state?.rawValue ?? "unreadable")"
            if let next = line.next { text += "  next: \(next)" }
            if let error = line.error { text += "  (\(error.prefix(120)))" }
            print(text)
        }
    }
}
