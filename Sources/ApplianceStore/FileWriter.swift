import ApplianceCrypto
public import Foundation

/// Writes a stream of bytes to a scratch file while hashing it, then moves it into place durably.
///
/// Nothing appears under the final name until `commit` has fsynced the data, so a crash leaves either the old
/// file or the new one, never a part.
public final class FileWriter {
    public let scratch: URL
    private let handle: FileHandle
    private let hasher = SHA256Hasher()
    public private(set) var size: Int64 = 0

    public init(scratch: URL) throws {
        self.scratch = scratch
        guard FileManager.default.createFile(atPath: scratch.path, contents: nil) else {
            throw StoreError(.storage, "cannot create \(scratch.path); check free disk space and permissions")
        }
        handle = try FileHandle(forWritingTo: scratch)
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard !bytes.isEmpty else { return }
        hasher.update(bytes)
        try handle.write(contentsOf: bytes)
        size += Int64(bytes.count)
    }

    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    /// Flushes to disk and returns the size and SHA-256 (hex) of everything written.
    public func finish() throws -> (size: Int64, sha256: String) {
        try handle.synchronize()
        try handle.close()
        return (size, hasher.finalize().hexString)
    }

    /// Moves the finished file to `destination`, replacing what was there.
    public func commit(to destination: URL) throws {
        let fm = FileManager.default
        try fm.createDirectory(at: destination.deletingLastPathComponent(), withIntermediateDirectories: true)
        if rename(scratch.path, destination.path) != 0 {
            throw StoreError(.storage, "cannot move \(scratch.lastPathComponent) into place (errno \(errno))")
        }
    }

    /// Deletes the scratch file after a failure.
    public func discard() {
        try? handle.close()
        try? FileManager.default.removeItem(at: scratch)
    }
}

/// Names of stored files and recordings: letters, digits, '.', '_' and '-', not starting with '.'.
public enum StoredFileName {
    public static func validate(_ name: String) throws {
        let allowed = name.unicodeScalars.allSatisfy {
            ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0)))
                || "._-".unicodeScalars.contains($0)
        }
        guard allowed, !name.isEmpty, name.count <= 128, !name.hasPrefix(".") else {
            throw StoreError(
                .invalidInput,
                "file names are 1 to 128 letters, digits, '.', '_' or '-' and do not start with '.'; '\(name)' is not"
            )
        }
    }
}
