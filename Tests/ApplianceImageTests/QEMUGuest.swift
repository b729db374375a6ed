import ApplianceImage
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A QEMU process booting an image with direct kernel boot under TCG (KVM does not work on the CI machines),
/// its serial console in a file and its monitor on standard input.
final class QEMUGuest {
    static let executable = "qemu-system-x86_64"
    static var isAvailable: Bool { ExternalTool.find(executable) != nil }

    let process = Process()
    let serialLog: URL
    let startTime = Date()
    private let monitor = Pipe()

    /// Starts QEMU.
    ///
    /// - Parameters:
    ///   - disk: A qcow2 overlay to attach as the virtio disk, or nil for none.
    ///   - forward: Host port on 127.0.0.1 and guest port for QEMU user networking, or nil for no network.
    init(kernel: URL, initrd: URL, commandLine: String, disk: URL?, forward: (host: Int, guest: Int)?, directory: URL)
        throws
    {
        serialLog = directory.appendingPathComponent("serial-\(UUID().uuidString.prefix(8)).log")
        var arguments = [
            "-machine", "q35,accel=tcg", "-m", "256", "-nographic", "-no-reboot",
            "-kernel", kernel.path, "-initrd", initrd.path, "-append", commandLine,
            "-serial", "file:\(serialLog.path)", "-monitor", "stdio",
        ]
        if let disk {
            arguments += ["-drive", "file=\(disk.path),if=virtio,format=qcow2"]
        }
        if let forward {
            arguments += [
                "-netdev", "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:\(forward.host)-:\(forward.guest)",
                "-device", "virtio-net-pci,netdev=n0",
            ]
        }
        guard let path = ExternalTool.find(Self.executable) else {
            throw ToolError(description: "\(Self.executable) is not installed (apt-get install qemu-system-x86)")
        }
        let output = directory.appendingPathComponent("qemu-\(UUID().uuidString.prefix(8)).out")
        try Data().write(to: output)
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.standardInput = monitor
        process.standardOutput = try FileHandle(forWritingTo: output)
        process.standardError = process.standardOutput
        try process.run()
    }

    deinit {
        stop()
    }

    var elapsed: Double {
        Date().timeIntervalSince(startTime)
    }

    var serialText: String {
        String(decoding: (try? Data(contentsOf: serialLog)) ?? Data(), as: UTF8.self)
    }

    /// Presses the ACPI power button (what `virsh shutdown` does).
    func pressPowerButton() {
        try? monitor.fileHandleForWriting.write(contentsOf: Data("system_powerdown\n".utf8))
    }

    /// Waits until QEMU exits by itself; false on timeout.
    func waitForExit(timeout: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning, Date() < deadline {
            Thread.sleep(forTimeInterval: 0.05)
        }
        return !process.isRunning
    }

    /// Resident memory of the QEMU process in MiB, from /proc.
    var residentMiB: Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kib = Int(line.split(separator: " ").dropFirst().first ?? "")
        else {
            return nil
        }
        return kib / 1024
    }

    /// Kills QEMU if it still runs.
    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    /// Polls `url` with curl (`-k`: the appliance's certificate is self-signed) until it answers and `accept`
    /// takes the body, QEMU exits, or `timeout` passes.
    func poll(_ url: String, timeout: Double, accept: (Data) -> Bool) throws -> Data {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            guard process.isRunning else {
                throw ToolError(description: "QEMU exited while waiting for \(url); console:\n\(serialText)")
            }
            let result = try ExternalTool.run("curl", ["-sk", "--max-time", "2", url], timeout: 10)
            if result.status == 0, accept(result.stdout) {
                return result.stdout
            }
            Thread.sleep(forTimeInterval: 0.25)
        }
        throw ToolError(description: "no answer from \(url) within \(Int(timeout)) s; console:\n\(serialText)")
    }
}
