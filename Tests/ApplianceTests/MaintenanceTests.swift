import ApplianceAPI
import ApplianceClient
import Foundation
import Testing

/// A8 maintenance mode and reboot, and the A2 rule that a factory-fresh session reaches nothing but the password
/// change — through the real TLS API of `applianced` processes.
@Suite struct MaintenanceTests {
    static func row(_ marker: String) -> HistoryRow {
        HistoryRow(
            sessionId: marker,
            username: "writer",
            target: "srv-1",
            proto: "ssh",
            startedAt: Date(),
            endedAt: Date(),
            bytesTransferred: 1,
            summary: marker
        )
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    @Test func maintenanceLogsUsersOutAndRefusesSiteWritesButNotTheManagementAPI() async throws {
        let box = try await TestBox()
        defer { box.terminate() }
        let admin = try await box.admin()
        let user: UserInfo = try await admin.call(
            .createUser,
            body: UserInput(
                username: "operator",
                displayName: "Op",
                email: "op@example.test",
                password: "Console-Pass-71"
            )
        )
        #expect(user.username == "operator")
        let other = try await box.admin()  // another administrator session: it must end
        try await other.perform(.appendHistory, body: AppendHistoryRequest(rows: [Self.row("before")]))

        let reason = "the site is moving to a new appliance; try again after the cutover"
        let on: MaintenanceStatus = try await admin.call(
            .setMaintenance,
            body: MaintenanceRequest(enabled: true, reason: reason, retryAfterSeconds: 42)
        )
        #expect(on.enabled && on.reason == reason && on.since != nil)

        // Users are logged out: the other session is gone.
        let ended = await maintenanceRefusal { let _: SiteSummary = try await other.call(.siteSummary) }
        #expect(ended?.apiStatus == 401)
        // Site writes answer 503 with the reason and a Retry-After; nothing is written.
        let raw = try await admin.client.send(
            method: "POST",
            path: Endpoint.appendHistory.path,
            headers: admin.authHeaders + [("Content-Type", "application/json")],
            body: Array(try APICoding.encoder().encode(AppendHistoryRequest(rows: [Self.row("during")])))
        )
        #expect(raw.status == 503)
        #expect(raw.header("Retry-After") == "42")
        #expect(String(decoding: raw.body, as: UTF8.self).contains("moving to a new appliance"))
        for write in [Endpoint.putFile, .putRecording] {
            let refused = await maintenanceRefusal {
                try await admin.send(write, parameters: ["name": "x.bin"], body: Optional<Empty>.none)
            }
            #expect(refused?.apiStatus == 503, "\(write)")
        }
        let settings = await maintenanceRefusal { try await admin.perform(.updateSettings, body: ["motd": "hi"]) }
        #expect(settings?.apiStatus == 503)
        // A site user cannot log in; an administrator still reaches the management API.
        let login = await maintenanceRefusal {
            _ = try await box.connection().login(username: "operator", password: "Console-Pass-71")
        }
        #expect(login?.apiStatus == 503)
        #expect(login?.message.contains("moving to a new appliance") == true)
        let again = try await box.admin()
        let summary: SiteSummary = try await again.call(.siteSummary)
        #expect(summary.historyRows == 1)
        let page: HistoryPage = try await again.call(.listHistory)
        #expect(page.rows.map(\.summary) == ["before"])
        // Status and health show it; it survives a restart.
        let status: StatusResponse = try await again.call(.status)
        #expect(status.maintenance?.enabled == true)
        let (healthy, health, _) = try await box.connection().health()
        #expect(healthy && health.status == "maintenance" && health.maintenance?.reason == reason)
        await box.stop()
        try await box.start()
        let (_, restarted, _) = try await box.connection().health()
        #expect(restarted.maintenance?.enabled == true)

        // Off: the site takes logins and writes again.
        let afterRestart = try await box.admin()
        let off: MaintenanceStatus = try await afterRestart.call(
            .setMaintenance,
            body: MaintenanceRequest(enabled: false)
        )
        #expect(!off.enabled)
        try await afterRestart.perform(.appendHistory, body: AppendHistoryRequest(rows: [Self.row("after")]))
        _ = try await box.connection().login(username: "operator", password: "Console-Pass-71")
        let final: SiteSummary = try await afterRestart.call(.siteSummary)
        #expect(final.historyRows == 2)
    }

    @Test func badMaintenanceInputIsRefusedWithNothingChanged() async throws {
        let box = try await TestBox()
        defer { box.terminate() }
        let admin = try await box.admin()
        let long = await maintenanceRefusal {
            try await admin.perform(
                .setMaintenance,
                body: MaintenanceRequest(enabled: true, reason: String(repeating: "x", count: 201))
            )
        }
        #expect(long?.apiStatus == 400)
        let retry = await maintenanceRefusal {
            try await admin.perform(.setMaintenance, body: MaintenanceRequest(enabled: true, retryAfterSeconds: 0))
        }
        #expect(retry?.apiStatus == 400)
        let status: MaintenanceStatus = try await admin.call(.maintenance)
        #expect(!status.enabled)
    }

    /// One check over every endpoint: a factory session reaches the password change and logout only — shutdown
    /// and reboot included, so nobody who reaches an unconfigured box can stop it.
    @Test func aFactorySessionIsRefusedEverywhereButThePasswordChange() async throws {
        let box = try await TestBox()
        defer { box.terminate() }
        let connection = box.connection()
        let session = connection.authenticated(
            try await connection.login(username: "admin", password: "password").token
        )
        for endpoint in Endpoint.all where endpoint.access == .session {
            let result = try await session.client.send(
                method: endpoint.method,
                path: endpoint.path(["id": "1", "name": "probe.bin"]),
                headers: session.authHeaders + [("Content-Type", "application/json")],
                body: Array("{}".utf8)
            )
            #expect(result.status == 403, "\(endpoint) answered \(result.status) to a factory session")
            #expect(String(decoding: result.body, as: UTF8.self).contains("password_change_required"), "\(endpoint)")
        }
        let open = Endpoint.all.filter { $0.access == .open || $0.access == .beforePasswordChange }
        #expect(Set(open) == [.health, .login, .logout, .changePassword])
        // Peer endpoints take no session at all: without the inter-appliance key's proof they answer nothing.
        for endpoint in Endpoint.all where endpoint.access == .peer {
            let result = try await session.client.send(
                method: endpoint.method,
                path: endpoint.path(["name": "probe.bin"]),
                headers: session.authHeaders,
                body: nil
            )
            #expect(result.status == 409 || result.status == 401, "\(endpoint) answered \(result.status)")
        }
        #expect(box.process.isRunning)
        let (healthy, _, _) = try await box.connection().health()
        #expect(healthy)
    }

    /// A process appliance restarts itself: same process id, same data, a fresh uptime.
    @Test func rebootRestartsTheProcessAndKeepsTheData() async throws {
        let box = try await TestBox()
        defer { box.terminate() }
        let admin = try await box.admin()
        try await admin.perform(.appendHistory, body: AppendHistoryRequest(rows: [Self.row("kept")]))
        let before: StatusResponse = try await admin.call(.status)
        let pid = box.process.processIdentifier
        try await admin.perform(.reboot)
        // The old process had been up longer than the time since this answer; only a restarted one has not.
        let requested = ContinuousClock.now
        let deadline = requested + .seconds(60)
        var after: StatusResponse?
        while ContinuousClock.now < deadline {
            if let session = try? await box.admin(), let status: StatusResponse = try? await session.call(.status),
                status.uptimeSeconds < Self.seconds(ContinuousClock.now - requested)
            {
                after = status
                break
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        let status = try #require(after, "the box did not come back after the reboot: \(box.tail())")
        #expect(status.applianceId == before.applianceId)
        #expect(box.process.isRunning && box.process.processIdentifier == pid)
        let summary: SiteSummary = try await box.admin().call(.siteSummary)
        #expect(summary.historyRows == 1)
    }
}

/// The appliance's refusal, if the call was refused.
private func maintenanceRefusal(_ body: () async throws -> Void) async -> ApplianceClientError? {
    do {
        try await body()
        return nil
    } catch let error as ApplianceClientError {
        return error
    } catch {
        return ApplianceClientError(code: .protocolError, message: "\(error)")
    }
}
