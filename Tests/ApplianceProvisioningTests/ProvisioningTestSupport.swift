import Foundation

enum ProvisioningTestSupport {
    static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let templates = repository.appendingPathComponent("Templates")

    /// A new directory under /tmp that the unprivileged libvirt daemon (uid 65534) can traverse.
    static func scratch(_ label: String) -> URL {
        let url = URL(fileURLWithPath: "/tmp/appliancectl-tests-\(getpid())/\(label)-\(UUID().uuidString.prefix(8))")
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
