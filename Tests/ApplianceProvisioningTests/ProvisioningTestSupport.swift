import Foundation

enum ProvisioningTestSupport {
    static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let templates = repository.appendingPathComponent("Templates")

    /// A new directory under /tmp that the unprivileged libvirt daemon (uid 65534) can traverse, with a short path:
    /// QEMU's monitor sockets go below the daemon's home, and a UNIX socket path has at most 108 bytes.
    static func scratch(_ label: String) -> URL {
        let url = URL(fileURLWithPath: "/tmp/act\(getpid())/\(label)\(UUID().uuidString.prefix(4))")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        chmod(url.deletingLastPathComponent().path, 0o755)
        chmod(url.path, 0o755)
        return url
    }

    /// Runs a tool, returns its output, throws on a non-zero exit.
    @discardableResult
    static func run(_ tool: String, _ arguments: [String], environment: [String: String]? = nil) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        if let environment {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw ToolFailure(
                description:
                    "\(tool) \(arguments.joined(separator: " ")) exited \(process.terminationStatus): \(output)"
            )
        }
        return output
    }

    struct ToolFailure: Error, CustomStringConvertible {
        var description: String
    }
}

extension ProvisioningTestSupport {
    /// The directory SwiftPM puts the built executables in (where the test bundle is).
    static let binDirectory: URL = {
        var directory = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: directory.appendingPathComponent("appliancectl").path),
            directory.path != "/"
        {
            directory = directory.deletingLastPathComponent()
        }
        return directory
    }()

    static func binary(_ name: String) -> URL { binDirectory.appendingPathComponent(name) }

    /// Runs a tool and returns its status and both outputs (output goes to files, not pipes, so a daemon the tool
    /// starts cannot hold them open).
    static func capture(
        _ tool: String,
        _ arguments: [String],
        environment: [String: String]
    ) throws -> (status: Int32, stdout: String, stderr: String) {
        let directory = FileManager.default.temporaryDirectory
        let out = directory.appendingPathComponent("capture-\(UUID().uuidString).out")
        let err = directory.appendingPathComponent("capture-\(UUID().uuidString).err")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        defer {
            try? FileManager.default.removeItem(at: out)
            try? FileManager.default.removeItem(at: err)
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = try FileHandle(forWritingTo: out)
        process.standardError = try FileHandle(forWritingTo: err)
        process.standardInput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        return (
            process.terminationStatus, (try? String(contentsOf: out, encoding: .utf8)) ?? "",
            (try? String(contentsOf: err, encoding: .utf8)) ?? ""
        )
    }

    /// `capture` on a thread of its own, so a long run (a provision, an upgrade) does not hold a thread of the
    /// cooperative pool.
    static func captureDetached(
        _ tool: String,
        _ arguments: [String],
        environment: [String: String]
    ) async throws -> (status: Int32, stdout: String, stderr: String) {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(with: Result { try capture(tool, arguments, environment: environment) })
            }
        }
    }
}
