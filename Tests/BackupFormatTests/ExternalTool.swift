import Foundation

/// Output of a finished external command.
struct ToolResult {
    var status: Int32
    var stdout: [UInt8]
    var stderr: String

    var stdoutText: String {
        String(decoding: stdout, as: UTF8.self)
    }
}

struct ToolError: Error, CustomStringConvertible {
    var description: String
}

/// Runs command-line tools (openssl, sh) for cross-checking against independent implementations.
enum ExternalTool {
    /// Full path of `name` on PATH, or nil.
    static func find(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let directories = path.split(separator: ":").map(String.init) + ["/usr/local/bin", "/usr/bin", "/bin"]
        for directory in directories {
            let candidate = directory + "/" + name
            if FileManager.default.isExecutableFile(atPath: candidate) {
                return candidate
            }
        }
        return nil
    }

    /// Runs `executable` with `arguments`, feeding `input` on stdin (empty by default, never the test's own stdin,
    /// which CI does not have). Output goes through files so a chatty tool cannot fill a pipe and stall.
    static func run(_ executable: String, _ arguments: [String], input: [UInt8] = [], timeout: Double = 120)
        throws -> ToolResult
    {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("tool-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let inputURL = directory.appendingPathComponent("stdin")
        let stdoutURL = directory.appendingPathComponent("stdout")
        let stderrURL = directory.appendingPathComponent("stderr")
        try Data(input).write(to: inputURL)
        try Data().write(to: stdoutURL)
        try Data().write(to: stderrURL)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardInput = try FileHandle(forReadingFrom: inputURL)
        process.standardOutput = try FileHandle(forWritingTo: stdoutURL)
        process.standardError = try FileHandle(forWritingTo: stderrURL)
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning, Date() < deadline {
            Thread.sleep(forTimeInterval: 0.02)
        }
        if process.isRunning {
            process.terminate()
            Thread.sleep(forTimeInterval: 1)
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
            }
            process.waitUntilExit()
            throw ToolError(description: "\(executable) \(arguments) did not finish within \(Int(timeout)) s")
        }
        process.waitUntilExit()
        return ToolResult(
            status: process.terminationStatus,
            stdout: [UInt8](try Data(contentsOf: stdoutURL)),
            stderr: String(decoding: try Data(contentsOf: stderrURL), as: UTF8.self)
        )
    }

    /// Runs a shell pipeline with `sh -c`.
    static func shell(_ command: String, input: [UInt8] = []) throws -> ToolResult {
        try run("/bin/sh", ["-c", command], input: input)
    }

    /// Quotes `text` for a POSIX shell.
    static func quote(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("appliance-test-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}
