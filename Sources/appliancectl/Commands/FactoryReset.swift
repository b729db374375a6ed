import ApplianceAPI
import ApplianceClient
import ArgumentParser

/// `appliancectl factory-reset ADDRESS --confirm HOSTNAME` (A8).
struct FactoryReset: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "factory-reset",
        abstract: "Return an appliance to factory state: all data gone, admin/password back, new certificate."
    )

    @OptionGroup var box: BoxOptions

    @Option(help: "The appliance's hostname, typed back to confirm.")
    var confirm: String

    @Flag(help: "Power the appliance off once it is reset (how a box is returned).")
    var powerOff = false

    func run() async throws {
        let connection = try await box.session()
        try await connection.perform(
            .factoryReset,
            body: FactoryResetRequest(confirmHostname: confirm, powerOff: powerOff)
        )
        // The box now presents a new factory certificate: forget the old pin; the next contact records the new one.
        try box.pinStore.remove(box.address)
        if powerOff {
            print("\(box.address) was reset to factory state and is powering off.")
        } else {
            print("\(box.address) was reset to factory state; it has a new certificate and admin/password again.")
        }
    }
}

/// `appliancectl shutdown ADDRESS` (A8).
struct Shutdown: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Shut an appliance down.")

    @OptionGroup var box: BoxOptions

    func run() async throws {
        try await box.session().perform(.shutdown, body: Empty?.none)
        print("\(box.address) is shutting down.")
    }
}
