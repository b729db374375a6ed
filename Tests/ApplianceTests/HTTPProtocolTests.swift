import ApplianceAPI
import ApplianceClient
import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// HTTP behaviour every client relies on, whatever the endpoint: 405 for methods a path does not take, and
/// connections that end when HTTP/1.0 says they should.
@Suite struct HTTPProtocolTests {
    @Test func undeclaredMethodOnAKnownPathAnswers405WithAllow() async throws {
        let box = try await TestBox()
        defer { box.terminate() }
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

    @Test func http10WithoutKeepAliveIsAnsweredAndClosed() async throws {
        let box = try await TestBox()
        defer { box.terminate() }
        let plain = try await RawTLSExchange.run(
            host: box.address,
            port: TestBox.port,
            request: "GET /health HTTP/1.0\r\nHost: \(box.address)\r\n\r\n"
        )
        #expect(plain.output.contains("\"status\""), "no answer: \(plain.output)")
        #expect(plain.closedByServer, "the server kept an HTTP/1.0 connection open after answering")
        #expect(plain.output.lowercased().contains("connection: close"))

        // HTTP/1.1 stays persistent: two requests on one connection, then the client's close ends it.
        let persistent = try await RawTLSExchange.run(
            host: box.address,
            port: TestBox.port,
            request: "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
                + "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        #expect(persistent.output.components(separatedBy: "HTTP/1.1 200").count == 3, "\(persistent.output)")
        #expect(persistent.closedByServer)

        // HTTP/1.0 asking for keep-alive keeps the connection open.
        let keepAlive = try await RawTLSExchange.run(
            host: box.address,
            port: TestBox.port,
            request: "GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            timeout: .seconds(3)
        )
        #expect(keepAlive.output.contains("\"status\""))
        #expect(!keepAlive.closedByServer)
    }
}

/// Sends raw bytes over TLS with `openssl s_client` and reports whether the server closed the connection.
///
/// The client's standard input stays open, so only the server can end the connection before the deadline.
enum RawTLSExchange {
    struct Outcome {
        var output: String
        var closedByServer: Bool
    }

    /// `whenAnswered` runs once the output holds the first response's status line, with the connection still open.
    static func run(
        host: String,
        port: Int,
        request: String,
        timeout: Duration = .seconds(20),
        whenAnswered: (@Sendable () async throws -> Void)? = nil
    ) async throws -> Outcome {
        let outputFile = TestSupport.temporaryDirectory("raw-tls").appendingPathComponent("out")
        _ = FileManager.default.createFile(atPath: outputFile.path, contents: nil)
        let output = try FileHandle(forWritingTo: outputFile)
        defer { try? output.close() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["openssl", "s_client", "-quiet", "-connect", "\(host):\(port)", "-servername", host]
        let input = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        let exited = Mutex(false)
        process.terminationHandler = { _ in exited.withLock { $0 = true } }
        try process.run()
        input.fileHandleForWriting.write(Data(request.utf8))
        var deadline = ContinuousClock.now + timeout
        var pending = whenAnswered
        while !exited.withLock({ $0 }) && ContinuousClock.now < deadline {
            if let action = pending,
                let text = try? String(contentsOf: outputFile, encoding: .utf8), text.contains("HTTP/1.1 ")
            {
                pending = nil
                try await action()
                deadline = ContinuousClock.now + timeout
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        let closed = exited.withLock { $0 }
        if !closed {
            // SIGKILL: the child inherits the test runner's blocked signal mask, so SIGTERM would wait forever.
            kill(process.processIdentifier, SIGKILL)
            while process.isRunning { try await Task.sleep(for: .milliseconds(20)) }
        }
        try? input.fileHandleForWriting.close()
        let text = (try? String(contentsOf: outputFile, encoding: .utf8)) ?? ""
        return Outcome(output: text, closedByServer: closed)
    }
}
