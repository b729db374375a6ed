import Foundation

/// A program on the build host that the recipe runs, and the Debian package that provides it.
struct HostTool: Sendable, Hashable {
    var name: String
    var package: String

    static let aptCache = HostTool(name: "apt-cache", package: "apt")
    static let aptGet = HostTool(name: "apt-get", package: "apt")
    static let dpkg = HostTool(name: "dpkg", package: "dpkg")
    static let dpkgDeb = HostTool(name: "dpkg-deb", package: "dpkg")
    static let mke2fs = HostTool(name: "mke2fs", package: "e2fsprogs")
    static let debugfs = HostTool(name: "debugfs", package: "e2fsprogs")
    static let resize2fs = HostTool(name: "resize2fs", package: "e2fsprogs")
    static let qemuImg = HostTool(name: "qemu-img", package: "qemu-utils")
    static let gzip = HostTool(name: "gzip", package: "gzip")
    static let ldd = HostTool(name: "ldd", package: "libc-bin")
    static let sha256sum = HostTool(name: "sha256sum", package: "coreutils")
    static let openssl = HostTool(name: "openssl", package: "openssl")

    /// Every tool a build needs (openssl is optional: it only makes hashing faster).
    static let required: [HostTool] = [
        .aptCache, .aptGet, .dpkg, .dpkgDeb, .mke2fs, .debugfs, .resize2fs, .qemuImg, .gzip, .ldd, .sha256sum,
    ]

    /// Full path of the tool, searching PATH and then the sbin directories a non-root PATH often lacks.
    func find() -> String? {
        if name.contains("/") {
            return FileManager.default.isExecutableFile(atPath: name) ? name : nil
        }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let directories =
            path.split(separator: ":").map(String.init) + ["/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"]
        for directory in directories where !directory.isEmpty {
            let candidate = directory + "/" + name
            if FileManager.default.isExecutableFile(atPath: candidate) {
                return candidate
            }
        }
        return nil
    }

    /// Full path of the tool, or an error that says which package to install.
    func require() throws -> String {
        guard let path = find() else {
            throw ImageError(
                code: .missingTool,
                message: "\(name) is not installed; install the Debian package \(package) (apt-get install \(package))"
            )
        }
        return path
    }
}

/// What a finished command printed.
struct CommandOutput {
    var status: Int32
    var stdout: Data
    var stderr: String

    var text: String {
        String(decoding: stdout, as: UTF8.self)
    }
}

/// Runs host tools with Foundation `Process`.
///
/// Output goes through files, not pipes, so a chatty tool cannot fill a pipe and stall; standard input is empty
/// unless given, never the caller's terminal.
enum Command {
    /// Runs `tool` and returns its output whatever the exit status.
    static func output(
        _ tool: HostTool,
        _ arguments: [String],
        in directory: URL? = nil,
        environment: [String: String] = [:],
        input: Data = Data(),
        standardOutput: URL? = nil
    ) throws -> CommandOutput {
        let executable = try tool.require()
        let scratch = FileManager.default.temporaryDirectory
            .appendingPathComponent("appliance-image-\(UUID().uuidString)", isDirectory: true)
        do {
            try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        } catch {
            throw ImageError(code: .fileSystem, message: "cannot create \(scratch.path): \(error)")
        }
        defer { try? FileManager.default.removeItem(at: scratch) }
        let inputURL = scratch.appendingPathComponent("stdin")
        let stdoutURL = standardOutput ?? scratch.appendingPathComponent("stdout")
        let stderrURL = scratch.appendingPathComponent("stderr")

        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let directory {
            process.currentDirectoryURL = directory
        }
        var fullEnvironment = ProcessInfo.processInfo.environment
        fullEnvironment["LC_ALL"] = "C"
        for (name, value) in environment {
            fullEnvironment[name] = value
        }
        process.environment = fullEnvironment
        do {
            try input.write(to: inputURL)
            try Data().write(to: stdoutURL)
            try Data().write(to: stderrURL)
            let stdinHandle = try FileHandle(forReadingFrom: inputURL)
            let stdoutHandle = try FileHandle(forWritingTo: stdoutURL)
            let stderrHandle = try FileHandle(forWritingTo: stderrURL)
            defer {
                try? stdinHandle.close()
                try? stdoutHandle.close()
                try? stderrHandle.close()
            }
            process.standardInput = stdinHandle
            process.standardOutput = stdoutHandle
            process.standardError = stderrHandle
            try process.run()
            process.waitUntilExit()
        } catch {
            throw ImageError(code: .toolFailed, message: "cannot run \(executable): \(error)")
        }
        let stdout = standardOutput == nil ? (try? Data(contentsOf: stdoutURL)) ?? Data() : Data()
        let stderr = String(decoding: (try? Data(contentsOf: stderrURL)) ?? Data(), as: UTF8.self)
        return CommandOutput(status: process.terminationStatus, stdout: stdout, stderr: stderr)
    }

    /// Runs `tool` and returns its standard output; a non-zero exit throws with the tool's standard error.
    @discardableResult
    static func run(
        _ tool: HostTool,
        _ arguments: [String],
        in directory: URL? = nil,
        environment: [String: String] = [:],
        input: Data = Data(),
        standardOutput: URL? = nil
    ) throws -> Data {
        let result = try output(
            tool,
            arguments,
            in: directory,
            environment: environment,
            input: input,
            standardOutput: standardOutput
        )
        guard result.status == 0 else {
            throw failure(tool, arguments, result)
        }
        return result.stdout
    }

    /// The error for a tool that exited non-zero: the command line and the end of its standard error.
    static func failure(_ tool: HostTool, _ arguments: [String], _ result: CommandOutput) -> ImageError {
        let shown = ([tool.name] + arguments.prefix(8)).joined(separator: " ") + (arguments.count > 8 ? " …" : "")
        let detail = String(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines).suffix(2000))
        return ImageError(
            code: .toolFailed,
            message: "\(shown) failed with exit status \(result.status)" + (detail.isEmpty ? "" : ": \(detail)")
        )
    }
}
