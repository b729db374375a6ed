import ApplianceClient
import ArgumentParser

/// `appliancectl pin ADDRESS [--reset]`: show the recorded pin, or forget it and record the current key.
struct Pin: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show or reset the recorded TLS key pin of an appliance.",
        discussion: "Reset only after a deliberate certificate change or factory reset of that appliance."
    )

    @OptionGroup var box: BoxOptions

    @Flag(help: "Forget the recorded pin and record the key the appliance presents now.")
    var reset = false

    func run() async throws {
        if reset {
            try box.pinStore.remove(box.address)
        }
        _ = try await box.connect()
        guard let pin = try box.pinStore.pin(for: box.address) else {
            throw CommandError("no pin recorded for \(box.address)")
        }
        print(pin.description)
    }
}
