import Foundation
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// A directory served over plain HTTP on 127.0.0.1, as a vendor's web server serves a package repository: Python's
/// `http.server` handler as a child process, on a port the kernel picks. Every request is logged to `log`.
final class StaticHTTPServer {
    let process: Process
    let port: Int
    let log: URL

    private init(process: Process, port: Int, log: URL) {
        self.process = process
        self.port = port
        self.log = log
    }

    /// Python, not a server in this process: the guest's requests reach it through QEMU's `guestfwd`, which runs
    /// `socat` per connection, so nothing here has to be in the test's event loops.
    static let script = """
        import functools, http.server, os, sys
        directory, port_file = sys.argv[1], sys.argv[2]
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=directory)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        with open(port_file + ".tmp", "w") as f:
            f.write(str(server.server_address[1]))
        os.rename(port_file + ".tmp", port_file)
        server.serve_forever()
        """

    /// Starts serving `directory` and returns once `probe` (a file in it) answers 200.
    static func start(serving directory: URL, probe: String, log: URL) async throws -> StaticHTTPServer {
        let portFile = log.deletingLastPathComponent().appendingPathComponent("http-\(UUID().uuidString).port")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-u", "-c", script, directory.path, portFile.path]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = try FileHandle(forWritingTo: log)
        process.standardError = try FileHandle(forWritingTo: log)
        try process.run()

        var port: Int?
        let deadline = ContinuousClock.now + .seconds(60)
        while port == nil, process.isRunning, ContinuousClock.now < deadline {
            port = (try? String(contentsOf: portFile, encoding: .utf8)).flatMap { Int($0) }
            if port == nil { try await Task.sleep(for: .milliseconds(100)) }
        }
        guard let port else {
            process.terminate()
            let output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            throw ProvisioningTestSupport.ToolFailure(description: "the HTTP server did not start: \(output)")
        }
        let server = StaticHTTPServer(process: process, port: port, log: log)
        let url = try #require(URL(string: "http://127.0.0.1:\(port)/\(probe)"))
        while true {
            let response = try? await URLSession.shared.data(from: url).1 as? HTTPURLResponse
            if response?.statusCode == 200 { return server }
            guard ContinuousClock.now < deadline else {
                await server.stop()
                throw ProvisioningTestSupport.ToolFailure(description: "\(url) did not answer 200 within a minute")
            }
            try await Task.sleep(for: .milliseconds(200))
        }
    }

    /// The request lines the server logged, e.g. `"GET /index.json HTTP/1.1" 200`.
    var requests: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    /// Stops the server (SIGTERM, then SIGKILL after 10 s) and waits for it to exit.
    func stop() async {
        guard process.isRunning else { return }
        process.terminate()
        let deadline = ContinuousClock.now + .seconds(10)
        while process.isRunning, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(50)) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    /// A test that ended without `stop()` (it threw) still leaves no server behind.
    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}
