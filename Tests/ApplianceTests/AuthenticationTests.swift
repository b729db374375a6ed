import ApplianceAPI
import ApplianceClient
import Foundation
import Testing

/// A1 status and health, A2 first login, policy, backoff, lockout and session expiry — through the real TLS API.
@Suite struct AuthenticationTests {
    @Test func healthAnswersWithoutLoginAndStatusNeedsIt() async throws {
        let box = try await TestBox()
        defer { box.terminate() }
        let (healthy, health, pin) = try await box.connection().health()
        #expect(healthy)
        #expect(health.status == "ok")
        #expect(UUID(uuidString: health.applianceId) != nil)
        #expect(pin == box.pin)
        let code = await refusal { let _: StatusResponse = try await box.connection().call(.status) }
        #expect(code == "unauthorized")

        let admin = try await box.admin()
        let status: StatusResponse = try await admin.call(.status)
        #expect(status.applianceId == health.applianceId)
        #expect(status.software.siteVersion == "24.1.0")
        #expect(status.failoverRole == "standalone")
        #expect(abs(status.clock.utc.timeIntervalSinceNow) < 60)
        #expect(status.uptimeSeconds >= 0)
        #expect(!status.clock.ntpServers.isEmpty)
    }

    @Test func factoryPasswordMustBeChangedBeforeAnythingElse() async throws {
        let box = try await TestBox()
        defer { box.terminate() }
        let connection = box.connection()
        let login = try await connection.login(username: "admin", password: "password")
        #expect(login.passwordChangeRequired)
        let session = connection.authenticated(login.token)
        for endpoint in [Endpoint.status, .network, .settings, .listUsers, .siteSummary] {
            do {
                let _: Empty = try await session.call(endpoint)
                Issue.record("\(endpoint) answered before the password change")
            } catch let error as ApplianceClientError {
                #expect(error.apiStatus == 403)
                #expect(error.apiCode == "password_change_required")
                #expect(error.message.contains("password change required"))
            }
        }
        // The policy refuses weak passwords, naming what is missing.
        let weak = await refusal {
            try await session.perform(
                .changePassword,
                body: ChangePasswordRequest(currentPassword: "password", newPassword: "short")
            )
        }
        #expect(weak == "password_policy")
        let noDigit = await refusal {
            try await session.perform(
                .changePassword,
                body: ChangePasswordRequest(currentPassword: "password", newPassword: "NoDigitsHereAtAll")
            )
        }
        #expect(noDigit == "password_policy")
        let wrongCurrent = await refusal {
            try await session.perform(
                .changePassword,
                body: ChangePasswordRequest(currentPassword: "nope", newPassword: TestBox.adminPassword)
            )
        }
        #expect(wrongCurrent == "forbidden")
        try await session.perform(
            .changePassword,
            body: ChangePasswordRequest(currentPassword: "password", newPassword: TestBox.adminPassword)
        )
        let status: StatusResponse = try await session.call(.status)
        #expect(!status.hostname.isEmpty)
        // The factory password is gone for good.
        let again = await refusal { _ = try await connection.login(username: "admin", password: "password") }
        #expect(again == "unauthorized")
    }

    static func setPolicy(_ box: TestBox, _ change: (inout SecurityPolicy) -> Void) async throws {
        let admin = try await box.admin()
        var policy: SecurityPolicy = try await admin.call(.security)
        change(&policy)
        let _: SecurityPolicy = try await admin.call(.updateSecurity, body: policy)
    }

    @Test func failedLoginsBackOff() async throws {
        let box = try await TestBox()
        defer { box.terminate() }
        try await Self.setPolicy(box) { $0.backoffBaseSeconds = 5 }
        // A connection that reports the 429 instead of waiting it out, to see the answer itself.
        let connection = ApplianceConnection(host: box.address, port: TestBox.port, pin: box.pin, throttleRetry: .never)
        #expect(
            await refusal { _ = try await connection.login(username: "admin", password: "wrong-1") } == "unauthorized"
        )
        // Inside the backoff window even the right password waits, and the answer says how long.
        do {
            _ = try await connection.login(username: "admin", password: TestBox.adminPassword)
            Issue.record("a login inside the backoff window was accepted")
        } catch let error as ApplianceClientError {
            #expect(error.apiStatus == 429)
            #expect(error.apiCode == "login_backoff")
            #expect(error.message.contains("wait"))
        }
        // Other users are not affected.
        #expect(await refusal { _ = try await connection.login(username: "nobody", password: "x") } == "unauthorized")
    }

    @Test func repeatedFailuresLockTheAccount() async throws {
        let box = try await TestBox()
        defer { box.terminate() }
        try await Self.setPolicy(box) {
            $0.maxFailedLogins = 3
            $0.lockoutSeconds = 3
            $0.backoffBaseSeconds = 0
        }
        let connection = box.connection()
        #expect(
            await refusal { _ = try await connection.login(username: "admin", password: "wrong-1") } == "unauthorized"
        )
        #expect(
            await refusal { _ = try await connection.login(username: "admin", password: "wrong-2") } == "unauthorized"
        )
        #expect(
            await refusal { _ = try await connection.login(username: "admin", password: "wrong-3") } == "account_locked"
        )
        // Locked: even the right password is refused until the lockout ends.
        do {
            _ = try await connection.login(username: "admin", password: TestBox.adminPassword)
            Issue.record("a locked account logged in")
        } catch let error as ApplianceClientError {
            #expect(error.apiStatus == 423)
            #expect(error.apiCode == "account_locked")
        }
        // The lockout ends (3 s): the right password logs in again.
        var login: LoginResponse?
        try await TestSupport.poll("the lockout to end", timeout: .seconds(20), every: .milliseconds(250)) {
            login = try? await connection.login(username: "admin", password: TestBox.adminPassword)
            return login != nil
        }
        #expect(login?.passwordChangeRequired == false)
    }

    @Test func sessionsExpireAndLogoutEndsThem() async throws {
        let box = try await TestBox()
        defer { box.terminate() }
        let admin = try await box.admin()
        var policy: SecurityPolicy = try await admin.call(.security)
        policy.sessionLifetimeSeconds = 5
        let _: SecurityPolicy = try await admin.call(.updateSecurity, body: policy)
        // A refused policy changes nothing.
        var bad = policy
        bad.minimumPasswordLength = 2
        #expect(
            await refusal { let _: SecurityPolicy = try await admin.call(.updateSecurity, body: bad) }
                == "invalid_input"
        )

        let connection = box.connection()
        let short = try await connection.login(username: "admin", password: TestBox.adminPassword)
        #expect(short.expiresAt.timeIntervalSinceNow <= 5.5)
        let session = connection.authenticated(short.token)
        let _: StatusResponse = try await session.call(.status)
        // The session expires after its 5 s lifetime.
        try await TestSupport.poll("the session to expire", timeout: .seconds(20), every: .milliseconds(250)) {
            await refusal { let _: StatusResponse = try await session.call(.status) } == "unauthorized"
        }

        let other = connection.authenticated(
            try await connection.login(username: "admin", password: TestBox.adminPassword).token
        )
        try await other.perform(.logout, body: Empty?.none)
        #expect(await refusal { let _: StatusResponse = try await other.call(.status) } == "unauthorized")
    }
}
