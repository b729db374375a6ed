import ArgumentParser

/// The provisioner and migration tool.
@main
struct Appliancectl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "appliancectl",
        abstract: "Provision, back up, restore and migrate appliances.",
        discussion: """
            Appliances are addressed as HOST:PORT. Passwords come from environment variables (default \
            APPLIANCE_PASSWORD) or 0600 files, never from arguments. The first contact with an appliance records \
            the SHA-256 pin of its TLS key; later contacts refuse a different key.
            """,
        subcommands: [
            Status.self, Pin.self, FirstLogin.self, Login.self, Backup.self, Restore.self, Cert.self, Updates.self,
            Vendor.self, FactoryReset.self,
            Shutdown.self, Reboot.self, Maintenance.self, Populate.self, Summary.self, Image.self, Provision.self,
            Destroy.self, List.self,
            Session.self, Failover.self, RunPlaybook.self, Resume.self, Abort.self, Runs.self,
        ]
    )
}
