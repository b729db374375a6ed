import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Runs blocking file system work on NIO's shared thread pool so it never stalls the cooperative pool or an
/// event loop.
///
/// Deliberately not cancellable (unlike `NIOThreadPool.runIfActive`): each piece of work is short, and clean-up
/// such as closing a descriptor or deleting a partial file must still run in a task that was just cancelled.
private func onFileThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        NIOThreadPool.singleton.submit { state in
            guard case .active = state else {
                continuation.resume(throwing: NIOThreadPoolError.ThreadPoolInactive())
                return
            }
            continuation.resume(with: Result(catching: body))
        }
    }
}

/// The text of a POSIX error number, e.g. "No space left on device".
func describeErrno(_ code: CInt) -> String {
    guard let text = strerror(code) else {
        return "errno \(code)"
    }
    return String(cString: text)
}

private func fileError(_ action: String, _ path: String, errno code: CInt, advice: String) -> ApplianceClientError {
    ApplianceClientError(
        code: .fileError,
        message: "could not \(action) \(path): \(describeErrno(code)); \(advice)"
    )
}

/// A download in progress: bytes go to `path + ".part"`, which is only renamed to `path` once it is complete and
/// flushed to disk, so a crash or error never leaves a partial file under the final name.
struct PartialFileWriter: Sendable {
    let finalPath: String
    let partPath: String
    private let descriptor: CInt

    private init(finalPath: String, partPath: String, descriptor: CInt) {
        self.finalPath = finalPath
        self.partPath = partPath
        self.descriptor = descriptor
    }

    /// The size of an interrupted download's `path + ".part"`, 0 when there is none.
    static func existingSize(path: String) async -> Int64 {
        let partPath = path + ".part"
        return
            (try? await onFileThread { () throws -> Int64 in
                var info = stat()
                guard stat(partPath, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return 0 }
                return Int64(info.st_size)
            }) ?? 0
    }

    /// Creates (or truncates) `path + ".part"`, readable and writable by the owner only; with `offset` keeps
    /// that many bytes of an existing one and appends after them.
    static func create(path: String, appendingAt offset: Int64? = nil) async throws -> PartialFileWriter {
        let partPath = path + ".part"
        let descriptor = try await onFileThread { () throws -> CInt in
            let flags = O_WRONLY | O_CREAT | O_CLOEXEC | (offset == nil ? O_TRUNC : 0)
            let fd = open(partPath, flags, 0o600)
            guard fd >= 0 else {
                throw fileError(
                    "create",
                    partPath,
                    errno: errno,
                    advice: "check that the directory exists and is writable"
                )
            }
            if let offset {
                guard ftruncate(fd, off_t(offset)) == 0, lseek(fd, off_t(offset), SEEK_SET) == off_t(offset) else {
                    let code = errno
                    close(fd)
                    throw fileError("resume", partPath, errno: code, advice: "check the disk, then try again")
                }
            }
            return fd
        }
        return PartialFileWriter(finalPath: path, partPath: partPath, descriptor: descriptor)
    }

    /// Writes all readable bytes of `buffer`.
    func append(_ buffer: ByteBuffer) async throws {
        let fd = self.descriptor
        let partPath = self.partPath
        try await onFileThread { () throws in
            try buffer.withUnsafeReadableBytes { bytes in
                var offset = 0
                while offset < bytes.count {
                    let written = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                    if written < 0 {
                        if errno == EINTR {
                            continue
                        }
                        throw fileError(
                            "write to",
                            partPath,
                            errno: errno,
                            advice: "check free disk space and permissions, then try again"
                        )
                    }
                    offset += written
                }
            }
        }
    }

    /// Flushes the file to disk, closes it and renames it to the final name.
    func commit() async throws {
        let fd = self.descriptor
        let partPath = self.partPath
        let finalPath = self.finalPath
        try await onFileThread { () throws in
            if fsync(fd) != 0 {
                let code = errno
                close(fd)
                unlink(partPath)
                throw fileError("flush", partPath, errno: code, advice: "check the disk, then try again")
            }
            if close(fd) != 0 {
                let code = errno
                unlink(partPath)
                throw fileError("close", partPath, errno: code, advice: "check the disk, then try again")
            }
            if rename(partPath, finalPath) != 0 {
                let code = errno
                unlink(partPath)
                throw fileError(
                    "rename \(partPath) to",
                    finalPath,
                    errno: code,
                    advice: "check that the destination is writable and not a directory"
                )
            }
            // Make the rename itself durable; failing here is not worth failing the download for.
            let directory = Self.parentDirectory(of: finalPath)
            let directoryFD = open(directory, O_RDONLY | O_CLOEXEC)
            if directoryFD >= 0 {
                _ = fsync(directoryFD)
                close(directoryFD)
            }
        }
    }

    /// Closes and deletes the partial file after a failure, or keeps it for a resumed download.
    func abandon(keepingPartial: Bool = false) async {
        let fd = self.descriptor
        let partPath = self.partPath
        _ = try? await onFileThread {
            close(fd)
            if !keepingPartial { unlink(partPath) }
        }
    }

    static func parentDirectory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else {
            return "."
        }
        let directory = path[..<slash]
        return directory.isEmpty ? "/" : String(directory)
    }
}

/// A file opened for reading in chunks, for uploads.
struct ChunkedFileReader: Sendable {
    let path: String
    /// The file's size when it was opened.
    let size: Int64
    private let descriptor: CInt

    private init(path: String, size: Int64, descriptor: CInt) {
        self.path = path
        self.size = size
        self.descriptor = descriptor
    }

    /// Opens a regular file for reading.
    static func openFile(path: String) async throws -> ChunkedFileReader {
        let (descriptor, size) = try await onFileThread { () throws -> (CInt, Int64) in
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else {
                throw fileError("open", path, errno: errno, advice: "check the path and its permissions")
            }
            var info = stat()
            guard fstat(fd, &info) == 0 else {
                let code = errno
                close(fd)
                throw fileError("inspect", path, errno: code, advice: "check the path and its permissions")
            }
            guard (info.st_mode & S_IFMT) == S_IFREG else {
                close(fd)
                throw ApplianceClientError(
                    code: .fileError,
                    message: "could not upload \(path): it is not a regular file; choose a regular file to upload"
                )
            }
            return (fd, Int64(info.st_size))
        }
        return ChunkedFileReader(path: path, size: size, descriptor: descriptor)
    }

    /// Reads up to `maximumBytes`; an empty buffer means end of file.
    func nextChunk(maximumBytes: Int) async throws -> ByteBuffer {
        let fd = self.descriptor
        let path = self.path
        return try await onFileThread { () throws -> ByteBuffer in
            var buffer = ByteBufferAllocator().buffer(capacity: maximumBytes)
            var readError: CInt = 0
            repeat {
                readError = 0
                buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: maximumBytes) { pointer in
                    let count = read(fd, pointer.baseAddress!, maximumBytes)
                    if count < 0 {
                        readError = errno
                        return 0
                    }
                    return count
                }
            } while readError == EINTR
            if readError != 0 {
                throw fileError("read", path, errno: readError, advice: "check the file, then try again")
            }
            return buffer
        }
    }

    /// Closes the file.
    func release() async {
        let fd = self.descriptor
        _ = try? await onFileThread {
            close(fd)
        }
    }
}
