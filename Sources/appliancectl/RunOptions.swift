import ApplianceInventory
import ApplianceMigration
import ApplianceProvisioning
import ArgumentParser
import Foundation

/// Options of the commands that run, resume or abort playbooks.
struct RunOptions: ParsableArguments {
    @Flag(help: "Answer yes to the questions before destructive steps (cutover, decommission).")
    var yes = false

    @Flag(help: "Accept the EULA of the packages step 5 installs (they are printed either way).")
    var acceptEula = false

    @OptionGroup var image: ImageOptions

    @Option(help: "Seconds to wait for a new virtual appliance to answer.")
    var readyTimeout: Int = 300
}

extension InventoryOptions {
    /// The library's session for runs, with the terminal's questions and progress wired in.
    ///
    /// - Parameters:
    ///   - explicitInventory: only `--inventory` (a resumed run falls back to its own), not the default path.
    func runSession(_ run: RunOptions, console: RunConsole, explicitInventory: Bool = false) throws -> RunSession {
        let yes = run.yes
        let acceptEula = run.acceptEula
        return RunSession(
            state: stateDirectory,
            inventory: explicitInventory ? inventory.map { URL(fileURLWithPath: $0) } : inventoryFile,
            secrets: try secretSource(),
            confirm: { question in
                console.pause()
                return yes || (question.contains("EULA") && acceptEula) || Confirmation.ask(question)
            },
            events: { console.handle($0) },
            note: { Terminal.note($0) },
            provisioner: try provisioner(image: run.image, readyTimeout: run.readyTimeout, keepFailed: false)
        )
    }

    /// Provisioning from the inventory, the templates and the image these options name.
    func provisioner(image: ImageOptions, readyTimeout: Int, keepFailed: Bool) throws -> InventoryProvisioner {
        let state = stateDirectory
        let quiet = json
        let options = self
        return InventoryProvisioner(
            state: state,
            connect: connect,
            templates: { try options.loadTemplates() },
            image: { try image.build(stateDirectory: state, quiet: quiet).files },
            vendorKeys: try image.vendorKeyTokens(),
            readyTimeout: .seconds(readyTimeout),
            keepFailed: keepFailed,
            progress: { Terminal.note($0) }
        )
    }
}
