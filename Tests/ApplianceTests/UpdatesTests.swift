import ApplianceAPI
import ApplianceClient
import ApplianceCrypto
import Foundation
import SoftwarePackages
import Testing

/// A vendor made at test time: a signing key, a repository of signed packages.
struct TestVendor {
    let key = Ed25519PrivateKey()
    let directory = TestSupport.temporaryDirectory("vendor")
    var keyFile: URL { directory.appendingPathComponent("vendor.pub") }
    var repository: URL { directory.appendingPathComponent("repo") }

    init() throws {
        try Data(key.publicKey.pem.utf8).write(to: keyFile)
    }

    /// Builds a signed package (not added to the repository).
    func package(
        _ name: String,
        _ kind: PackageKind,
        _ version: String,
        requires: [PackageManifest.Requirement] = [],
        selfTest: PackageManifest.SelfTest? = nil,
        signedBy signer: Ed25519PrivateKey? = nil
    ) throws -> URL {
        let file = directory.appendingPathComponent("\(name)-\(version)-\(UUID().uuidString.prefix(4)).pkg")
        _ = try PackageBuilder.build(
            name: name,
            kind: kind,
            version: version,
            requires: requires,
            eula: "EULA of \(name) \(version): use it well.",
            description: "\(name) \(version)",
            selfTest: selfTest,
            payload: SecureRandom.bytes(64 * 1024),
            signingKey: signer ?? key,
            to: file
        )
        return file
    }

    func publish(_ file: URL) throws {
        try RepositoryBuilder.add(package: file, to: repository)
    }
}

/// A5 through the real API and CLI: check, install with EULA, every refusal, and the offline download-key path.
@Suite struct UpdatesTests {
    @Test func checkAndInstallFromTheRepository() async throws {
        let vendor = try TestVendor()
        try vendor.publish(
            try vendor.package("site", .site, "24.2.0", requires: [.init(name: "base", minimumVersion: "7.2.0")])
        )
        try vendor.publish(
            try vendor.package("base", .base, "7.3.0", requires: [.init(name: "site", minimumVersion: "24.2.0")])
        )
        try vendor.publish(
            try vendor.package("site", .site, "24.3.0", requires: [.init(name: "base", minimumVersion: "8.0.0")])
        )
        let box = try await TestBox(arguments: ["--vendor-key", vendor.keyFile.path])
        defer { box.terminate() }
        let admin = try await box.admin()
        try await admin.perform(.setUpdateSource, body: UpdateSourceRequest(repository: vendor.repository.path))

        let check: UpdatesResponse = try await admin.call(.updates)
        #expect(check.installed["site"] == "24.1.0")
        let offered = check.updates.map { "\($0.name) \($0.version) \($0.status)" }
        // The newest site version waits for a base that does not exist; meanwhile nothing older is offered over it.
        let site = try #require(check.updates.first { $0.name == "site" })
        #expect(site.version == "24.3.0", "\(offered)")
        #expect(site.status == "blocked")
        #expect(site.waitingFor?.contains("base") == true)

        // Installing needs the EULA accepted; without it nothing changes.
        do {
            let _: InstallResponse = try await admin.call(
                .installUpdate,
                body: InstallRequest(name: "site", version: "24.2.0", acceptEula: false)
            )
            Issue.record("installed without EULA acceptance")
        } catch let error as ApplianceClientError {
            #expect(error.apiCode == "eula_required")
            #expect(error.message.contains("EULA of site 24.2.0"))
        }
        let before: StatusResponse = try await admin.call(.status)
        #expect(before.software.siteVersion == "24.1.0")

        let installed: InstallResponse = try await admin.call(
            .installUpdate,
            body: InstallRequest(name: "site", version: "24.2.0", acceptEula: true)
        )
        #expect(installed.software.siteVersion == "24.2.0")
        #expect(installed.installersGeneration == 2, "earlier client installers are invalid")
        #expect(installed.siteHash?.count == 32)
        // Every user was logged out.
        #expect(await refusal { let _: StatusResponse = try await admin.call(.status) } == "unauthorized")
        let again = try await box.admin()
        let status: StatusResponse = try await again.call(.status)
        #expect(status.software.siteVersion == "24.2.0")
        // The same version again is refused.
        #expect(
            await refusal {
                let _: InstallResponse = try await again.call(
                    .installUpdate,
                    body: InstallRequest(name: "site", version: "24.2.0", acceptEula: true)
                )
            } == "package_downgrade"
        )
        // Now base 7.3.0 applies (it needed site 24.2.0).
        let next: UpdatesResponse = try await again.call(.updates)
        #expect(next.updates.contains { $0.name == "base" && $0.version == "7.3.0" && $0.status == "applicable" })

        // A factory reset returns the factory software: the installed package and its payload are gone.
        let payloads = box.dataDir.appendingPathComponent("packages")
        #expect(try FileManager.default.contentsOfDirectory(atPath: payloads.path).count == 1)
        #expect(FileManager.default.fileExists(atPath: box.dataDir.appendingPathComponent("software/slots.json").path))
        let pinBeforeReset = box.pin
        try await again.perform(.factoryReset, body: FactoryResetRequest(confirmHostname: status.hostname))
        try await box.waitUntilKeyChanges(from: pinBeforeReset)
        box.factoryFresh = true
        let reset: StatusResponse = try await box.admin().call(.status)
        #expect(reset.software.siteVersion == "24.1.0")
        #expect(!FileManager.default.fileExists(atPath: payloads.path))
        // And so is the previous software slot: a reset box has nothing to roll back to.
        #expect(!FileManager.default.fileExists(atPath: box.dataDir.appendingPathComponent("software").path))
        #expect(try await box.admin().softwareSlots().previous == nil)
    }

    @Test func badPackagesAreRefusedAndChangeNothing() async throws {
        let vendor = try TestVendor()
        let box = try await TestBox(arguments: ["--vendor-key", vendor.keyFile.path])
        defer { box.terminate() }
        let admin = try await box.admin()
        func upload(_ file: URL) async -> String? {
            await refusal { _ = try await admin.installPackage(fromFile: file.path, acceptEula: true) }
        }
        let stranger = Ed25519PrivateKey()
        #expect(await upload(try vendor.package("site", .site, "24.2.0", signedBy: stranger)) == "package_untrustedKey")

        let good = try vendor.package("site", .site, "24.2.0")
        var bytes = try Data(contentsOf: good)
        bytes[bytes.count - 2000] ^= 0x01  // inside the payload
        let tampered = vendor.directory.appendingPathComponent("tampered.pkg")
        try bytes.write(to: tampered)
        #expect(await upload(tampered) == "package_tamperedPayload")

        var signature = try Data(contentsOf: good)
        let manifestEnd = try #require(signature.range(of: Data("signature".utf8)))
        signature[manifestEnd.lowerBound + 512] ^= 0x01  // first byte of the signature member's data
        let forged = vendor.directory.appendingPathComponent("forged.pkg")
        try signature.write(to: forged)
        #expect(await upload(forged) == "package_badSignature")

        #expect(await upload(try vendor.package("site", .site, "24.0.0")) == "package_downgrade")
        #expect(
            await upload(
                try vendor.package("reports", .addon, "1.0.0", requires: [.init(name: "base", minimumVersion: "9.0")])
            )
                == "package_missingRequirement"
        )
        let status: StatusResponse = try await admin.call(.status)
        #expect(status.software.siteVersion == "24.1.0")
        #expect(status.software.baseVersion == "7.2.0")
        #expect(status.software.addons.isEmpty)
    }

    @Test func offlineUpdateThroughADownloadKey() async throws {
        let vendor = try TestVendor()
        try vendor.publish(try vendor.package("site", .site, "24.2.0"))
        let box = try await TestBox(arguments: ["--vendor-key", vendor.keyFile.path])
        defer { box.terminate() }
        let cli = CommandLineTests.CLI()
        #expect(try await cli.run(["first-login", box.endpoint]).status == 0)
        box.factoryFresh = false
        let dir = TestSupport.temporaryDirectory("offline")
        let keyFile = dir.appendingPathComponent("box.adk")
        let issued = try await cli.run(["updates", "download-key", box.endpoint, "--out", keyFile.path])
        #expect(issued.status == 0, "\(issued.stderr)")

        // On the unrestricted machine.
        let out = dir.appendingPathComponent("carry")
        let fetch = try await cli.run([
            "updates", "fetch", "--download-key", keyFile.path, "--repo", vendor.repository.path, "--out", out.path,
            "--vendor-key", vendor.keyFile.path,
        ])
        #expect(fetch.status == 0, "\(fetch.stderr)")
        let files = try FileManager.default.contentsOfDirectory(atPath: out.path)
        #expect(files.count == 1)
        // Fetched once with this key: not offered again.
        let second = try await cli.run([
            "updates", "fetch", "--download-key", keyFile.path, "--repo", vendor.repository.path, "--out",
            dir.appendingPathComponent("again").path,
        ])
        #expect(second.status == 0)
        #expect(second.stdout.contains("0 package file(s)"))

        // Carried over and uploaded (manual install).
        let upload = try await cli.run([
            "updates", "upload", box.endpoint, out.appendingPathComponent(files[0]).path, "--accept-eula",
        ])
        #expect(upload.status == 0, "\(upload.stderr)")
        let status = try await cli.run(["status", box.endpoint])
        #expect(status.stdout.contains("site 24.2.0"))

        // A key from a box whose clock is an hour ahead is refused with what to check.
        let skewed = DownloadKey.issue(
            applianceId: "x",
            hostname: "skewed",
            installed: ["site": "24.1.0"],
            issuedAt: Date().addingTimeInterval(3600),
            signingKey: Ed25519PrivateKey()
        )
        let skewedFile = dir.appendingPathComponent("skewed.adk")
        try Data(skewed.utf8).write(to: skewedFile)
        let refused = try await cli.run([
            "updates", "fetch", "--download-key", skewedFile.path, "--repo", vendor.repository.path, "--out", out.path,
        ])
        #expect(refused.status == 1, "\(refused.stderr)")
        #expect(refused.stderr.contains("Error: "), "\(refused.stderr)")
        #expect(refused.stderr.contains("NTP"), "\(refused.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: out.path).count == 1, "nothing more was fetched")
    }
}

/// The update source can be a repository served over HTTP (here `python3 -m http.server` on loopback).
@Suite struct HTTPRepositoryTests {
    @Test func updatesComeFromAnHTTPRepository() async throws {
        let vendor = try TestVendor()
        try vendor.publish(try vendor.package("site", .site, "24.2.0"))
        let port = 20_000 + Int(getpid()) % 20_000
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        server.arguments = [
            "python3", "-m", "http.server", "\(port)", "--bind", "127.0.0.1", "--directory", vendor.repository.path,
        ]
        server.standardOutput = FileHandle.nullDevice
        server.standardError = FileHandle.nullDevice
        try server.run()
        defer { server.terminate() }
        let box = try await TestBox(arguments: ["--vendor-key", vendor.keyFile.path])
        defer { box.terminate() }
        let admin = try await box.admin()
        try await admin.perform(.setUpdateSource, body: UpdateSourceRequest(repository: "http://127.0.0.1:\(port)"))
        var check: UpdatesResponse?
        try await TestSupport.poll("the HTTP repository on port \(port)") {
            check = try? await admin.call(.updates)
            return check != nil
        }
        let updates = try #require(check)
        #expect(updates.updates.map(\.version) == ["24.2.0"])
        let installed: InstallResponse = try await admin.call(
            .installUpdate,
            body: InstallRequest(name: "site", version: nil, acceptEula: true)
        )
        #expect(installed.software.siteVersion == "24.2.0")
        // The install logged everyone out; a new session may not point the box at a non-repository.
        let again = try await box.admin()
        #expect(
            await refusal {
                try await again.perform(.setUpdateSource, body: UpdateSourceRequest(repository: "ftp://x"))
            }
                == "invalid_input"
        )
    }
}

/// The vendor's side with appliancectl's own tooling: key, signed packages, repository; then the operator's side.
@Suite struct VendorToolingTests {
    @Test func packagesMadeWithAppliancectlInstall() async throws {
        let cli = CommandLineTests.CLI()
        let dir = TestSupport.temporaryDirectory("vendor-cli")
        let prefix = dir.appendingPathComponent("acme").path
        let keygen = try await cli.run(["vendor", "keygen", "--out", prefix])
        #expect(keygen.status == 0, "\(keygen.stderr)")
        let mode = try FileManager.default.attributesOfItem(atPath: prefix + ".key")[.posixPermissions] as? Int
        #expect(mode == 0o600)
        let keyBefore = try Data(contentsOf: URL(fileURLWithPath: prefix + ".key"))
        let again = try await cli.run(["vendor", "keygen", "--out", prefix])
        #expect(again.status == 3, "a signing key is never overwritten: \(again.stderr)")
        #expect(again.stderr.contains("refusing to overwrite a signing key"), "\(again.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: prefix + ".key")) == keyBefore)

        let payload = dir.appendingPathComponent("payload.bin")
        try Data(SecureRandom.bytes(100_000)).write(to: payload)
        let eula = dir.appendingPathComponent("eula.txt")
        try Data("ACME site 24.2 licence".utf8).write(to: eula)
        let site = dir.appendingPathComponent("site.pkg").path
        let addon = dir.appendingPathComponent("reports.pkg").path
        #expect(
            try await cli.run([
                "vendor", "build", "--key", prefix + ".key", "--name", "site", "--kind", "site", "--version", "24.2.0",
                "--eula", eula.path, "--payload", payload.path, "--out", site,
            ]).status == 0
        )
        #expect(
            try await cli.run([
                "vendor", "build", "--key", prefix + ".key", "--name", "reports", "--kind", "addon", "--version",
                "1.0.0",
                "--requires", "site>=24.3.0", "--payload", payload.path, "--out", addon,
            ]).status == 0
        )
        let repo = dir.appendingPathComponent("repo").path
        #expect(try await cli.run(["vendor", "repo-add", "--repo", repo, site, addon]).status == 0)

        let box = try await TestBox(arguments: ["--vendor-key", prefix + ".pub"])
        defer { box.terminate() }
        #expect(try await cli.run(["first-login", box.endpoint]).status == 0)
        #expect(try await cli.run(["updates", "source", box.endpoint, "--repo", repo]).status == 0)
        let check = try await cli.run(["updates", "check", box.endpoint])
        #expect(check.stdout.contains("site 24.2.0 (site) — applicable"), "\(check.stdout)")
        let refused = try await cli.run(["updates", "install", box.endpoint, "site"])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("ACME site 24.2 licence"), "the EULA is shown, nothing installed")
        let install = try await cli.run(["updates", "install", box.endpoint, "site", "--accept-eula"])
        #expect(install.status == 0, "\(install.stderr)")
        #expect(install.stdout.contains("client installers generated earlier are invalid"))
        // The add-on needs a site version that is not available: a manual install is refused.
        let upload = try await cli.run(["updates", "upload", box.endpoint, addon, "--accept-eula"])
        #expect(upload.status == 1, "\(upload.stderr)")
        #expect(upload.stderr.contains("Error: "), "\(upload.stderr)")
        #expect(upload.stderr.contains("24.3.0"), "\(upload.stderr)")
    }
}
