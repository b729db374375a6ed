public import Foundation

/// Builds ustar (POSIX.1-1988) archives piece by piece, so file contents can be streamed between the headers:
/// `header(...)`, then exactly `size` bytes of content, then `padding(forSize:)`; after the last entry, `end()`.
public enum TarWriter {
    public static let blockSize = 512
    /// The largest entry an 11-digit octal size field can describe: 8 GiB - 1.
    public static let maximumSize: Int64 = 0o77777777777

    /// A 512-byte header for a regular file. Names longer than 100 bytes are split into the ustar prefix field at
    /// a "/" (up to 255 bytes in all). Throws `.invalidArgument` for names that are empty, not printable ASCII,
    /// absolute, contain "..", end in "/" or cannot be split, and for sizes outside 0...8 GiB - 1.
    public static func header(
        name: String,
        size: Int64,
        mode: Int = 0o644,
        modificationTime: Date
    ) throws -> [UInt8] {
        let (prefix, shortName) = try splitName(name)
        guard (0...maximumSize).contains(size) else {
            throw BackupFormatError(
                code: .invalidArgument,
                message: "\"\(name)\" is \(size) bytes; a backup member must be smaller than 8 GiB"
            )
        }
        guard (0...0o7777).contains(mode) else {
            throw BackupFormatError(code: .invalidArgument, message: "file mode \(mode) is not a valid permission set")
        }
        let seconds = modificationTime.timeIntervalSince1970.rounded(.down)
        // Before 1970 or after the year 6053 cannot be written in 11 octal digits; clamp rather than fail.
        let mtime = seconds.isFinite ? Int64(max(0, min(seconds, Double(maximumSize)))) : 0

        var block = [UInt8](repeating: 0, count: blockSize)
        block.replaceSubrange(0..<shortName.count, with: shortName)
        writeOctal(Int64(mode), into: &block, at: 100, width: 8)
        writeOctal(0, into: &block, at: 108, width: 8)  // uid
        writeOctal(0, into: &block, at: 116, width: 8)  // gid
        writeOctal(size, into: &block, at: 124, width: 12)
        writeOctal(mtime, into: &block, at: 136, width: 12)
        block[156] = UInt8(ascii: "0")  // Regular file.
        block.replaceSubrange(257..<265, with: Array("ustar\u{0}00".utf8))
        writeOctal(0, into: &block, at: 329, width: 8)  // devmajor
        writeOctal(0, into: &block, at: 337, width: 8)  // devminor
        block.replaceSubrange(345..<345 + prefix.count, with: prefix)
        // The checksum is computed with its own field filled with spaces, then stored as six digits, NUL, space.
        block.replaceSubrange(148..<156, with: [UInt8](repeating: UInt8(ascii: " "), count: 8))
        let checksum = block.reduce(0) { $0 + Int64($1) }
        writeOctal(checksum, into: &block, at: 148, width: 7)
        block[155] = UInt8(ascii: " ")
        return block
    }

    /// Zero bytes that round an entry of `size` bytes up to a whole 512-byte block.
    public static func padding(forSize size: Int64) -> [UInt8] {
        let remainder = Int(size % Int64(blockSize))
        return [UInt8](repeating: 0, count: remainder == 0 ? 0 : blockSize - remainder)
    }

    /// The end-of-archive marker: two zero blocks.
    public static func end() -> [UInt8] {
        [UInt8](repeating: 0, count: 2 * blockSize)
    }

    /// Writes `value` as zero-padded octal digits followed by a NUL, filling `width` bytes.
    private static func writeOctal(_ value: Int64, into block: inout [UInt8], at offset: Int, width: Int) {
        var digits = Array(String(value, radix: 8).utf8)
        precondition(digits.count <= width - 1, "tar field overflow")
        digits.insert(contentsOf: repeatElement(UInt8(ascii: "0"), count: width - 1 - digits.count), at: 0)
        block.replaceSubrange(offset..<offset + width - 1, with: digits)
        block[offset + width - 1] = 0
    }

    /// Returns the (prefix, name) fields for `name`, splitting at a "/" when it exceeds 100 bytes.
    static func splitName(_ name: String) throws -> (prefix: [UInt8], name: [UInt8]) {
        let bytes = Array(name.utf8)
        func invalid(_ reason: String) -> BackupFormatError {
            BackupFormatError(code: .invalidArgument, message: "cannot store \"\(name)\" in the backup: \(reason)")
        }
        guard !bytes.isEmpty else {
            throw invalid("the name is empty")
        }
        guard bytes.allSatisfy({ (0x20...0x7e).contains($0) }) else {
            throw invalid("names must be printable ASCII")
        }
        guard bytes.first != UInt8(ascii: "/"), bytes.last != UInt8(ascii: "/") else {
            throw invalid("names must be relative file paths (no leading or trailing \"/\")")
        }
        let components = name.split(separator: "/", omittingEmptySubsequences: false)
        guard !components.contains(where: { $0 == ".." || $0.isEmpty }) else {
            throw invalid("names must not contain \"..\" or empty path components")
        }
        if bytes.count <= 100 {
            return ([], bytes)
        }
        // ustar joins prefix + "/" + name, so split at a slash leaving at most 155 bytes before it and at most
        // 100 after it.
        guard bytes.count <= 256,
            let slash = bytes.indices.first(where: { bytes[$0] == UInt8(ascii: "/") && bytes.count - $0 - 1 <= 100 }),
            slash <= 155
        else {
            throw invalid("a ustar archive holds names up to 255 bytes, split at a \"/\" into 155 + 100 bytes")
        }
        return (Array(bytes[..<slash]), Array(bytes[(slash + 1)...]))
    }
}
