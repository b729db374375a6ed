import ApplianceAPI
import ApplianceClient
import Foundation
import SoftwarePackages
import Testing

/// X4 on the appliance: A/B software slots, the one step back, and a post-install self-test that can fail.
@Suite struct RollbackTests {
    @Test func theSoftwareBeforeTheLastInstallIsKeptAndOneRollbackReturnsToIt() async throws {
        let vendor = try TestVendor()
        let box = try await TestBox(arguments: ["--vendor-key", vendor.keyFile.path])
        defer { box.terminate() }
        var admin = try await box.admin()

        // Before any install there is nothing to return to.
        let fresh = try await admin.softwareSlots()
        #expect(fresh.current.software.siteVersion == "24.1.0")
        #expect(fresh.previous == nil)
        #expect(await refusal { _ = try await admin.rollback() } == "no_previous_slot")

        _ = try await admin.installPackage(fromFile: try vendor.package("site", .site, "24.2.0").path, acceptEula: true)
        admin = try await box.admin()
        let v1Slot = try await admin.softwareSlots().current
        _ = try await admin.installPackage(fromFile: try vendor.package("site", .site, "24.3.0").path, acceptEula: true)
        admin = try await box.admin()

        let slots = try await admin.softwareSlots()
        #expect(slots.current.software.siteVersion == "24.3.0")
        let previous = try #require(slots.previous)
        #expect(previous.software.siteVersion == "24.2.0")
        #expect(previous.id == v1Slot.id)
        #expect(previous.software.baseVersion == "7.2.0")

        // The slot record and the previous slot's payload are private and kept on disk.
        let software = box.dataDir.appendingPathComponent("software")
        #expect(try mode(software) == 0o700)
        #expect(try mode(software.appendingPathComponent("slots.json")) == 0o600)
        let kept = software.appendingPathComponent("slot-\(previous.id)")
        #expect(try mode(kept) == 0o700)
        #expect(FileManager.default.fileExists(atPath: kept.appendingPathComponent("site-24.2.0.payload").path))
        let payloads = box.dataDir.appendingPathComponent("packages")
        #expect(try FileManager.default.contentsOfDirectory(atPath: payloads.path) == ["site-24.3.0.payload"])

        let answer = try await admin.rollback()
        #expect(answer.software.siteVersion == "24.2.0")
        #expect(answer.rolledBack.siteVersion == "24.3.0")
        admin = try await box.admin()
        let status: StatusResponse = try await admin.call(.status)
        #expect(status.software.siteVersion == "24.2.0")
        #expect(status.software.baseVersion == "7.2.0")
        let health = try await box.connection().health()
        #expect(health.healthy, "\(health.health)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: payloads.path) == ["site-24.2.0.payload"])

        // Only one step back.
        let after = try await admin.softwareSlots()
        #expect(after.current.software.siteVersion == "24.2.0")
        #expect(after.previous == nil)
        let error = await apiError { _ = try await admin.rollback() }
        #expect(error?.apiCode == "no_previous_slot")
        #expect(error?.apiStatus == 409)
        #expect(error?.message.contains("install a newer package") == true, "\(String(describing: error))")

        // Other downgrades stay refused, and change nothing.
        for version in ["24.1.5", "24.2.0"] {
            let file = try vendor.package("site", .site, version)
            #expect(
                await refusal { _ = try await admin.installPackage(fromFile: file.path, acceptEula: true) }
                    == "package_downgrade"
            )
        }
        let still: StatusResponse = try await admin.call(.status)
        #expect(still.software.siteVersion == "24.2.0")

        // The slots survive a restart.
        await box.stop()
        try await box.start()
        admin = try await box.admin()
        let restarted = try await admin.softwareSlots()
        #expect(restarted.current.software.siteVersion == "24.2.0")
        #expect(restarted.previous == nil)
    }

    @Test func aFailingSelfTestMakesTheBoxUnhealthyUntilItIsRolledBack() async throws {
        let vendor = try TestVendor()
        let box = try await TestBox(arguments: ["--vendor-key", vendor.keyFile.path])
        defer { box.terminate() }
        var admin = try await box.admin()
        let before: StatusResponse = try await admin.call(.status)

        let broken = try vendor.package(
            "site",
            .site,
            "24.2.0",
            selfTest: .init(
                command: "echo \"checking $PACKAGE_NAME $PACKAGE_VERSION\"; test -s \"$PACKAGE_PAYLOAD\" && exit 1"
            )
        )
        let installed = try await admin.installPackage(fromFile: broken.path, acceptEula: true)
        let report = try #require(installed.selfTest)
        #expect(!report.passed)
        #expect(report.message?.contains("status 1") == true, "\(String(describing: report.message))")
        #expect(report.message?.contains("checking site 24.2.0") == true, "\(String(describing: report.message))")

        var probe = try await box.connection().health()
        #expect(!probe.healthy)
        #expect(probe.health.status == "self_test_failed")
        #expect(probe.health.reason?.contains("site 24.2.0") == true, "\(String(describing: probe.health.reason))")

        admin = try await box.admin()
        let slots = try await admin.softwareSlots()
        #expect(slots.current.selfTest == "failed")
        #expect(slots.current.selfTestPackage == "site 24.2.0")

        let answer = try await admin.rollback()
        #expect(answer.software == before.software)
        try await TestSupport.poll("the box to be healthy after the rollback") {
            probe = try await box.connection().health()
            return probe.healthy
        }
        #expect(probe.health.status == "ok")
        admin = try await box.admin()
        let status: StatusResponse = try await admin.call(.status)
        #expect(status.software == before.software)

        // A self-test that hangs is killed at its limit and counts as failed.
        let hanging = try vendor.package(
            "site",
            .site,
            "24.3.0",
            selfTest: .init(command: "sleep 300", timeoutSeconds: 1)
        )
        let timedOut = try await admin.installPackage(fromFile: hanging.path, acceptEula: true)
        #expect(timedOut.selfTest?.passed == false)
        #expect(timedOut.selfTest?.message?.contains("limit of 1 s") == true)
        #expect(try await box.connection().health().healthy == false)
    }

    @Test func appliancectlBuildsAFailingPackageShowsTheSlotsAndRollsBack() async throws {
        let cli = CommandLineTests.CLI()
        let dir = TestSupport.temporaryDirectory("rollback-cli")
        let prefix = dir.appendingPathComponent("acme").path
        #expect(try await cli.run(["vendor", "keygen", "--out", prefix]).status == 0)
        let payload = dir.appendingPathComponent("payload.bin")
        try Data("site payload".utf8).write(to: payload)
        let site = dir.appendingPathComponent("site.pkg").path
        let build = try await cli.run([
            "vendor", "build", "--key", prefix + ".key", "--name", "site", "--kind", "site", "--version", "24.2.0",
            "--payload", payload.path, "--self-test", "echo broken >&2; exit 1", "--out", site,
        ])
        #expect(build.status == 0, "\(build.stderr)")

        let box = try await TestBox(arguments: ["--vendor-key", prefix + ".pub"])
        defer { box.terminate() }
        #expect(try await cli.run(["first-login", box.endpoint]).status == 0)
        let upload = try await cli.run(["updates", "upload", box.endpoint, site, "--accept-eula"])
        #expect(upload.status == 1, "a failed self-test fails the command: \(upload.stdout)")
        #expect(upload.stdout.contains("self-test failed"), "\(upload.stdout)")
        #expect(upload.stdout.contains("broken"), "\(upload.stdout)")

        let slots = try await cli.run(["updates", "slots", box.endpoint])
        #expect(slots.status == 0, "\(slots.stderr)")
        #expect(slots.stdout.contains("Current:  base 7.2.0, site 24.2.0"), "\(slots.stdout)")
        #expect(slots.stdout.contains("FAILED"), "\(slots.stdout)")
        #expect(slots.stdout.contains("Previous: base 7.2.0, site 24.1.0"), "\(slots.stdout)")

        let rollback = try await cli.run(["updates", "rollback", box.endpoint])
        #expect(rollback.status == 0, "\(rollback.stderr)")
        #expect(rollback.stdout.contains("site 24.1.0"), "\(rollback.stdout)")
        #expect(try await box.connection().health().healthy)

        let again = try await cli.run(["updates", "rollback", box.endpoint])
        #expect(again.status == 1)
        #expect(again.stderr.contains("no previous software slot"), "\(again.stderr)")
    }
}

private func mode(_ url: URL) throws -> Int? {
    try FileManager.default.attributesOfItem(atPath: url.path)[.posixPermissions] as? Int
}

/// The API error `body` ends with, nil when it succeeds.
private func apiError(_ body: () async throws -> Void) async -> ApplianceClientError? {
    do {
        try await body()
        return nil
    } catch {
        return error as? ApplianceClientError
    }
}

extension RollbackTests {
    @Test func slotsAndRollbackNeedAChangedPassword() async throws {
        let box = try await TestBox()
        defer { box.terminate() }
        let connection = box.connection()
        let login = try await connection.login(username: "admin", password: "password")
        let session = connection.authenticated(login.token)
        #expect(await refusal { _ = try await session.softwareSlots() } == "password_change_required")
        #expect(await refusal { _ = try await session.rollback() } == "password_change_required")
        #expect(await refusal { _ = try await connection.softwareSlots() } == "unauthorized")
    }
}
