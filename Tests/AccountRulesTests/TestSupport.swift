import Foundation
import ProcessSpawn

struct ToolFailure: Error, CustomStringConvertible {
    var description: String
}

/// Runs the independent tools the tests check against (python3, ImageMagick).
enum Tool {
    /// The first of `candidates` that exists and whose `-version` (or `--version`) output contains `marker`.
    static func find(_ candidates: [String], marker: String) -> String? {
        for candidate in candidates where FileManager.default.isExecutableFile(atPath: candidate) {
            if let output = try? run(candidate, ["-version"]), output.contains(marker) {
                return candidate
            }
        }
        return nil
    }

    /// Runs a tool to completion (at most a minute) with stdin from /dev/null; returns its output (stdout and
    /// stderr together), throws on a non-zero exit. ProcessSpawn, not Foundation's Process, so a tool that leaves a
    /// child behind cannot hang the test.
    @discardableResult
    static func run(_ executable: String, _ arguments: [String]) throws -> String {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("tool-\(UUID().uuidString).out")
        defer { try? FileManager.default.removeItem(at: output) }
        let environment = ProcessInfo.processInfo.environment.map { "\($0.key)=\($0.value)" }
        let outcome = try Spawn.run(
            executable,
            arguments: arguments,
            environment: environment,
            output: output.path,
            timeout: .seconds(60)
        )
        let text = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
        guard outcome == .exited(0) else {
            throw ToolFailure(description: "\(executable) \(arguments.first ?? "") ended with \(outcome): \(text)")
        }
        return text
    }

    /// Runs a Python program given as text.
    @discardableResult
    static func python(_ program: String, _ arguments: [String] = []) throws -> String {
        try run("/usr/bin/env", ["python3", "-c", program] + arguments)
    }

    /// True when the python3 on PATH has pyotp, the independent TOTP implementation.
    static let hasPyotp = (try? python("import pyotp")) != nil

    /// A fresh temporary directory for one test.
    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("account-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}
