import ApplianceAPI
import ApplianceClient
import Foundation
import SoftwarePackages
import Testing

/// `upgrade-single.yml` offline (restricted network; the manual's manual update): the box's download key, the
/// packages fetched on this machine from a directory or an http URL, verified with the vendor key and uploaded.
@Suite(.serialized) struct UpgradeOfflineTests {
    typealias Scenario = UpgradeTests.Scenario

    /// The playbook's packages section for an offline upgrade from `repository` (default: the vendor's directory).
    static func offline(_ repository: String? = nil) -> (TestVendor) -> String {
        { vendor in
            "packages:\n  mode: offline\n  repository: \(repository ?? vendor.repository.path)\n"
                + "  vendor_key: \(vendor.keyFile.path)"
        }
    }

    static let libfaketime = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"

    func report(_ scenario: Scenario) async throws -> String {
        try String(contentsOf: try await scenario.runDirectory().appendingPathComponent("report.md"), encoding: .utf8)
    }

    /// Upgraded, site data equal, certificate still served, the report says offline and what was uploaded.
    func expectUpgraded(_ scenario: Scenario, _ result: (status: Int32, stdout: String, stderr: String)) async throws {
        #expect(result.status == 0, "\(result.stderr)\n\(result.stdout)")
        #expect(result.stdout.contains("→ base 7.2.0, site 24.2.0"), "\(result.stdout)")
        #expect(result.stdout.contains("Packages: offline from "), "\(result.stdout)")
        #expect(result.stdout.contains("uploaded: site_24.2.0.pkg"), "\(result.stdout)")
        #expect(try await scenario.software().siteVersion == "24.2.0")
        #expect(UpgradeTests.sameData(scenario.summaryBefore, try await scenario.summary()))
        let served = try await PinnedHTTPClient.fetchPeerCertificate(host: scenario.box.address, port: TestBox.port)
        #expect(served.pin == scenario.box.pin, "the certificate served before is still served")
        let report = try await report(scenario)
        #expect(report.contains("Packages: offline from "), "\(report)")
        #expect(report.contains("uploaded: site_24.2.0.pkg"), "\(report)")
        #expect(report.contains("site data as before"), "\(report)")
        let fetched = try await scenario.runDirectory().appendingPathComponent("packages/site_24.2.0.pkg")
        #expect(FileManager.default.fileExists(atPath: fetched.path))
    }

    @Test func anOfflineUpgradeFromADirectoryUploadsTheVerifiedPackages() async throws {
        let scenario = try await Scenario(certificate: true, packages: Self.offline())
        let plan = try await scenario.ctl(scenario.run + ["--dry-run"])
        #expect(plan.status == 0, "\(plan.stderr)")
        #expect(plan.stdout.contains("offline: the box's download key"), "\(plan.stdout)")
        #expect(plan.stdout.contains("fetched here from \(scenario.vendor.repository.path)"), "\(plan.stdout)")
        #expect(plan.stdout.contains("uploaded from the run directory (manual install)"), "\(plan.stdout)")
        #expect(try await scenario.runs().isEmpty, "a dry run journals nothing")

        try await expectUpgraded(scenario, try await scenario.ctl(scenario.run))
        await #expect(throws: (any Error).self, "the box's update source stays unset") {
            let _: UpdatesResponse = try await scenario.box.admin().call(.updates)
        }
    }

    @Test func anOfflineUpgradeFromAnHTTPRepository() async throws {
        let server = try await HTTPDirectory()
        defer { server.stop() }
        let scenario = try await Scenario(packages: Self.offline(server.url))
        try await server.serve(scenario.vendor.repository)
        try await expectUpgraded(scenario, try await scenario.ctl(scenario.run))
        #expect(try await report(scenario).contains("offline from \(server.url)"))
    }

    /// The box's clock really is 2 h ahead or behind (libfaketime under applianced): its download key is refused
    /// in the pre-flight with the measured skew and what to check, before any backup or install.
    @Test(arguments: [("+2h", 7200), ("-2h", -7200)])
    func aBoxWhoseClockIsOffIsRefusedBeforeAnythingChanges(offset: String, seconds: Int) async throws {
        #expect(
            FileManager.default.fileExists(atPath: Self.libfaketime),
            "libfaketime is missing: scripts/setup.sh installs the Debian package faketime"
        )
        let scenario = try await Scenario(
            packages: Self.offline(),
            boxEnvironment: [
                "LD_PRELOAD": Self.libfaketime, "FAKETIME": offset, "FAKETIME_DONT_FAKE_MONOTONIC": "1",
            ]
        )
        let session = try await scenario.box.admin()
        let status: StatusResponse = try await session.call(.status)
        let ahead = status.clock.utc.timeIntervalSinceNow
        #expect(abs(ahead - Double(seconds)) < 100, "the box's clock is \(ahead) s off, not \(offset)")
        let source = scenario.vendor.repository.path
        try await session.perform(.setUpdateSource, body: UpdateSourceRequest(repository: source))

        let result = try await scenario.ctl(scenario.run)
        #expect(result.status == 3, "refused by a safety rule: \(result.stderr)")
        #expect(result.stderr.contains("check the appliance time / NTP"), "\(result.stderr)")
        #expect(result.stderr.contains("nothing was changed"), "\(result.stderr)")
        let skew = result.stderr.firstMatch(of: /clock skew (-?\d+) s/).flatMap { Int($0.1) }
        #expect(skew.map { abs($0 - seconds) <= 10 } == true, "the measured skew: \(result.stderr)")

        #expect(try await scenario.software() == scenario.softwareBefore)
        #expect(try await scenario.summary() == scenario.summaryBefore)
        #expect(try await scenario.box.admin().softwareSlots().previous == nil, "nothing was installed")
        let run = try await scenario.runDirectory()
        #expect(!FileManager.default.fileExists(atPath: run.appendingPathComponent("pre-upgrade.backup").path))
        #expect(!FileManager.default.fileExists(atPath: run.appendingPathComponent("packages").path))
        let updates: UpdatesResponse = try await scenario.box.admin().call(.updates)
        #expect(updates.source == source, "the update source is untouched")
    }

    @Test func aFailingSelfTestOfflineIsRolledBackAutomatically() async throws {
        let scenario = try await Scenario(selfTest: .init(command: "exit 1"), packages: Self.offline())
        let result = try await scenario.ctl(scenario.run)
        #expect(result.status == 1, "failed but rolled back: \(result.stderr)\n\(result.stdout)")
        #expect(
            result.stderr.contains("rolled back automatically from base 7.2.0, site 24.2.0 to base 7.2.0, site 24.1.0"),
            "\(result.stderr)"
        )
        #expect(result.stdout.contains("Rolled back automatically"), "\(result.stdout)")
        #expect(try await scenario.box.connection().health().healthy)
        #expect(try await scenario.software() == scenario.softwareBefore)
        #expect(try await scenario.summary() == scenario.summaryBefore)
        #expect(try await report(scenario).contains("## Automatic rollback"))
    }

    /// Killed at the start and the end of the other steps (pre-flight with its download key and fetch, backup,
    /// verify): the resumed run finishes offline, the box on the target with its data as before.
    @Test(arguments: [
        "preflight:intent", "preflight:acted", "backup:intent", "backup:acted", "verify:intent", "verify:acted",
    ])
    func killedAtAnyOtherStepTheResumedRunFinishesOffline(crash: String) async throws {
        let scenario = try await Scenario(packages: Self.offline())
        let killed = try await scenario.ctl(scenario.run, crash: crash)
        #expect(killed.status != 0, "\(crash): \(killed.stderr)")
        let id = try #require(try await scenario.runs().first?["id"] as? String)
        let resumed = try await scenario.ctl(["resume", id, "--yes", "--accept-eula"])
        #expect(resumed.status == 0, "\(crash): \(resumed.stderr)")
        #expect(try await scenario.software().siteVersion == "24.2.0")
        #expect(UpgradeTests.sameData(scenario.summaryBefore, try await scenario.summary()))
        #expect(try await report(scenario).contains("offline from"), "\(crash)")
    }

    /// Killed after the upload: the resumed run reads the versions on the box and does not upload again. Killed
    /// before it with the fetched file damaged meanwhile: the file is verified again, fetched again, then uploaded.
    @Test(arguments: ["install:intent", "install:acted"])
    func killedAtTheInstallTheResumedRunReconcilesFromTheBox(crash: String) async throws {
        let scenario = try await Scenario(packages: Self.offline())
        let killed = try await scenario.ctl(scenario.run, crash: crash)
        #expect(killed.status != 0, "\(killed.stderr)")
        let fetched = try await scenario.runDirectory().appendingPathComponent("packages/site_24.2.0.pkg")
        if crash == "install:intent" { try Data("damaged".utf8).write(to: fetched) }
        let id = try #require(try await scenario.runs().first?["id"] as? String)
        let resumed = try await scenario.ctl(["resume", id, "--yes", "--accept-eula"])
        #expect(resumed.status == 0, "\(crash): \(resumed.stderr)")
        if crash == "install:acted" {
            #expect(resumed.stderr.contains("install was already done before the interruption"), "\(resumed.stderr)")
        } else {
            #expect(resumed.stderr.contains("does not verify any more"), "\(resumed.stderr)")
            #expect(resumed.stderr.contains("uploaded site_24.2.0.pkg"), "\(resumed.stderr)")
        }
        #expect(try await scenario.software().siteVersion == "24.2.0")
        #expect(UpgradeTests.sameData(scenario.summaryBefore, try await scenario.summary()))
    }
}

/// python3's http.server on 127.0.0.1 (a free port, written to a file the test polls), serving a directory that
/// is linked in once it exists (`serve`).
final class HTTPDirectory: @unchecked Sendable {
    // @unchecked: the Process is only touched by the test that owns the server.
    let root: URL
    let url: String
    private let process: Process

    init() async throws {
        let root = TestSupport.temporaryDirectory("http")
        let portFile = root.appendingPathComponent("port")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "python3", "-c",
            """
            import functools, http.server, os, sys
            handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])
            server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
            open(sys.argv[2] + ".tmp", "w").write(str(server.server_port))
            os.rename(sys.argv[2] + ".tmp", sys.argv[2])
            server.serve_forever()
            """,
            root.path, portFile.path,
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.root = root
        self.process = process
        try await TestSupport.poll("python3 http.server to listen") {
            guard process.isRunning else { throw TestFailure("python3 http.server exited") }
            return FileManager.default.fileExists(atPath: portFile.path)
        }
        url = "http://127.0.0.1:\(try String(contentsOf: portFile, encoding: .utf8))/repo"
    }

    /// Serves `directory` at `url`.
    func serve(_ directory: URL) async throws {
        try FileManager.default.createSymbolicLink(
            at: root.appendingPathComponent("repo"),
            withDestinationURL: directory
        )
    }

    func stop() {
        process.terminate()
    }
}
