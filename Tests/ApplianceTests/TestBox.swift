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
    private var exit = ProcessExit()
    private(set) var pin: TLSPin?
    /// Whether the next `admin()` must do the first login (a new data directory, or after a factory reset).
    var factoryFresh: Bool

    var endpoint: String { "\(address):\(Self.port)" }

    /// Starts a box; `dataDir` nil makes a new temporary one; `environment` as `self.environment`.
    init(
        address: String? = nil,
        dataDir: URL? = nil,
        arguments: [String] = [],
        environment: [String: String] = [:]
    ) async throws {
        self.environment = environment
        self.address = address ?? TestSupport.nextAddress()
        let dir = dataDir ?? TestSupport.temporaryDirectory("box")
        self.dataDir = dir
        self.logFile = dir.deletingLastPathComponent().appendingPathComponent(dir.lastPathComponent + ".log")
        self.extraArguments = arguments
        self.factoryFresh = dataDir == nil
        self.process = Process()
        try await start()
    }

    /// (Re)starts the process on the same data directory and waits for its health probe to answer 200 (with
    /// `requireHealthy` false: to answer at all).
    func start(requireHealthy: Bool = true) async throws {
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
        let exit = ProcessExit(watching: process)
        try process.run()
        self.process = process
        self.exit = exit
        try await waitUntilHealthy(acceptUnhealthy: !requireHealthy)
    }

    func waitUntilHealthy(timeout: Duration = .seconds(30), acceptUnhealthy: Bool = false) async throws {
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
                if healthy || acceptUnhealthy { return }
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

    /// Polls until the box presents a key other than `old` on `host` (after a factory reset or a certificate
    /// assignment), then until it is healthy; records the new pin.
    func waitUntilKeyChanges(from old: TLSPin?, host: String? = nil, timeout: Duration = .seconds(30)) async throws {
        try await TestSupport.poll("\(host ?? address) to present a new key", timeout: timeout) {
            let observed = try? await PinnedHTTPClient.fetchPeerCertificate(host: host ?? address, port: Self.port)
            return observed.map { $0.pin != old } ?? false
        }
        try await waitUntilHealthy()
    }

    /// Polls until `host` presents the key with `pin` (an assigned certificate is served from the next handshake).
    func waitUntilServing(_ pin: String, on host: String? = nil, timeout: Duration = .seconds(30)) async throws {
        try await TestSupport.poll("\(host ?? address) to serve the key \(pin)", timeout: timeout) {
            let observed = try? await PinnedHTTPClient.fetchPeerCertificate(host: host ?? address, port: Self.port)
            return observed?.pin.description == pin
        }
    }

    /// The exit status once the process has exited, nil if it still runs after `timeout`.
    func waitForExit(timeout: Duration = .seconds(30)) async -> Int32? {
        await exit.status(within: timeout)
    }

    /// SIGTERM and wait for the exit.
    func stop() async {
        guard process.isRunning else { return }
        process.terminate()
        _ = await exit.status(within: .seconds(60))
    }

    /// SIGTERM without waiting, for `defer` at the end of a test where nothing depends on the exit.
    func terminate() {
        if process.isRunning { process.terminate() }
    }

    /// SIGKILL and wait for the exit: a crash.
    func kill() async {
        guard process.isRunning else { return }
        Glibc.kill(process.processIdentifier, SIGKILL)
        _ = await exit.status(within: .seconds(60))
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

    /// Polls `condition` until it holds; fails the test, naming `what`, when `timeout` passes first.
    static func poll(
        _ what: String,
        timeout: Duration = .seconds(30),
        every interval: Duration = .milliseconds(50),
        _ condition: () async throws -> Bool
    ) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return }
            try await Task.sleep(for: interval)
        }
        if try await condition() { return }
        throw TestFailure("gave up after \(timeout) waiting for \(what)")
    }

    /// Runs a command line tool and returns its exit status and output. The pipes are read on their own threads
    /// and the exit is awaited, so the cooperative pool is never blocked.
    @discardableResult
    static func run(
        _ executable: String,
        _ arguments: [String],
        environment: [String: String] = [:],
        input: String? = nil
    ) async throws -> (status: Int32, stdout: String, stderr: String) {
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
        let exit = ProcessExit(watching: process)
        try process.run()
        async let stdout = readToEnd(out.fileHandleForReading)
        async let stderr = readToEnd(err.fileHandleForReading)
        if let input { inputPipe.fileHandleForWriting.write(Data(input.utf8)) }
        try inputPipe.fileHandleForWriting.close()
        let status = await exit.status()
        return (status, String(decoding: await stdout, as: UTF8.self), String(decoding: await stderr, as: UTF8.self))
    }

    /// Reads a pipe to its end on a thread of its own.
    static func readToEnd(_ handle: FileHandle) async -> Data {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread { continuation.resume(returning: handle.readDataToEndOfFile()) }
        }
    }
}

/// The exit of one process, awaited without blocking a thread (`terminationHandler` resumes the waiters).
final class ProcessExit: Sendable {
    private let state = Mutex<(status: Int32?, waiters: [CheckedContinuation<Int32, Never>])>((nil, []))

    /// One that never fires, until a process is watched.
    init() {}

    /// Install before `process.run()`.
    init(watching process: Process) {
        process.terminationHandler = { [self] finished in
            let status = finished.terminationStatus
            let waiters = state.withLock { state in
                state.status = status
                defer { state.waiters = [] }
                return state.waiters
            }
            waiters.forEach { $0.resume(returning: status) }
        }
    }

    /// The exit status, once the process has exited.
    func status() async -> Int32 {
        await withCheckedContinuation { continuation in
            let known = state.withLock { state -> Int32? in
                if let status = state.status { return status }
                state.waiters.append(continuation)
                return nil
            }
            if let known { continuation.resume(returning: known) }
        }
    }

    /// The exit status, or nil when the process still runs after `timeout`.
    func status(within timeout: Duration) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let status = state.withLock({ $0.status }) { return status }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return state.withLock { $0.status }
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
