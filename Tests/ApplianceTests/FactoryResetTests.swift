import ApplianceAPI
import ApplianceClient
import ApplianceCrypto
import Foundation
import Testing

/// Site data through the API, A8 factory reset and shutdown.
@Suite struct SiteDataAndResetTests {
    @Test func siteDataIsStoredAndReadBack() async throws {
        let box = try await TestBox()
        defer { box.terminate() }
        let admin = try await box.admin()
        let _: [String: String] = try await admin.call(.updateSettings, body: ["smtp.host": "mail.example.test"])
        let user: UserInfo = try await admin.call(
            .createUser,
            body: UserInput(
                username: "jonas",
                displayName: "Jonas",
                email: "jonas@example.test",
                password: "Secret-Pass-123"
            )
        )
        #expect(user.username == "jonas")
        #expect(
            await refusal {
                let _: UserInfo = try await admin.call(
                    .createUser,
                    body: UserInput(username: "jonas", displayName: "J", email: "", password: "Secret-Pass-123")
                )
            } == "conflict"
        )
        #expect(
            await refusal {
                let _: UserInfo = try await admin.call(
                    .createUser,
                    body: UserInput(username: "weak", displayName: "W", email: "", password: "weak")
                )
            } == "password_policy"
        )
        // A non-administrator cannot reach the management areas.
        let jonas = try await box.connection().login(username: "jonas", password: "Secret-Pass-123")
        #expect(
            await refusal {
                let _: StatusResponse = try await box.connection().authenticated(jonas.token).call(.status)
            } == "forbidden"
        )

        // A 40 MiB file and a recording stream up and down with matching checksums.
        let dir = TestSupport.temporaryDirectory("files")
        let big = dir.appendingPathComponent("big.bin")
        let bytes = Data(SecureRandom.bytes(40 << 20))
        try bytes.write(to: big)
        let info = try await admin.upload(.putFile, name: "big.bin", fromFile: big.path)
        #expect(info.size == Int64(bytes.count))
        let recording = try await admin.upload(.putRecording, name: "session-1.rec", fromFile: big.path)
        #expect(recording.sha256 == info.sha256)
        let back = dir.appendingPathComponent("back.bin")
        try await admin.download(.getFile, name: "big.bin", to: back.path)
        #expect(try Data(contentsOf: back) == bytes)
        #expect(
            await refusal {
                try await admin.download(.getFile, name: "missing.bin", to: dir.appendingPathComponent("x").path)
            } == "not_found"
        )
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("x").path))
        #expect(
            await refusal { _ = try await admin.upload(.putFile, name: ".hidden", fromFile: big.path) }
                == "invalid_input"
        )

        let page: HistoryPage = try await admin.call(.listHistory)
        #expect(page.total == 0)
        let summary: SiteSummary = try await admin.call(.siteSummary)
        #expect(summary.fileCount == 1)
        #expect(summary.recordingCount == 1)
        #expect(summary.userCount == 2)
    }

    @Test func factoryResetReturnsTheBoxToFirstLoginState() async throws {
        let box = try await TestBox()
        defer { box.terminate() }
        let admin = try await box.admin()
        let status: StatusResponse = try await admin.call(.status)
        let _: SiteSummary = try await admin.call(
            .generateSiteData,
            body: GenerateSiteDataRequest(bytes: 4 << 20, seed: 3)
        )
        let extra = TestSupport.nextAddress()
        let _: AddressChangeResponse = try await admin.call(
            .addAddress,
            body: AddressInput(enabled: true, port: "eth1", address: extra, subnetMask: "255.0.0.0", access: .both)
        )
        let oldPin = try #require(box.pin)

        #expect(
            await refusal {
                try await admin.perform(.factoryReset, body: FactoryResetRequest(confirmHostname: "wrong"))
            } == "invalid_input"
        )
        try await admin.perform(.factoryReset, body: FactoryResetRequest(confirmHostname: status.hostname))

        // The listeners restart with a new factory certificate; the old pin no longer matches.
        try await TestSupport.poll("the factory-reset box to present a new key") {
            let observed = try? await PinnedHTTPClient.fetchPeerCertificate(host: box.address, port: TestBox.port)
            return observed.map { $0.pin != oldPin } ?? false
        }
        do {
            _ = try await box.connection().health()
            Issue.record("the old pin still matched after a factory reset")
        } catch let error as ApplianceClientError {
            #expect(error.code == .pinMismatch)
        }
        try await box.waitUntilHealthy()
        box.factoryFresh = true
        #expect(box.pin != oldPin)
        #expect(!(await NetworkTests.answers(box, on: extra, within: .milliseconds(300))))

        let login = try await box.connection().login(username: "admin", password: "password")
        #expect(login.passwordChangeRequired)
        let fresh = try await box.admin()
        let after: StatusResponse = try await fresh.call(.status)
        #expect(after.applianceId == status.applianceId, "the appliance id names the hardware and stays")
        let summary: SiteSummary = try await fresh.call(.siteSummary)
        #expect(summary.historyRows == 0)
        #expect(summary.fileCount == 0)
        #expect(summary.recordingCount == 0)
        #expect(summary.userCount == 1)
        #expect(summary.settingsCount == 0)
    }

    @Test func shutdownEndsTheProcess() async throws {
        let box = try await TestBox()
        let admin = try await box.admin()
        try await admin.perform(.shutdown, body: Empty?.none)
        #expect(await box.waitForExit() == 0, "shutdown ends applianced with status 0")
        #expect(!(await NetworkTests.answers(box, on: box.address, within: .milliseconds(300))))
    }
}
