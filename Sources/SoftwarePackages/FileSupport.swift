import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The text of a POSIX error number, e.g. "No space left on device".
func describeErrno(_ code: CInt) -> String {
    guard let text = strerror(code) else {
        return "errno \(code)"
    }
    return String(cString: text)
}

private func posixRead(_ descriptor: CInt, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
    read(descriptor, buffer, count)
}

private func posixWrite(_ descriptor: CInt, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    write(descriptor, buffer, count)
}

func storageError(_ action: String, _ path: String, errno code: CInt, advice: String) -> SoftwarePackageError {
    SoftwarePackageError(code: .storage, message: "could not \(action) \(path): \(describeErrno(code)); \(advice)")
}

/// Creates `directory` with its parents; throws `.storage` naming it (as `what`) when that fails.
func createDirectory(_ directory: URL, what: String) throws {
    do {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    } catch {
        throw SoftwarePackageError(
            code: .storage,
            message: "could not create \(what) \(directory.path) (\(error)); check the path and its permissions"
        )
    }
}

/// A regular file opened for reading in pieces. Not Sendable: use it from one task and let it go.
final class InputFile {
    let path: String
    /// The size when the file was opened.
    let size: Int64
    private let descriptor: CInt

    init(_ url: URL) throws {
        path = url.path
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw storageError("open", path, errno: errno, advice: "check the path and its permissions")
        }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else {
            let code = errno
            close(descriptor)
            throw storageError("inspect", path, errno: code, advice: "check the path and its permissions")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            close(descriptor)
            throw SoftwarePackageError(
                code: .storage,
                message: "\(path) is not a regular file; give the path of a file"
            )
        }
        self.descriptor = descriptor
        size = Int64(info.st_size)
    }

    deinit {
        close(descriptor)
    }

    /// Reads the rest of the file in pieces of up to `PackageBuilder.chunkSize` bytes, handing each to `body`;
    /// returns how many bytes were read.
    @discardableResult
    func forEachChunk(_ body: (UnsafeRawBufferPointer) throws -> Void) throws -> Int64 {
        var size: Int64 = 0
        var buffer = [UInt8](repeating: 0, count: PackageBuilder.chunkSize)
        try buffer.withUnsafeMutableBytes { buffer in
            while true {
                let count = try read(into: buffer)
                if count == 0 { return }
                try body(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
                size += Int64(count)
            }
        }
        return size
    }

    /// Reads up to `buffer.count` bytes; 0 means end of file.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard let base = buffer.baseAddress, !buffer.isEmpty else {
            return 0
        }
        while true {
            let count = posixRead(descriptor, base, buffer.count)
            if count >= 0 {
                return count
            }
            if errno != EINTR {
                throw storageError("read", path, errno: errno, advice: "check the file and the disk, then try again")
            }
        }
    }

    func seek(to offset: Int64) throws {
        guard lseek(descriptor, off_t(offset), SEEK_SET) == off_t(offset) else {
            throw storageError("seek in", path, errno: errno, advice: "check the file, then try again")
        }
    }
}

/// Writes a new file under a scratch name in the destination's directory; `commit()` flushes it to disk and
/// renames it over the destination, so readers see the old file or the complete new one, never a part.
/// Dropping the writer without committing deletes the scratch file.
final class AtomicFileWriter {
    let destination: URL
    let scratch: URL
    private var descriptor: CInt
    private var committed = false

    init(destination: URL, mode: mode_t = 0o644) throws {
        self.destination = destination
        let directory = destination.deletingLastPathComponent()
        scratch = directory.appendingPathComponent(".\(destination.lastPathComponent).\(UUID().uuidString).tmp")
        descriptor = open(scratch.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard descriptor >= 0 else {
            throw storageError(
                "create",
                scratch.path,
                errno: errno,
                advice: "check that \(directory.path) exists and is writable"
            )
        }
    }

    deinit {
        if !committed {
            discard()
        }
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard let base = bytes.baseAddress else {
            return
        }
        var offset = 0
        while offset < bytes.count {
            let written = posixWrite(descriptor, base + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR {
                    continue
                }
                throw storageError(
                    "write to",
                    scratch.path,
                    errno: errno,
                    advice: "check free disk space and permissions, then try again"
                )
            }
            offset += written
        }
    }

    func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    /// Flushes and closes the scratch file (so it can be read back and checked) without moving it yet.
    func finishWriting() throws {
        guard descriptor >= 0 else {
            return
        }
        defer { descriptor = -1 }
        if fsync(descriptor) != 0 {
            let code = errno
            close(descriptor)
            throw storageError("flush", scratch.path, errno: code, advice: "check the disk, then try again")
        }
        if close(descriptor) != 0 {
            throw storageError("close", scratch.path, errno: errno, advice: "check the disk, then try again")
        }
    }

    /// Moves the finished file over the destination and makes the rename durable.
    func commit() throws {
        try commit(renamingTo: destination)
    }

    /// Moves the finished file to `destination` (in the same directory as the scratch file) instead.
    func commit(renamingTo destination: URL) throws {
        try finishWriting()
        guard rename(scratch.path, destination.path) == 0 else {
            throw storageError(
                "move \(scratch.lastPathComponent) to",
                destination.path,
                errno: errno,
                advice: "check that the destination is writable and not a directory"
            )
        }
        committed = true
        let directory = open(destination.deletingLastPathComponent().path, O_RDONLY | O_CLOEXEC)
        if directory >= 0 {
            // Failing to sync the directory is not worth failing the write for.
            _ = fsync(directory)
            close(directory)
        }
    }

    /// Closes and deletes the scratch file.
    func discard() {
        if descriptor >= 0 {
            close(descriptor)
            descriptor = -1
        }
        unlink(scratch.path)
    }

    /// Replaces `destination` with `bytes` atomically.
    static func write(_ bytes: [UInt8], to destination: URL) throws {
        let writer = try AtomicFileWriter(destination: destination)
        try writer.write(bytes)
        try writer.commit()
    }
}

/// Holds an exclusive advisory lock (`flock`) on `url` for the duration of `body`, so read-modify-write cycles by
/// concurrent processes do not lose each other's changes. The lock file is created if needed and left in place.
func withExclusiveLock<Result>(_ url: URL, _ body: () throws -> Result) throws -> Result {
    let descriptor = open(url.path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
    guard descriptor >= 0 else {
        throw storageError(
            "create the lock file",
            url.path,
            errno: errno,
            advice: "check that the directory exists and is writable"
        )
    }
    defer { close(descriptor) }
    while flock(descriptor, LOCK_EX) != 0 {
        if errno != EINTR {
            throw storageError("lock", url.path, errno: errno, advice: "check the file system, then try again")
        }
    }
    defer { flock(descriptor, LOCK_UN) }
    return try body()
}

/// Reads a whole small file (an index or ledger), refusing files over `limit` bytes. Returns nil if it does not
/// exist.
func readSmallFile(_ url: URL, limit: Int, what: String) throws -> [UInt8]? {
    guard FileManager.default.fileExists(atPath: url.path) else {
        return nil
    }
    let input = try InputFile(url)
    guard input.size <= Int64(limit) else {
        throw SoftwarePackageError(
            code: .invalidArgument,
            message: "\(url.path) is \(input.size) bytes, more than a \(what) can be (\(limit)); check that it is the "
                + "right file"
        )
    }
    var bytes = [UInt8](repeating: 0, count: Int(input.size) + 1)
    var filled = 0
    while filled < bytes.count {
        let count = try bytes.withUnsafeMutableBytes { buffer in
            try input.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[filled...]))
        }
        if count == 0 {
            break
        }
        filled += count
    }
    guard filled <= limit else {
        throw SoftwarePackageError(
            code: .invalidArgument,
            message: "\(url.path) grew past \(limit) bytes while being read; check that it is the right file"
        )
    }
    return Array(bytes[..<filled])
}

/// base64url without padding (RFC 4648 section 5), decoded strictly: one spelling per byte string.
enum Base64URL {
    static func encode(_ bytes: [UInt8]) -> String {
        var text = Data(bytes).base64EncodedString()
        while text.last == "=" {
            text.removeLast()
        }
        return String(
            text.map { character -> Character in
                switch character {
                case "+": "-"
                case "/": "_"
                default: character
                }
            }
        )
    }

    static func decode(_ text: Substring) -> [UInt8]? {
        guard text.count % 4 != 1,
            text.utf8.allSatisfy({ byte in
                switch byte {
                case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"):
                    true
                default:
                    false
                }
            })
        else {
            return nil
        }
        var standard = String(
            text.map { character -> Character in
                switch character {
                case "-": "+"
                case "_": "/"
                default: character
                }
            }
        )
        while standard.utf8.count % 4 != 0 {
            standard.append("=")
        }
        guard let data = Data(base64Encoded: standard) else {
            return nil
        }
        let bytes = [UInt8](data)
        guard encode(bytes) == text else {
            return nil
        }
        return bytes
    }
}

/// Timestamps in signed documents: ISO 8601 in UTC to the whole second ("2026-05-01T12:00:00Z"), so decoding and
/// re-encoding always gives the same text. Fractional seconds are accepted when reading.
enum Timestamp {
    private static let wholeSeconds = Date.ISO8601FormatStyle()
    private static let fractionalSeconds = Date.ISO8601FormatStyle(includingFractionalSeconds: true)

    static func format(_ date: Date) -> String {
        truncated(date).formatted(wholeSeconds)
    }

    static func parse(_ text: String) -> Date? {
        (try? wholeSeconds.parse(text)) ?? (try? fractionalSeconds.parse(text))
    }

    /// `date` rounded down to a whole second, as it will read back after encoding.
    static func truncated(_ date: Date) -> Date {
        Date(timeIntervalSince1970: date.timeIntervalSince1970.rounded(.down))
    }
}

/// Human-readable durations for operator messages: "45 s", "12 min", "3 h 5 min", "9 days 2 h".
func describeDuration(_ seconds: TimeInterval) -> String {
    let total = Int(min(abs(seconds), 1e15).rounded())
    let days = total / 86_400
    let hours = total % 86_400 / 3_600
    let minutes = total % 3_600 / 60
    if days > 0 {
        let dayText = days == 1 ? "1 day" : "\(days) days"
        return hours > 0 ? "\(dayText) \(hours) h" : dayText
    }
    if hours > 0 {
        return "\(hours) h \(minutes) min"
    }
    if minutes > 0 {
        return "\(minutes) min"
    }
    return "\(total) s"
}

/// Pretty-printed JSON with sorted keys, so equal values encode to identical bytes.
func canonicalJSONEncoder() -> JSONEncoder {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    return encoder
}

/// True for lowercase hexadecimal text of exactly `length` characters.
func isLowercaseHex(_ text: String, length: Int) -> Bool {
    text.utf8.count == length
        && text.utf8.allSatisfy { byte in
            (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
        }
}
