import ApplianceImage
import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Output of a finished external command.
struct ToolResult {
    var status: Int32
    var stdout: Data
    var stderr: String

    var text: String {
        String(decoding: stdout, as: UTF8.self)
    }
}

struct ToolError: Error, CustomStringConvertible {
    var description: String
}

/// Runs command-line tools (qemu-img, cpio, curl, sh) to check the image with software other than ours.
enum ExternalTool {
    /// Full path of `name` on PATH (or in an sbin directory), or nil.
    static func find(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let directories =
            path.split(separator: ":").map(String.init) + ["/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"]
        for directory in directories {
            let candidate = directory + "/" + name
            if FileManager.default.isExecutableFile(atPath: candidate) {
                return candidate
            }
        }
        return nil
    }

    /// Runs `name` with `arguments`; output goes through files so a chatty tool cannot stall on a full pipe.
    static func run(_ name: String, _ arguments: [String], input: Data = Data(), timeout: Double = 120) throws
        -> ToolResult
    {
        guard let executable = find(name) else {
            throw ToolError(description: "\(name) is not installed")
        }
        let directory = try temporaryDirectory("tool")
        defer { try? FileManager.default.removeItem(at: directory) }
        let inputURL = directory.appendingPathComponent("stdin")
        let stdoutURL = directory.appendingPathComponent("stdout")
        let stderrURL = directory.appendingPathComponent("stderr")
        try input.write(to: inputURL)
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
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            throw ToolError(description: "\(name) \(arguments) did not finish within \(Int(timeout)) s")
        }
        process.waitUntilExit()
        return ToolResult(
            status: process.terminationStatus,
            stdout: try Data(contentsOf: stdoutURL),
            stderr: String(decoding: try Data(contentsOf: stderrURL), as: UTF8.self)
        )
    }

    static func temporaryDirectory(_ prefix: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("appliance-image-\(prefix)-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// Cache roots the tests build into; removed when the test process exits (an image is about 230 MB).
let testCacheRoots: [URL] = (0..<2).map { index in
    FileManager.default.temporaryDirectory
        .appendingPathComponent("appliance-image-test-\(getpid())-\(index)", isDirectory: true)
}

/// The applianced binary to put into test images: `$APPLIANCED_BINARY`, else the one SwiftPM built next to the
/// test bundle.
func appliancedBinary() throws -> URL {
    if let path = ProcessInfo.processInfo.environment["APPLIANCED_BINARY"], !path.isEmpty {
        return URL(fileURLWithPath: path)
    }
    let candidates = [Bundle.main.executableURL, URL(fileURLWithPath: CommandLine.arguments[0])]
        .compactMap { $0?.deletingLastPathComponent().appendingPathComponent("applianced") }
    for candidate in candidates where FileManager.default.isExecutableFile(atPath: candidate.path) {
        return candidate
    }
    throw ToolError(
        description: "no applianced binary next to the tests (\(candidates.map(\.path))); run swift build first "
            + "or set APPLIANCED_BINARY"
    )
}

/// One image build shared by every test in the process.
actor ImageFixture {
    static let shared = ImageFixture()

    struct Built {
        var image: BuiltImage
        var seconds: Double
        var progress: [String]
    }

    private var task: Task<Built, any Error>?

    /// The image built into the first test cache root (built on first use).
    func image() async throws -> Built {
        if let task {
            return try await task.value
        }
        let task = Task.detached { () throws -> Built in
            registerCleanup()
            let recipe = ImageRecipe(applianced: try appliancedBinary(), cacheRoot: testCacheRoots[0])
            return try timedBuild(recipe)
        }
        self.task = task
        return try await task.value
    }
}

/// Builds with `recipe`, collecting the progress lines and the time taken.
func timedBuild(_ recipe: ImageRecipe) throws -> ImageFixture.Built {
    let lines = ProgressLines()
    let start = Date()
    let image = try recipe.build { line in lines.append(line) }
    return ImageFixture.Built(image: image, seconds: Date().timeIntervalSince(start), progress: lines.all)
}

/// Progress lines collected from a build (the callback is `@Sendable`).
final class ProgressLines: Sendable {
    private let lines = Mutex<[String]>([])

    func append(_ line: String) {
        lines.withLock { $0.append(line) }
    }

    var all: [String] {
        lines.withLock { $0 }
    }
}

private func registerCleanup() {
    atexit {
        for root in testCacheRoots {
            try? FileManager.default.removeItem(at: root)
        }
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0 and released).
func freeLocalPort() throws -> Int {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else {
        throw ToolError(description: "socket() failed")
    }
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let bound = withUnsafePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    guard bound == 0 else {
        throw ToolError(description: "bind() failed")
    }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let named = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
    }
    guard named == 0 else {
        throw ToolError(description: "getsockname() failed")
    }
    return Int(UInt16(bigEndian: address.sin_port))
}
