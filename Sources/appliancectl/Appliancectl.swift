import ApplianceCrypto
import ArgumentParser

#if canImport(Glibc)
    import Glibc
#endif

/// The provisioner and migration tool.
@main
struct Appliancectl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "appliancectl",
        abstract: "Provision, back up, restore and migrate appliances.",
        discussion: """
            Appliances are addressed as HOST:PORT. Passwords come from environment variables (default \
            APPLIANCE_PASSWORD) or 0600 files, never from arguments. The first contact with an appliance records \
            the SHA-256 pin of its TLS key; later contacts refuse a different key. Exit codes: 0 done, 1 failed, \
            2 unhealthy (status), 3 refused by a safety rule (nothing was changed), 64 usage.
            """,
        subcommands: [
            Status.self, Pin.self, FirstLogin.self, Login.self, Backup.self, Restore.self, Cert.self, Updates.self,
            Vendor.self, FactoryReset.self,
            Shutdown.self, Reboot.self, Maintenance.self, Populate.self, Summary.self, Image.self, Provision.self,
            Destroy.self, List.self,
            Session.self, Failover.self, RunPlaybook.self, Resume.self, Abort.self, Runs.self,
        ]
    )

    /// Parses (usage errors exit 64 with the usage text), then runs with the exit codes of `ExitStatus`.
    static func main() async {
        OpenSSLProcess.keepStateUntilExit()
        // Pins, journals, reports, backups and exported keys are the operator's alone (files 0600).
        umask(0o077)
        let command: any ParsableCommand
        do {
            command = try parseAsRoot()
        } catch {
            exit(withError: error)
        }
        await ExitStatus.run(command)
    }
}
