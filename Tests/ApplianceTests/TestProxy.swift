import ApplianceClient
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A TCP proxy (socat) on a loopback address of its own in front of a box: a failover link established through it
/// is cut by stopping the proxy and comes back when it starts again. TLS passes through untouched, so the pins
/// and the key's proofs are the box's own.
final class TestProxy: @unchecked Sendable {
    // @unchecked: the process is only touched by the test that owns the proxy, one call at a time.
    let address: String
    let target: String
    private var process: Process?
    private var exit = ProcessExit()

    var endpoint: String { "\(address):\(TestBox.port)" }

    init(to box: TestBox) async throws {
        address = TestSupport.nextAddress()
        target = box.endpoint
        try await start()
    }

    /// Starts forwarding and waits until a TLS handshake through the proxy reaches the box.
    func start() async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/socat")
        process.arguments = ["TCP-LISTEN:\(TestBox.port),bind=\(address),reuseaddr,fork", "TCP:\(target)"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        let exit = ProcessExit(watching: process)
        try process.run()
        self.process = process
        self.exit = exit
        try await TestSupport.poll("the proxy at \(endpoint) to forward to \(target)") {
            (try? await PinnedHTTPClient.fetchPeerCertificate(host: address, port: TestBox.port)) != nil
        }
    }

    /// Stops the proxy and the connections it forwards (socat's forked children share its process group when it
    /// leads one), then waits until nothing answers there any more. SIGKILL: the child inherits the test runner's
    /// blocked signal mask, so SIGTERM would wait forever.
    func stop() async throws {
        guard let process, process.isRunning else { return }
        let pid = process.processIdentifier
        Glibc.kill(getpgid(pid) == pid ? -pid : pid, SIGKILL)
        _ = await exit.status(within: .seconds(30))
        try await TestSupport.poll("the proxy at \(endpoint) to stop forwarding") {
            (try? await PinnedHTTPClient.fetchPeerCertificate(
                host: address,
                port: TestBox.port,
                connectTimeout: .seconds(2)
            )) == nil
        }
    }

    deinit {
        if let process, process.isRunning {
            let pid = process.processIdentifier
            Glibc.kill(getpgid(pid) == pid ? -pid : pid, SIGKILL)
        }
    }
}
