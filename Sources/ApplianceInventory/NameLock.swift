public import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// An advisory lock on an appliance name, so two `appliancectl` runs cannot work on one appliance at once.
///
/// The lock is `flock(LOCK_EX | LOCK_NB)` on `<directory>/<name>.lock`, which holds the holder's pid and command
/// line for the other run's error message. It is released by `release()`, when the lock is deinitialised, and by
/// the kernel when the process dies, so a crashed run never leaves a stale lock. The file itself stays (empty):
/// removing it would let two runs lock two different files of the same name.
public final class NameLock: Sendable {
    public let name: String
    /// The lock file.
    public let file: URL
    /// The open lock file, or -1 once released.
    private let descriptor: Mutex<Int32>

    private init(name: String, file: URL, descriptor: Int32) {
        self.name = name
        self.file = file
        self.descriptor = Mutex(descriptor)
    }

    deinit {
        release()
    }

    /// Takes the lock on `name`, or fails at once when another run holds it.
    ///
    /// - Parameters:
    ///   - name: The appliance name (`[a-z0-9][a-z0-9-]{0,62}`).
    ///   - directory: Where lock files live; created (mode 0700) if missing.
    ///   - command: What to show the other run; the program name and arguments by default.
    /// - Throws: `InventoryError` with code `.locked` ("NAME is being provisioned by pid 1234 (appliancectl
    ///   provision …); wait for it or kill it"), `.invalidArgument` for a bad name, `.io` when the file cannot be
    ///   opened.
    public static func acquire(name: String, directory: URL, command: String? = nil) throws -> NameLock {
        guard InventoryRules.isValidName(name) else {
            throw InventoryError(code: .invalidArgument, message: "cannot lock '\(name)': \(InventoryRules.nameRule)")
        }
        do {
            try FileManager.default.createDirectory(
                at: directory,
                withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o700]
            )
        } catch {
            throw InventoryError(
                code: .io,
                message: "cannot create the lock directory \(directory.path); check its permissions",
                cause: error
            )
        }
        let file = directory.appendingPathComponent("\(name).lock")
        let descriptor = open(file.path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw InventoryFile.ioError(
                "cannot open the lock file \(file.path)",
                errno: errno,
                advice: "check its permissions"
            )
        }
        var result: Int32
        repeat { result = flock(descriptor, LOCK_EX | LOCK_NB) } while result != 0 && errno == EINTR
        guard result == 0 else {
            let code = errno
            let holder = code == EWOULDBLOCK ? Self.holder(of: descriptor) : nil
            close(descriptor)
            guard code == EWOULDBLOCK else {
                throw InventoryFile.ioError("cannot lock \(file.path)", errno: code, advice: "check the file system")
            }
            let who = holder.map { "pid \($0.pid) (\($0.command))" } ?? "another process"
            throw InventoryError(
                code: .locked,
                message: "\(name) is being provisioned by \(who); wait for it or kill it"
            )
        }
        let line = "\(getpid()) \(Self.oneLine(command ?? Self.defaultCommand()))\n"
        ftruncate(descriptor, 0)
        _ = line.utf8CString.withUnsafeBufferPointer { pwrite(descriptor, $0.baseAddress, $0.count - 1, 0) }
        return NameLock(name: name, file: file, descriptor: descriptor)
    }

    /// Gives the lock up; later calls do nothing.
    public func release() {
        descriptor.withLock { descriptor in
            guard descriptor >= 0 else { return }
            ftruncate(descriptor, 0)
            flock(descriptor, LOCK_UN)
            close(descriptor)
            descriptor = -1
        }
    }

    /// True until `release()`.
    public var isHeld: Bool {
        descriptor.withLock { $0 >= 0 }
    }

    /// The pid and command the holder wrote, if it has written them yet.
    private static func holder(of descriptor: Int32) -> (pid: Int32, command: String)? {
        var buffer = [UInt8](repeating: 0, count: 512)
        let count = buffer.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return nil }
        let text = String(decoding: buffer[..<count], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let parts = text.split(separator: " ", maxSplits: 1)
        guard let first = parts.first, let pid = Int32(first) else { return nil }
        return (pid, parts.count > 1 ? String(parts[1]) : "unknown command")
    }

    /// The program name and arguments.
    private static func defaultCommand() -> String {
        var arguments = CommandLine.arguments
        if let program = arguments.first { arguments[0] = URL(fileURLWithPath: program).lastPathComponent }
        return arguments.joined(separator: " ")
    }

    /// `text` on one line and at most 200 characters, as the lock file holds it.
    private static func oneLine(_ text: String) -> String {
        String(text.map { $0.isNewline ? " " : $0 }.prefix(200))
    }
}
