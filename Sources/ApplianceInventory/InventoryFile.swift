import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// File operations on inventory files: reading, locking against concurrent recorders, atomic replacement.
enum InventoryFile {
    /// The name to show in messages: the path as the caller wrote it.
    static func displayName(of url: URL) -> String {
        url.relativePath
    }

    /// Reads a UTF-8 text file. `document` names the file's role in messages; `ifMissing` says what to do when
    /// it does not exist.
    static func readText(
        of url: URL,
        document: String = "inventory",
        ifMissing: String = "create it (see Playbooks/inventory.example.yml) or pass the right file with --inventory"
    ) throws -> String {
        let name = displayName(of: url)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw InventoryError(code: .io, message: "the \(document) \(name) does not exist; \(ifMissing)")
        }
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw InventoryError(
                code: .io,
                message: "cannot read the \(document) \(name) (\(error.localizedDescription)); check its permissions",
                cause: error
            )
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw InventoryError(
                code: .syntax,
                message: "the \(document) \(name) is not UTF-8 text; save it as UTF-8",
                location: .init(file: name)
            )
        }
        return text
    }

    /// Runs `body` holding an exclusive lock on the directory of `file`, so two processes recording into the
    /// same inventory take turns instead of losing one another's edits. Blocks while another recorder runs.
    static func withDirectoryLock<T>(of file: URL, _ body: () throws -> T) throws -> T {
        let directory = file.deletingLastPathComponent().path
        let descriptor = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw ioError("cannot open the directory \(directory)", errno: errno, advice: "check its permissions")
        }
        defer { close(descriptor) }
        while flock(descriptor, LOCK_EX) != 0 {
            guard errno == EINTR else {
                throw ioError("cannot lock the directory \(directory)", errno: errno, advice: "check its permissions")
            }
        }
        defer { flock(descriptor, LOCK_UN) }
        return try body()
    }

    /// Replaces `url` with `data` so that a crash leaves either the old or the new file: writes a temporary
    /// file in the same directory with the old file's mode, fsyncs it, reads it back for `verify`, renames it
    /// over the old one and fsyncs the directory. When `verify` throws, the old file is left untouched.
    static func replaceAtomically(_ url: URL, with data: Data, verify: (Data) throws -> Void) throws {
        let path = url.path
        var status = stat()
        guard stat(path, &status) == 0 else {
            throw ioError("cannot read the mode of \(path)", errno: errno, advice: "check its permissions")
        }
        let directory = url.deletingLastPathComponent().path
        var template = Array("\(directory)/.\(url.lastPathComponent).XXXXXX".utf8CString)
        let descriptor = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard descriptor >= 0 else {
            throw ioError(
                "cannot create a temporary file in \(directory)",
                errno: errno,
                advice: "check that the directory is writable"
            )
        }
        let temporary = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        var renamed = false
        var isOpen = true
        defer {
            if isOpen { close(descriptor) }
            if !renamed { unlink(temporary) }
        }

        try data.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    throw ioError("cannot write \(temporary)", errno: errno, advice: "check free disk space")
                }
                offset += written
            }
        }
        // Keep the owner when we may (root editing a user's file); the mode always.
        _ = fchown(descriptor, status.st_uid, status.st_gid)
        guard fchmod(descriptor, status.st_mode & 0o7777) == 0, fsync(descriptor) == 0 else {
            throw ioError("cannot write \(temporary)", errno: errno, advice: "check free disk space")
        }
        close(descriptor)
        isOpen = false

        try verify(try Data(contentsOf: URL(fileURLWithPath: temporary)))

        guard rename(temporary, path) == 0 else {
            throw ioError("cannot replace \(path)", errno: errno, advice: "check that the directory is writable")
        }
        renamed = true
        let directoryDescriptor = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryDescriptor >= 0 {
            fsync(directoryDescriptor)
            close(directoryDescriptor)
        }
    }

    static func ioError(_ what: String, errno code: Int32, advice: String) -> InventoryError {
        InventoryError(code: .io, message: "\(what): \(String(cString: strerror(code))); \(advice)")
    }
}
