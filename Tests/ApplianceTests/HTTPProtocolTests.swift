import ApplianceAPI
import ApplianceClient
import Foundation
import Testing

/// HTTP behaviour every client relies on, whatever the endpoint: 405 for methods a path does not take.
@Suite struct HTTPProtocolTests {
    @Test func undeclaredMethodOnAKnownPathAnswers405WithAllow() async throws {
        let box = try await TestBox()
        defer { box.stop() }
        let client = box.connection().client
        // Without logging in: which methods a path takes is public (docs/openapi.yaml).
        let patch = try await client.send(method: "PATCH", path: "/api/session", headers: [], body: nil)
        #expect(patch.status == 405)
        #expect(patch.header("Allow") == "DELETE, POST")
        let error = try APICoding.decoder().decode(ErrorResponse.self, from: Data(patch.body))
        #expect(error.error == "method_not_allowed")
        #expect(error.message.contains("DELETE, POST"))

        let admin = try await box.admin()
        let headers = [("Authorization", "Bearer \(try #require(admin.token))")]
        let cases: [(method: String, path: String, allow: String)] = [
            ("DELETE", "/health", "GET"),
            ("POST", "/appliance/api/status", "GET"),
            ("GET", "/appliance/api/network/addresses/7", "DELETE, PUT"),
            ("OPTIONS", "/login/api/files/report.txt", "GET, PUT"),
            ("TRACE", "/login/api/users", "GET, POST"),
        ]
        for (method, path, allow) in cases {
            let result = try await client.send(method: method, path: path, headers: headers, body: nil)
            #expect(result.status == 405, "\(method) \(path)")
            #expect(result.header("Allow") == allow, "\(method) \(path)")
        }
        // Declared methods still work, and unknown paths stay 404.
        let status = try await client.send(method: "GET", path: "/appliance/api/status", headers: headers, body: nil)
        #expect(status.status == 200)
        for path in ["/appliance/api/nothing-here", "/login/api/files", "/login/api/files/a/b"] {
            let result = try await client.send(method: "DELETE", path: path, headers: headers, body: nil)
            #expect(result.status == (path == "/login/api/files" ? 405 : 404), "DELETE \(path)")
        }
    }
}
