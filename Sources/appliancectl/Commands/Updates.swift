import ApplianceAPI
import ApplianceClient
import ApplianceCrypto
import ApplianceInventory
import ArgumentParser
import Foundation
import SoftwarePackages

/// `appliancectl updates source|check|install|upload|download-key|fetch|slots|rollback` (A5, X4).
struct Updates: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check for and install signed software packages.",
        subcommands: [
            Source.self, Check.self, Install.self, Upload.self, DownloadKeyCommand.self, Fetch.self, Slots.self,
            Rollback.self,
        ]
    )

    struct Source: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set where the appliance looks for updates.")

        @OptionGroup var box: BoxOptions

        @Option(help: "Repository: an http(s) URL or an absolute directory path on the appliance.")
        var repo: String

        func run() async throws {
            try await box.session().perform(.setUpdateSource, body: UpdateSourceRequest(repository: repo))
            print("\(box.address) checks \(repo) for updates.")
        }
    }

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the updates that apply, dependencies first; blocked ones say what they wait for."
        )

        @OptionGroup var box: BoxOptions

        func run() async throws {
            let answer: UpdatesResponse = try await box.session().call(.updates)
            if box.json { return try printJSON(answer) }
            print(
                "Installed: "
                    + answer.installed.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }
                    .joined(separator: ", ")
            )
            if answer.updates.isEmpty { print("No updates apply.") }
            for update in answer.updates {
                let state = update.waitingFor.map { "blocked: waits for \($0)" } ?? "applicable"
                print("  \(update.name) \(update.version) (\(update.kind)) — \(state)")
            }
        }
    }

    struct Install: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Install a package from the appliance's update source.",
            discussion: "Without --accept-eula the EULA is shown and nothing is installed."
        )

        @OptionGroup var box: BoxOptions

        @Argument(help: "Package name (base, site or an add-on).")
        var name: String

        @Option(help: "Version (default: the newest applicable).")
        var version: String?

        @Flag(help: "Accept the package's EULA.")
        var acceptEula = false

        func run() async throws {
            let result: InstallResponse = try await box.session().call(
                .installUpdate,
                body: InstallRequest(name: name, version: version, acceptEula: acceptEula)
            )
            if box.json { return try printJSON(result) }
            print("Installed \(result.name) \(result.version) on \(box.address). \(result.message)")
            if result.selfTest?.passed == false { throw ExitCode.failure }
        }
    }

    struct Upload: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Install a package file (manual install).")

        @OptionGroup var box: BoxOptions

        @Argument(help: "The package file.")
        var file: String

        @Flag(help: "Accept the package's EULA.")
        var acceptEula = false

        func run() async throws {
            let installed = try await box.session().installPackage(fromFile: file, acceptEula: acceptEula)
            print("Installed \(installed.name) \(installed.version) on \(box.address). \(installed.message)")
            if installed.selfTest?.passed == false { throw ExitCode.failure }
        }
    }

    struct DownloadKeyCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "download-key",
            abstract: "Issue the appliance's download key (for fetching updates on another machine)."
        )

        @OptionGroup var box: BoxOptions

        @Option(help: "File to write the key to.")
        var out: String

        func run() async throws {
            let answer: DownloadKeyResponse = try await box.session().call(.downloadKey)
            try Data((answer.key + "\n").utf8).write(to: URL(fileURLWithPath: out), options: .atomic)
            print("Download key of \(box.address) written to \(out)")
        }
    }

    struct Fetch: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "On an unrestricted machine: turn a download key into the package files that apply.",
            discussion: "Packages fetched with a key are recorded and not offered again for that key."
        )

        @Option(help: "The download key file.")
        var downloadKey: String

        @Option(help: "Repository: a directory on this machine or an http(s) URL (index.json and package files).")
        var repo: String

        @Option(help: "Directory to put the package files in.")
        var out: String

        @Option(help: "Vendor public key (PEM) to verify the packages with before handing them out.")
        var vendorKey: String?

        @Option(help: "Where the fetch ledger is kept (default: $APPLIANCECTL_HOME or ~/.appliancectl).")
        var stateDir: String?

        func run() async throws {
            let key = try DownloadKey.parse(try String(contentsOfFile: downloadKey, encoding: .utf8))
            let trusted = try vendorKey.map {
                [try Ed25519PublicKey(pem: try String(contentsOfFile: $0, encoding: .utf8))]
            }
            let outcome = try await PackageFetcher.fetch(
                for: key,
                from: try PackageSource(repo),
                into: URL(fileURLWithPath: out),
                trustedKeys: trusted,
                ledger: FetchLedger(file: StateDirectory(stateDir).fetchLedger)
            )
            for update in outcome.blocked {
                print("  \(update.manifest.name) \(update.manifest.version): \(update.message ?? "blocked")")
            }
            outcome.fetched.forEach { print("  \($0.file)") }
            print("\(outcome.fetched.count) package file(s) for \(key.hostname) (\(key.applianceId)) in \(out)")
        }
    }
}
