import ApplianceAPI
import ApplianceClient
import ApplianceCrypto
import Foundation
import Testing

/// `appliancectl` as an operator runs it: secrets from the environment, pins recorded and enforced, backups that
/// the standard `age` tool opens.
@Suite struct CommandLineTests {
    struct CLI {
        let home: URL
        var environment: [String: String]

        init() {
            home = TestSupport.temporaryDirectory("ctl")
            environment = [
                "APPLIANCECTL_HOME": home.path,
                "APPLIANCE_PASSWORD": TestBox.adminPassword,
                "BACKUP_PASSWORD": "cli-Backup-Pass-9",
            ]
        }

        func run(_ arguments: [String], environment extra: [String: String] = [:]) async throws -> (
            status: Int32, stdout: String, stderr: String
        ) {
            try await TestSupport.run(
                TestSupport.binary("appliancectl").path,
                arguments,
                environment: environment.merging(extra) { $1 }
            )
        }
    }

    @Test func backupWrittenByAppliancectlOpensWithAge() async throws {
        let box = try await TestBox()
        defer { box.terminate() }
        let cli = CLI()
        let first = try await cli.run(["first-login", box.endpoint])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stderr.contains("recorded its key pin \(box.pin?.description ?? "?")"))
        let populate = try await cli.run(["populate", box.endpoint, "--size", "3MiB"])
        #expect(populate.status == 0, "\(populate.stderr)")

        let out = TestSupport.temporaryDirectory("cli").appendingPathComponent("site.backup")
        let backup = try await cli.run(["backup", box.endpoint, "--out", out.path])
        #expect(backup.status == 0, "\(backup.stderr)")
        #expect(backup.stderr.contains("backup"), "progress line with bytes and rate")
        #expect(backup.stderr.contains("/s"))

        // age reads the passphrase from a terminal: `script` gives it one, fed from a file.
        let dir = out.deletingLastPathComponent()
        let passwordFile = dir.appendingPathComponent("typed")
        try Data("cli-Backup-Pass-9\n".utf8).write(to: passwordFile)
        let tarFile = dir.appendingPathComponent("site.tar")
        let decrypt = try await TestSupport.run(
            "sh",
            [
                "-c",
                "script -q -e -c 'age -d -o \(tarFile.path) \(out.path)' /dev/null < \(passwordFile.path) > /dev/null",
            ]
        )
        #expect(decrypt.status == 0, "age -d failed: \(decrypt.stderr); is age installed (apt-get install age)?")
        let listing = try await TestSupport.run("tar", ["-tf", tarFile.path])
        #expect(listing.status == 0)
        let names = listing.stdout.split(separator: "\n").map(String.init)
        #expect(names.first == "backup.json")
        #expect(names.last == "manifest.json")
        #expect(names.contains("site.sqlite"))

        // And it restores through the CLI into a second box.
        let second = try await TestBox()
        defer { second.terminate() }
        #expect(try await cli.run(["first-login", second.endpoint]).status == 0)
        let restore = try await cli.run(["restore", second.endpoint, "--file", out.path])
        #expect(restore.status == 0, "\(restore.stderr)")
        #expect(restore.stdout.contains("Restored"))
        let a = try await cli.run(["summary", box.endpoint])
        let b = try await cli.run(["summary", second.endpoint])
        let decoder = APICoding.decoder()
        let sa = try decoder.decode(SiteSummary.self, from: Data(a.stdout.utf8))
        let sb = try decoder.decode(SiteSummary.self, from: Data(b.stdout.utf8))
        #expect(sa.historyDigest == sb.historyDigest)
        #expect(sa.usersDigest == sb.usersDigest)
        #expect(sa.settingsDigest == sb.settingsDigest)
    }

    @Test func changedKeyIsRefusedUntilThePinIsReset() async throws {
        let box = try await TestBox()
        defer { box.terminate() }
        let cli = CLI()
        #expect(try await cli.run(["first-login", box.endpoint]).status == 0)
        box.factoryFresh = false
        let status = try await cli.run(["status", box.endpoint])
        #expect(status.status == 0)
        #expect(status.stdout.contains("site 24.1.0"))

        // The box is reset behind the CLI's back: it now presents a new key.
        let admin = try await box.admin()
        let hostname = try await (admin.call(.status) as StatusResponse).hostname
        let oldPin = box.pin
        try await admin.perform(.factoryReset, body: FactoryResetRequest(confirmHostname: hostname))
        try await box.waitUntilKeyChanges(from: oldPin)

        let refused = try await cli.run(["status", box.endpoint], environment: ["APPLIANCE_PASSWORD": ""])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("presented a different key"))
        #expect(refused.stderr.contains("pin --reset"))

        let reset = try await cli.run(["pin", box.endpoint, "--reset"])
        #expect(reset.status == 0)
        #expect(reset.stdout.contains(box.pin?.description ?? "?"))
        #expect(try await cli.run(["first-login", box.endpoint]).status == 0)
    }

    @Test func badInputIsRefusedWithWhatToDo() async throws {
        let cli = CLI()
        let badAddress = try await cli.run(["status", "no-port-here"])
        #expect(badAddress.status == 64)
        #expect(badAddress.stderr.contains("HOST:PORT"))
        #expect(badAddress.stderr.contains("Usage: appliancectl status"), "a flag problem shows the usage")
        let badSize = try await cli.run(["populate", "127.0.0.1:1", "--size", "lots"])
        #expect(badSize.status == 64)
        #expect(badSize.stderr.contains("--size must be a number"), "\(badSize.stderr)")
        #expect(badSize.stderr.contains("Usage:"))
        let noPassword = try await cli.run(
            ["backup", "127.0.0.1:1", "--out", "/tmp/x"],
            environment: ["BACKUP_PASSWORD": ""]
        )
        #expect(noPassword.status == 1, "a missing secret is a failed run, not a usage error")
        #expect(noPassword.stderr.contains("Error: no backup password: set BACKUP_PASSWORD"), "\(noPassword.stderr)")
        #expect(!noPassword.stderr.contains("Usage:"))
        let unreachable = try await cli.run(["status", "127.0.0.1:1"])
        #expect(unreachable.status == 1)
        #expect(unreachable.stderr.contains("could not reach"))
        #expect(!unreachable.stderr.contains("Usage:"))

        // A password file readable by others is refused.
        let file = TestSupport.temporaryDirectory("secret").appendingPathComponent("pw")
        try Data("x".utf8).write(to: file)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: file.path)
        let loose = try await cli.run(["login", "127.0.0.1:1", "--password-file", file.path])
        #expect(loose.status == 1, "\(loose.stderr)")
        #expect(loose.stderr.contains("chmod 600"), "says what to do: \(loose.stderr)")
    }

    @Test func certificatesThroughTheCommandLine() async throws {
        let box = try await TestBox(arguments: ["--hostname", CertificateTests.hostname])
        defer { box.terminate() }
        var cli = CLI()
        cli.environment["CERT_PASSPHRASE"] = "cli-cert-pass"
        #expect(try await cli.run(["first-login", box.endpoint]).status == 0)
        let pki = try TestPKI()
        let second = TestSupport.nextAddress()
        let leaf = try pki.leaf(CertificateTests.hostname, ips: [second])
        let dir = TestSupport.temporaryDirectory("cli-cert")
        let bundle = dir.appendingPathComponent("bundle.pem")
        try Data((leaf.certificate + pki.intermediate + pki.root + leaf.key).utf8).write(to: bundle)

        let imported = try await cli.run(["cert", "import", box.endpoint, "--name", "site", "--pem", bundle.path])
        #expect(imported.status == 0, "\(imported.stderr)")
        #expect(imported.stdout.contains("Imported certificate #2"))
        let list = try await cli.run(["cert", "list", box.endpoint])
        #expect(list.stdout.contains("#1 factory (factory)"))
        #expect(list.stdout.contains("warning selfSigned"))
        #expect(list.stdout.contains("#2 site"))

        box.factoryFresh = false
        let _: AddressChangeResponse = try await box.admin().call(
            .addAddress,
            body: AddressInput(enabled: true, port: "eth1", address: second, subnetMask: "255.0.0.0", access: .both)
        )
        let assign = try await cli.run(["cert", "assign", box.endpoint, "2", "--on", second])
        #expect(assign.status == 0, "\(assign.stderr)")
        let served = try await PinnedHTTPClient.fetchPeerCertificate(host: second, port: TestBox.port)
        #expect(served.pin.description == (try PublicKeyPin.sha256(certificatePEM: leaf.certificate)))

        let p12 = dir.appendingPathComponent("site.p12")
        let export = try await cli.run(
            ["cert", "export", box.endpoint, "2", "--out", p12.path, "--format", "pkcs12", "--chain", "--key"]
        )
        #expect(export.status == 0, "\(export.stderr)")
        let opened = try await TestSupport.run(
            "openssl",
            ["pkcs12", "-in", p12.path, "-passin", "pass:cli-cert-pass", "-nodes"]
        )
        #expect(opened.status == 0)
        #expect(opened.stdout.contains("PRIVATE KEY"))
        let delete = try await cli.run(["cert", "delete", box.endpoint, "2"])
        #expect(delete.status == 1)
        #expect(delete.stderr.contains("assigned"))
    }

    /// A box in an inventory, for playbook runs against it.
    func inventory(for box: TestBox, in cli: CLI, new: TestBox? = nil) throws -> URL {
        let file = cli.home.appendingPathComponent("inventory.yml")
        var text = """
            appliances:
              the-box:
                physical:
                  address: \(box.endpoint)
                password: BOX_PW

            """
        if let new { text += "  new-box:\n    physical:\n      address: \(new.endpoint)\n    password: NEW_PW\n" }
        try text.write(to: file, atomically: true, encoding: .utf8)
        return file
    }

    /// A migration that fails at run time says why and exits 1, without the usage text a flag problem gets.
    /// `--help` and `help` print the help and exit 0, for the tool and for a subcommand (they once printed
    /// `Error: CommandError(… helpRequested …)` and exited 1).
    @Test(arguments: [["--help"], ["status", "--help"], ["help", "run"], ["updates", "fetch", "--help"]])
    func helpIsPrintedAndExitsZero(arguments: [String]) async throws {
        let result = try await CLI().run(arguments)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("USAGE:"), "\(result.stdout)")
        #expect(!result.stderr.contains("Error"), "\(result.stderr)")
    }

    @Test func aFailedMigrationExitsOneWithoutUsage() async throws {
        let old = try await TestBox()
        defer { old.terminate() }
        let new = try await TestBox()
        defer { new.terminate() }
        var cli = CLI()
        cli.environment["BOX_PW"] = "Not-The-Password-1"
        cli.environment["NEW_PW"] = "New-Box-Password-7"
        #expect(try await cli.run(["first-login", old.endpoint]).status == 0)
        let inventory = try inventory(for: old, in: cli, new: new)
        let book = cli.home.appendingPathComponent("migrate.yml")
        try "playbook: migrate\nold: the-box\nnew: new-box\nbackup:\n  password: BACKUP_PASSWORD\n".write(
            to: book,
            atomically: true,
            encoding: .utf8
        )
        let failed = try await cli.run(["run", book.path, "--inventory", inventory.path, "--yes"])
        #expect(failed.status == 1, "\(failed.stderr)")
        #expect(failed.stderr.contains("Error: cannot log in to the-box"), "\(failed.stderr)")
        #expect(failed.stderr.contains("check its password secret"))
        #expect(failed.stderr.contains("continue with `appliancectl resume"), "\(failed.stderr)")
        #expect(!failed.stderr.contains("Usage:"), "\(failed.stderr)")
    }

    /// A run a safety rule refuses (decommission with no verified migration or backup) exits 3, changing nothing.
    @Test func aSafetyRefusalExitsThree() async throws {
        let box = try await TestBox()
        defer { box.terminate() }
        var cli = CLI()
        cli.environment["BOX_PW"] = TestBox.adminPassword
        #expect(try await cli.run(["first-login", box.endpoint]).status == 0)
        box.factoryFresh = false
        let before: StatusResponse = try await box.admin().call(.status)
        let inventory = try inventory(for: box, in: cli)
        let book = cli.home.appendingPathComponent("decommission.yml")
        try "playbook: decommission\nappliance: the-box\n".write(to: book, atomically: true, encoding: .utf8)
        let refused = try await cli.run(["run", book.path, "--inventory", inventory.path, "--yes"])
        #expect(refused.status == 3, "\(refused.stderr)")
        #expect(refused.stderr.contains("Error: the-box has no verified migration or verified backup"))
        #expect(!refused.stderr.contains("Usage:"), "\(refused.stderr)")
        // Nothing was changed: the box still runs, with its password and its certificate (a reset would change both).
        let after: StatusResponse = try await box.admin().call(.status)
        #expect(after.hostname == before.hostname)
        let (pin, _) = try await PinnedHTTPClient.fetchPeerCertificate(host: box.address, port: TestBox.port)
        #expect(pin == box.pin)
    }

    /// A deliberate wrong login puts admin in the login backoff; the next command with the right password waits
    /// out the 429 (Retry-After) and succeeds instead of failing.
    @Test func aCommandInTheLoginBackoffWaitsItOut() async throws {
        let box = try await TestBox()
        defer { box.terminate() }
        let cli = CLI()
        #expect(try await cli.run(["first-login", box.endpoint]).status == 0)
        box.factoryFresh = false
        try await AuthenticationTests.setPolicy(box) { $0.backoffBaseSeconds = 4 }
        let wrong = try await cli.run(["login", box.endpoint], environment: ["APPLIANCE_PASSWORD": "Wrong-Password-1"])
        #expect(wrong.status == 1)
        #expect(wrong.stderr.contains("Error: wrong username or password"), "\(wrong.stderr)")
        let started = ContinuousClock.now
        let populate = try await cli.run(["populate", box.endpoint, "--size", "64KiB"])
        let elapsed = ContinuousClock.now - started
        #expect(populate.status == 0, "\(populate.stderr)")
        #expect(elapsed >= .seconds(1), "the login backoff was waited out, not skipped: \(elapsed)")
        let summary: SiteSummary = try await box.admin().call(.siteSummary)
        #expect(summary.historyRows + summary.fileCount + summary.recordingCount > 0)
    }
}
