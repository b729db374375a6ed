import Foundation

/// A small deterministic generator (SplitMix64), so fuzz runs are the same on every machine.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var value = state
        value = (value ^ (value >> 30)) &* 0xbf58_476d_1ce4_e5b9
        value = (value ^ (value >> 27)) &* 0x94d0_49bb_1331_11eb
        return value ^ (value >> 31)
    }
}

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

    /// Runs a tool to completion with empty stdin; returns stdout, throws on a non-zero exit.
    @discardableResult
    static func run(_ executable: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let directory = FileManager.default.temporaryDirectory
        let outURL = directory.appendingPathComponent("tool-\(UUID().uuidString).out")
        let errURL = directory.appendingPathComponent("tool-\(UUID().uuidString).err")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        defer {
            try? FileManager.default.removeItem(at: outURL)
            try? FileManager.default.removeItem(at: errURL)
        }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = try FileHandle(forWritingTo: outURL)
        process.standardError = try FileHandle(forWritingTo: errURL)
        try process.run()
        process.waitUntilExit()
        let output = (try? String(contentsOf: outURL, encoding: .utf8)) ?? ""
        guard process.terminationStatus == 0 else {
            let error = (try? String(contentsOf: errURL, encoding: .utf8)) ?? ""
            throw ToolFailure(description: "\(executable) exited \(process.terminationStatus): \(error)")
        }
        return output
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
