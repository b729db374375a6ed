import ApplianceAPI
import ApplianceClient
import Foundation
import SoftwarePackages
import Testing

/// X4 crash safety: applianced killed (SIGKILL, its debug crash points) at every step of an install or a
/// rollback comes back with either the old or the new software, slots and database agreeing, and can go on.
extension RollbackTests {
    struct CrashCase: Sendable, CustomTestStringConvertible {
        var point: String
        /// The site version after the restart, and the previous slot's (nil: none).
        var site: String
        var previous: String?
        var testDescription: String { point }
    }

    @Test(arguments: [
        CrashCase(point: "install:kept", site: "24.2.0", previous: "24.1.0"),
        CrashCase(point: "install:recorded", site: "24.3.0", previous: "24.2.0"),
        CrashCase(point: "install:applied", site: "24.3.0", previous: "24.2.0"),
        CrashCase(point: "rollback:payloads", site: "24.3.0", previous: "24.2.0"),
        CrashCase(point: "rollback:recorded", site: "24.2.0", previous: nil),
        CrashCase(point: "rollback:applied", site: "24.2.0", previous: nil),
    ])
    func aKillAtAnyStepLeavesTheOldOrTheNewSoftware(_ crash: CrashCase) async throws {
        let vendor = try TestVendor()
        let box = try await TestBox(arguments: ["--vendor-key", vendor.keyFile.path])
        defer { box.terminate() }
        var admin = try await box.admin()
        _ = try await admin.installPackage(fromFile: try vendor.package("site", .site, "24.2.0").path, acceptEula: true)
        let next = try vendor.package("site", .site, "24.3.0")
        let isRollback = crash.point.hasPrefix("rollback:")
        if isRollback {
            admin = try await box.admin()
            _ = try await admin.installPackage(fromFile: next.path, acceptEula: true)
        }

        await box.stop()
        box.environment = ["APPLIANCED_CRASH_AT": crash.point]
        try await box.start()
        admin = try await box.admin()
        if isRollback {
            _ = try? await admin.rollback()
        } else {
            _ = try? await admin.installPackage(fromFile: next.path, acceptEula: true)
        }
        #expect(await box.waitForExit() != nil, "applianced was to be killed at \(crash.point)")

        box.environment = [:]
        try await box.start()
        admin = try await box.admin()
        let status: StatusResponse = try await admin.call(.status)
        let slots = try await admin.softwareSlots()
        #expect(status.software.siteVersion == crash.site)
        #expect(slots.current.software == status.software, "slots.json and the database agree")
        #expect(slots.previous?.software.siteVersion == crash.previous)
        // Nothing half-made is left: only the previous slot's directory, only the current slot's payload.
        let software = box.dataDir.appendingPathComponent("software")
        let directories = try FileManager.default.contentsOfDirectory(atPath: software.path).filter {
            $0.contains("slot-")
        }
        #expect(directories == (slots.previous.map { ["slot-\($0.id)"] } ?? []), "\(directories)")
        let payloads = try FileManager.default.contentsOfDirectory(
            atPath: box.dataDir.appendingPathComponent("packages").path
        )
        #expect(payloads == ["site-\(crash.site).payload"])

        // And it goes on: a rollback where there is a previous slot, otherwise the refusal.
        if let previous = crash.previous {
            let answer = try await admin.rollback()
            #expect(answer.software.siteVersion == previous)
        } else {
            #expect(await refusal { _ = try await admin.rollback() } == "no_previous_slot")
        }
        #expect(try await box.connection().health().healthy)
    }

    @Test func aSelfTestInterruptedByARestartCountsAsFailed() async throws {
        let vendor = try TestVendor()
        let box = try await TestBox(arguments: ["--vendor-key", vendor.keyFile.path])
        defer { box.terminate() }
        let admin = try await box.admin()
        // Long enough to be caught running; the orphaned sleep ends on its own afterwards.
        let slow = try vendor.package(
            "site",
            .site,
            "24.2.0",
            selfTest: .init(command: "sleep 20", timeoutSeconds: 600)
        )
        let install = Task { try await admin.installPackage(fromFile: slow.path, acceptEula: true) }
        try await TestSupport.poll("the self-test to run", every: .milliseconds(200)) {
            guard let session = try? await box.admin() else { return false }
            return (try? await session.softwareSlots().current.selfTest) == "running"
        }
        await box.kill()
        _ = await install.result

        try await box.start(requireHealthy: false)
        let probe = try await box.connection().health()
        #expect(!probe.healthy)
        #expect(probe.health.status == "self_test_failed")
        #expect(probe.health.reason?.contains("stopped while the self-test ran") == true, "\(probe.health)")
        #expect(probe.health.reason?.contains("site 24.2.0") == true, "\(probe.health)")

        let answer = try await box.admin().rollback()
        #expect(answer.software.siteVersion == "24.1.0")
        #expect(try await box.connection().health().healthy)
    }
}
