import ApplianceAPI
import ApplianceClient
import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A real `applianced` process on its own loopback address, as a physical box is on a developer machine.
final class TestBox: @unchecked Sendable {
    // @unchecked: the Process is only touched by the test that owns the box, one call at a time.
    static let port = 9443
    static let adminPassword = "Correct-Horse-42"

    let address: String
    let dataDir: URL
    let logFile: URL
    let extraArguments: [String]
    /// Extra environment of the next start (e.g. a debug crash point).
    var environment: [String: String] = [:]
    private(set) var process: Process
    private(set) var pin: TLSPin?
    /// Whether the next `admin()` must do the first login (a new data directory, or after a factory reset).
    var factoryFresh: Bool

    var endpoint: String { "\(address):\(Self.port)" }

    /// Starts a box; `dataDir` nil makes a new temporary one.
    init(address: String? = nil, dataDir: URL? = nil, arguments: [String] = []) async throws {
        self.address = address ?? TestSupport.nextAddress()
        let dir = dataDir ?? TestSupport.temporaryDirectory("box")
        self.dataDir = dir
        self.logFile = dir.deletingLastPathComponent().appendingPathComponent(dir.lastPathComponent + ".log")
        self.extraArguments = arguments
        self.factoryFresh = dataDir == nil
        self.process = Process()
        try await start()
    }

    /// (Re)starts the process on the same data directory and waits for its health probe.
    func start() async throws {
        let process = Process()
        process.executableURL = TestSupport.binary("applianced")
        process.arguments =
            [
                "--data-dir", dataDir.path, "--listen", "\(address):\(Self.port)", "--log-level", "notice",
            ] + extraArguments
        if !FileManager.default.fileExists(atPath: logFile.path) {
            _ = FileManager.default.createFile(atPath: logFile.path, contents: nil)
        }
        let log = try FileHandle(forWritingTo: logFile)
        try log.seekToEnd()
        process.standardError = log
        process.standardOutput = log
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        try process.run()
        self.process = process
        try await waitUntilHealthy()
    }

    func waitUntilHealthy(timeout: Duration = .seconds(30)) async throws {
        let deadline = ContinuousClock.now + timeout
        var lastError: (any Error)?
        while ContinuousClock.now < deadline {
            guard process.isRunning else {
                throw TestFailure("applianced exited with \(process.terminationStatus); log: \(tail())")
            }
            do {
                let (pin, _) = try await PinnedHTTPClient.fetchPeerCertificate(host: address, port: Self.port)
                self.pin = pin
                let (healthy, _, _) = try await connection().health()
                if healthy { return }
            } catch {
                lastError = error
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestFailure("applianced at \(endpoint) never became healthy: \(String(describing: lastError)); \(tail())")
    }

    /// A connection pinned to the key seen at the last start (host defaults to the box's factory address).
    func connection(host: String? = nil) -> ApplianceConnection {
        ApplianceConnection(host: host ?? address, port: Self.port, pin: pin, requestTimeout: .seconds(120))
    }

    /// Logs in as admin, doing the first login (factory password change) when needed.
    func admin() async throws -> ApplianceConnection {
        let connection = connection()
        if !factoryFresh {
            return connection.authenticated(
                try await connection.login(username: "admin", password: Self.adminPassword).token
            )
        }
        factoryFresh = false
        let factory = try await connection.login(username: "admin", password: "password")
        #expect(factory.passwordChangeRequired)
        let session = connection.authenticated(factory.token)
        try await session.perform(
            .changePassword,
            body: ChangePasswordRequest(currentPassword: "password", newPassword: Self.adminPassword)
        )
        return session
    }

    /// SIGTERM and wait.
    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }

    /// SIGKILL and wait: a crash.
    func kill() {
        guard process.isRunning else { return }
        Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    func tail() -> String {
        let text = (try? String(contentsOf: logFile, encoding: .utf8)) ?? ""
        return String(text.suffix(2000))
    }

    deinit {
        if process.isRunning {
            Glibc.kill(process.processIdentifier, SIGKILL)
        }
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

enum TestSupport {
    /// The directory of the test bundle, where SwiftPM also puts the built executables.
    static let binDirectory: URL = {
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var dir = exe.deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: dir.appendingPathComponent("applianced").path),
            dir.path != "/"
        {
            dir = dir.deletingLastPathComponent()
        }
        return dir
    }()

    static func binary(_ name: String) -> URL {
        binDirectory.appendingPathComponent(name)
    }

    private static let counter = Atomic<Int>(0)

    /// A loopback address no other test of this run uses: 127.<pid-derived>.<n>.<m>.
    static func nextAddress() -> String {
        let n = counter.add(1, ordering: .relaxed).newValue
        let second = 100 + Int(getpid()) % 100
        return "127.\(second).\(n / 250).\(n % 250 + 2)"
    }

    static func temporaryDirectory(_ prefix: String) -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("appliance-tests-\(getpid())")
            .appendingPathComponent("\(prefix)-\(UUID().uuidString.prefix(8))")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// Runs a command line tool and returns its exit status and output.
    @discardableResult
    static func run(
        _ executable: String,
        _ arguments: [String],
        environment: [String: String] = [:],
        input: String? = nil
    ) throws -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        process.executableURL =
            executable.hasPrefix("/") ? URL(fileURLWithPath: executable) : URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = executable.hasPrefix("/") ? arguments : [executable] + arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let out = Pipe()
        let err = Pipe()
        let inputPipe = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = inputPipe
        try process.run()
        if let input { inputPipe.fileHandleForWriting.write(Data(input.utf8)) }
        try inputPipe.fileHandleForWriting.close()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (
            process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self)
        )
    }
}

/// The server error code of an API refusal, nil for any other error.
func serverCode(_ error: any Error) -> String? {
    (error as? ApplianceClientError)?.apiCode
}

/// Runs `body` and returns the server error code it was refused with.
func refusal(_ body: () async throws -> Void) async -> String? {
    do {
        try await body()
        return nil
    } catch {
        return serverCode(error) ?? "\(error)"
    }
}
