import ApplianceAPI
import ApplianceClient
import ApplianceProvisioning
import ApplianceTemplates
import Foundation
import Testing

/// `upgrade-single.yml` online against a virtual appliance (issue 14): the vendor's repository is served over HTTP
/// on the host, the VM fetches the index and the package from it with its own HTTP client, through the guest
/// forward the provision gave it (QEMU user networking with restrict=on lets the guest reach nothing else).
extension VirtualApplianceTests {
    /// Runs appliancectl on a thread of its own with this suite's environment plus `extra`.
    func ctl(
        _ arguments: [String],
        extra: [String: String] = [:]
    ) async throws -> (status: Int32, stdout: String, stderr: String) {
        try await ProvisioningTestSupport.captureDetached(
            ProvisioningTestSupport.binary("appliancectl").path,
            arguments,
            environment: environment.merging(extra) { $1 }
        )
    }

    /// A vendor key and a repository with site 24.2.0 in it, made with `appliancectl vendor` as a vendor would.
    func makeRepository(in work: URL) async throws -> (publicKey: URL, repository: URL) {
        let key = work.appendingPathComponent("vendor")
        let repository = work.appendingPathComponent("repo")
        let payload = work.appendingPathComponent("payload.bin")
        let eula = work.appendingPathComponent("eula.txt")
        let package = work.appendingPathComponent("site-24.2.0.pkg")
        try Data((0..<64 * 1024).map { _ in UInt8.random(in: 0...255) }).write(to: payload)
        try Data("EULA of site 24.2.0: use it well.".utf8).write(to: eula)
        let steps = [
            ["vendor", "keygen", "--out", key.path],
            [
                "vendor", "build", "--key", key.path + ".key", "--name", "site", "--kind", "site", "--version",
                "24.2.0", "--eula", eula.path, "--payload", payload.path, "--out", package.path,
            ],
            ["vendor", "repo-add", "--repo", repository.path, package.path],
        ]
        for step in steps {
            let result = try await ctl(step)
            try #require(result.status == 0, "\(step.joined(separator: " ")): \(result.stderr)")
        }
        return (URL(fileURLWithPath: key.path + ".pub"), repository)
    }

    /// The shipped playbook with its box and the HTTP repository filled in: the file users run, not a copy.
    func playbook(box: String, repository: String) throws -> String {
        let shipped = ProvisioningTestSupport.repository.appendingPathComponent("Playbooks/upgrade-single.yml")
        let text = try String(contentsOf: shipped, encoding: .utf8)
        try #require(text.contains("\nbox: old-box\n") && text.contains("\ntarget: 24.2.0 "), "\(text)")
        try #require(text.contains("password: BACKUP_PASSWORD"), "\(text)")
        try #require(!text.contains("\npackages:"), "the shipped playbook now sets packages; adapt the test")
        return text.replacingOccurrences(of: "\nbox: old-box\n", with: "\nbox: \(box)\n")
            + "\npackages:\n  repository: \(repository)\n"
    }

    /// The last lines of the VM's console log (in the session daemon's pool directory).
    func consoleTail(_ name: String, lines: Int = 60) -> String {
        let file = "\(name)-console.log"
        let walker = FileManager.default.enumerator(at: daemon.root, includingPropertiesForKeys: nil)
        while let url = walker?.nextObject() as? URL {
            guard url.lastPathComponent == file, let text = try? String(contentsOf: url, encoding: .utf8) else {
                continue
            }
            return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines)
                .joined(separator: "\n")
        }
        return "(no console log \(file) under \(daemon.root.path))"
    }

    func status(_ address: String) async throws -> StatusResponse {
        let result = try await ctl(["status", address, "--json"])
        try #require(result.status == 0, "\(result.stderr)")
        return try APICoding.decoder().decode(StatusResponse.self, from: Data(result.stdout.utf8))
    }

    func siteSummary(_ address: String) async throws -> SiteSummary {
        let result = try await ctl(["summary", address])
        try #require(result.status == 0, "\(result.stderr)")
        return try APICoding.decoder().decode(SiteSummary.self, from: Data(result.stdout.utf8))
    }

    @Test(.timeLimit(.minutes(25)))
    func upgradeSingleOnlineFromAnHTTPRepository() async throws {
        let started = ContinuousClock.now
        let name = "up-\(getpid())"
        let work = root.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        // 512 MiB: the backup's scrypt (work factor 18) alone needs 256 MiB; a 256 MiB guest drops the download.
        try writeInventory(name, memoryMiB: 512)
        let (vendorKey, repository) = try await makeRepository(in: work)
        let server = try await StaticHTTPServer.start(
            serving: repository,
            probe: "index.json",
            log: work.appendingPathComponent("http.log")
        )
        var failure: (any Error)?
        do {
            try await upgrade(name, vendorKey: vendorKey, server: server, work: work)
        } catch {
            failure = error
            print("upgradeSingleOnlineFromAnHTTPRepository failed; console of \(name):\n\(consoleTail(name))")
            print("HTTP requests:\n\(server.requests)")
        }
        await server.stop()
        let destroyed = try await ctl(["destroy", name, "--inventory", inventory.path])
        #expect(destroyed.status == 0, "\(destroyed.stderr)")
        let left = try await leftovers(name)
        #expect(!left.domain, "no domain left")
        #expect(left.volumes.isEmpty, "no volume left: \(left.volumes)")
        #expect(!server.process.isRunning, "the HTTP server is stopped")
        print("upgradeSingleOnlineFromAnHTTPRepository: \(ContinuousClock.now - started) in all")
        if let failure { throw failure }
    }

    /// Provision with the vendor key and a forward to the repository, data on it, then the upgrade playbook.
    func upgrade(_ name: String, vendorKey: URL, server: StaticHTTPServer, work: URL) async throws {
        var mark = ContinuousClock.now
        func lap(_ what: String) {
            print("upgradeSingleOnlineFromAnHTTPRepository: \(what) took \(ContinuousClock.now - mark)")
            mark = ContinuousClock.now
        }
        let provisioned = try await ctl([
            "provision", name, "--inventory", inventory.path, "--json", "--vendor-key", vendorKey.path,
            "--guest-forward", "127.0.0.1:\(server.port)",
        ])
        try #require(provisioned.status == 0, "provision failed: \(provisioned.stderr)")
        let result = try JSONDecoder().decode(ProvisionResult.self, from: Data(provisioned.stdout.utf8))
        lap("provision (image, boot, first login)")
        try #require(try await status(result.address).software.siteVersion == "24.1.0", "the image's factory site")

        let populated = try await ctl(["populate", result.address, "--size", "8MiB", "--seed", "1"])
        try #require(populated.status == 0, "\(populated.stderr)")
        let before = try await siteSummary(result.address)
        lap("populate 8 MiB")

        let playbookFile = work.appendingPathComponent("upgrade-single.yml")
        let guestURL = "http://\(GuestForward.guestHost):\(server.port)"
        try Data(try playbook(box: name, repository: guestURL).utf8).write(to: playbookFile)
        let run = try await ctl(
            ["run", playbookFile.path, "--inventory", inventory.path, "--yes", "--accept-eula"],
            extra: ["BACKUP_PASSWORD": "Backup-Password-9"]
        )
        lap("appliancectl run upgrade-single.yml")
        try #require(run.status == 0, "the upgrade failed: \(run.stderr)\n\(run.stdout)")
        #expect(
            run.stdout.contains("Upgraded: base 7.2.0, site 24.1.0 → base 7.2.0, site 24.2.0"),
            "\(run.stdout)"
        )

        // The box itself fetched both files over HTTP (the host never reads the repository for it).
        let requests = server.requests
        #expect(requests.contains("\"GET /index.json HTTP/1.1\" 200"), "\(requests)")
        #expect(requests.contains("\"GET /site_24.2.0.pkg HTTP/1.1\" 200"), "\(requests)")

        let after = try await status(result.address)
        #expect(after.software.siteVersion == "24.2.0")
        let hostPort = try #require(HostPort(result.address))
        let pin = try #require(TLSPin(result.pin))
        let (healthy, _, _) = try await ApplianceConnection(host: hostPort.host, port: hostPort.port, pin: pin)
            .health()
        #expect(healthy, "/health answers 200 after the upgrade")
        var summary = try await siteSummary(result.address)
        #expect(summary.siteVersion == "24.2.0")
        summary.siteVersion = before.siteVersion
        #expect(summary == before, "the site data is as before the upgrade")

        let runs = try await ctl(["runs", "--json"])
        let listed = try #require(try JSONSerialization.jsonObject(with: Data(runs.stdout.utf8)) as? [[String: Any]])
        let id = try #require(listed.first { $0["kind"] as? String == "upgrade" }?["id"] as? String)
        let file = root.appendingPathComponent("state/runs/\(id)/report.json")
        let report = try JSONDecoder().decode(UpgradeReport.self, from: Data(contentsOf: file))
        #expect(report.state == "finished" && report.verified, "\(report)")
        #expect(!report.comparison.isEmpty && report.comparison.allSatisfy(\.matches), "\(report.comparison)")
    }
}

extension VirtualApplianceTests {
    /// The default 256 MiB guest cannot hold the backup's scrypt (256 MiB by itself): applianced says so before
    /// it starts, instead of being killed mid-download (which the upgrade saw as a malformed response).
    @Test(.timeLimit(.minutes(10)))
    func aSmallVirtualApplianceRefusesAnEncryptedBackupWithWhatToDo() async throws {
        let name = "small-\(getpid())"
        try writeInventory(name, memoryMiB: 256)
        var failure: (any Error)?
        do {
            let provisioned = try await ctl(["provision", name, "--inventory", inventory.path, "--json"])
            try #require(provisioned.status == 0, "provision failed: \(provisioned.stderr)")
            let result = try JSONDecoder().decode(ProvisionResult.self, from: Data(provisioned.stdout.utf8))
            let file = root.appendingPathComponent("\(name).backup")
            let backup = try await ctl(
                ["backup", result.address, "--out", file.path],
                extra: ["BACKUP_PASSWORD": "Backup-Password-9"]
            )
            #expect(backup.status != 0)
            #expect(backup.stderr.contains("needs 272 MiB of memory"), "\(backup.stderr)")
            #expect(backup.stderr.contains("memory_mib of 512 or more"), "\(backup.stderr)")
            #expect(!FileManager.default.fileExists(atPath: file.path))
            // Still up and serving: nothing was killed.
            #expect(try await status(result.address).software.siteVersion == "24.1.0")
            #expect(consoleTail(name).contains("appliance-init: applianced exited") == false, "\(consoleTail(name))")
        } catch {
            failure = error
            print("aSmallVirtualApplianceRefusesAnEncryptedBackupWithWhatToDo failed; console:\n\(consoleTail(name))")
        }
        let destroyed = try await ctl(["destroy", name, "--inventory", inventory.path])
        #expect(destroyed.status == 0, "\(destroyed.stderr)")
        let left = try await leftovers(name)
        #expect(!left.domain && left.volumes.isEmpty, "\(left)")
        if let failure { throw failure }
    }
}

/// What the test reads of an upgrade's `report.json` (the upgrade summary's fields are at the top level).
struct UpgradeReport: Decodable {
    struct Item: Decodable {
        var item: String
        var matches: Bool
    }
    var state: String
    var verified: Bool
    var comparison: [Item]
}
