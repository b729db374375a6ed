/// One step of a tar archive as it streams past.
public enum TarEvent: Sendable, Equatable {
    /// A regular file begins; `size` bytes of `entryData` follow, then `entryEnd`.
    case entryStart(name: String, size: Int64)
    /// The next piece of the current file's contents (as much as the fed bytes held, never the whole file at once).
    case entryData([UInt8])
    case entryEnd
    /// The end-of-archive marker was reached; anything fed afterwards is ignored.
    case archiveEnd
}

/// A push parser for ustar/GNU/pax tar archives: feed bytes in pieces of any size and get events back.
///
/// Regular files are reported; directories, links, device nodes and global pax headers are skipped. pax `path`
/// and `size` records and GNU long names apply to the entry they precede. Memory stays bounded by one 512-byte
/// header and one extended header (at most 64 KiB).
public struct TarReader: Sendable {
    /// pax and GNU long-name headers larger than this are rejected as corrupt.
    public static let maximumExtendedHeaderSize = 64 * 1024
    private static let blockSize = 512

    private enum ExtendedKind: Sendable {
        case pax
        case gnuLongName
    }

    private enum State: Sendable {
        case header
        case data(remaining: Int64, padding: Int, report: Bool)
        case extendedHeader(kind: ExtendedKind, size: Int, padding: Int)
        case padding(remaining: Int)
        case ended
    }

    private var state = State.header
    private var block: [UInt8] = []
    private var extended: [UInt8] = []
    private var sawZeroBlock = false
    private var nextPath: String?
    private var nextSize: Int64?
    private var entryName = ""

    public init() {}

    public mutating func feed(_ bytes: [UInt8]) throws -> [TarEvent] {
        try bytes.withUnsafeBytes { try feed($0) }
    }

    /// Consumes the next piece of the archive and returns the events it completes.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer) throws -> [TarEvent] {
        var events: [TarEvent] = []
        var position = 0
        while position < bytes.count {
            let available = bytes.count - position
            switch state {
            case .ended:
                // Writers pad the archive to a record size after the end marker; that padding is not content.
                return events
            case .header:
                let take = min(Self.blockSize - block.count, available)
                block += UnsafeRawBufferPointer(rebasing: bytes[position..<position + take])
                position += take
                if block.count == Self.blockSize {
                    try processHeader(&events)
                    block.removeAll(keepingCapacity: true)
                }
            case .data(let remaining, let padding, let report):
                let take = Int(min(remaining, Int64(available)))
                if report {
                    let piece = UnsafeRawBufferPointer(rebasing: bytes[position..<position + take])
                    events.append(.entryData(Array(piece)))
                }
                position += take
                if remaining == Int64(take) {
                    if report {
                        events.append(.entryEnd)
                    }
                    state = padding > 0 ? .padding(remaining: padding) : .header
                } else {
                    state = .data(remaining: remaining - Int64(take), padding: padding, report: report)
                }
            case .extendedHeader(let kind, let size, let padding):
                let take = min(size - extended.count, available)
                extended += UnsafeRawBufferPointer(rebasing: bytes[position..<position + take])
                position += take
                if extended.count == size {
                    try applyExtendedHeader(kind)
                    extended = []
                    state = padding > 0 ? .padding(remaining: padding) : .header
                }
            case .padding(let remaining):
                let take = min(remaining, available)
                position += take
                state = remaining == take ? .header : .padding(remaining: remaining - take)
            }
        }
        return events
    }

    /// Call after the last `feed`: throws `.truncated` unless the end-of-archive marker was reached.
    public func finish() throws {
        switch state {
        case .ended:
            return
        case .header where block.isEmpty && !sawZeroBlock, .padding:
            throw truncated("the archive ends without its end-of-archive marker")
        case .data:
            throw truncated("the archive ends inside the contents of \"\(entryName)\"")
        default:
            throw truncated("the archive ends inside a header or the end-of-archive marker")
        }
    }

    private mutating func processHeader(_ events: inout [TarEvent]) throws {
        if block.allSatisfy({ $0 == 0 }) {
            if sawZeroBlock {
                state = .ended
                events.append(.archiveEnd)
            }
            sawZeroBlock = true
            return
        }
        guard !sawZeroBlock else {
            throw corrupt("the archive has a header after a zero block (it is damaged)")
        }
        guard let stored = Self.parseNumber(block[148..<156]), Self.checksums(block).contains(stored) else {
            throw corrupt("a tar header has a wrong checksum (the archive is damaged)")
        }
        guard let headerSize = Self.parseNumber(block[124..<136]) else {
            throw corrupt("a tar header has an unreadable size field")
        }
        let typeflag = block[156]
        // Extended headers describe the entry after them: they never take a pending name or size themselves.
        let isMeta = [UInt8]("xgLK".utf8).contains(typeflag)
        let size = isMeta ? headerSize : (nextSize ?? headerSize)
        let padding = Int((Int64(Self.blockSize) - size % Int64(Self.blockSize)) % Int64(Self.blockSize))

        switch typeflag {
        case UInt8(ascii: "x"), UInt8(ascii: "L"):
            guard size <= Int64(Self.maximumExtendedHeaderSize) else {
                throw corrupt("a tar extended header is larger than 64 KiB")
            }
            let kind: ExtendedKind = typeflag == UInt8(ascii: "x") ? .pax : .gnuLongName
            state = size == 0 ? .header : .extendedHeader(kind: kind, size: Int(size), padding: padding)
            return
        case UInt8(ascii: "S"):
            throw BackupFormatError(
                code: .unsupported,
                message: "the archive holds a GNU sparse file, which backups do not use; recreate it without --sparse"
            )
        default:
            break
        }

        let isRegular = typeflag == UInt8(ascii: "0") || typeflag == 0 || typeflag == UInt8(ascii: "7")
        if !isMeta {
            // pax and GNU long-name headers apply to exactly the next real entry, whatever its type.
            entryName = nextPath ?? headerName()
            nextPath = nil
            nextSize = nil
        }
        if isRegular {
            events.append(.entryStart(name: entryName, size: size))
            if size == 0 {
                events.append(.entryEnd)
                state = .header
            } else {
                state = .data(remaining: size, padding: padding, report: true)
            }
        } else {
            // Directories, links, devices, global pax headers and GNU long link names carry nothing to restore;
            // skip their data, if any.
            state = size == 0 ? .header : .data(remaining: size, padding: padding, report: false)
        }
    }

    private func headerName() -> String {
        let name = Self.cString(block[0..<100])
        // POSIX ustar ("ustar\0" + "00") has a prefix field; GNU tar ("ustar  \0") uses those bytes for other data.
        let isPOSIX = block[257..<263].elementsEqual("ustar\u{0}".utf8)
        let prefix = isPOSIX ? Self.cString(block[345..<500]) : ""
        return prefix.isEmpty ? name : prefix + "/" + name
    }

    private mutating func applyExtendedHeader(_ kind: ExtendedKind) throws {
        switch kind {
        case .gnuLongName:
            nextPath = Self.cString(extended[...])
        case .pax:
            // Records are "<length> <key>=<value>\n", where length counts the whole record.
            var index = 0
            while index < extended.count {
                guard let space = extended[index...].firstIndex(of: UInt8(ascii: " ")),
                    let length = Int(String(decoding: extended[index..<space], as: UTF8.self)),
                    length > space - index + 1, index + length <= extended.count,
                    extended[index + length - 1] == UInt8(ascii: "\n"),
                    let equals = extended[(space + 1)..<(index + length)].firstIndex(of: UInt8(ascii: "="))
                else {
                    throw corrupt("a pax extended header is malformed")
                }
                let key = String(decoding: extended[(space + 1)..<equals], as: UTF8.self)
                let value = extended[(equals + 1)..<(index + length - 1)]
                switch key {
                case "path":
                    nextPath = String(decoding: value, as: UTF8.self)
                case "size":
                    guard let size = Int64(String(decoding: value, as: UTF8.self)), size >= 0 else {
                        throw corrupt("a pax extended header has an invalid size")
                    }
                    nextSize = size
                default:
                    break
                }
                index += length
            }
        }
    }

    /// The unsigned and (historic) signed byte sums of a header, with the checksum field counted as spaces.
    private static func checksums(_ block: [UInt8]) -> [Int64] {
        var unsigned: Int64 = 0
        var signed: Int64 = 0
        for (index, byte) in block.enumerated() {
            let value = (148..<156).contains(index) ? UInt8(ascii: " ") : byte
            unsigned += Int64(value)
            signed += Int64(Int8(bitPattern: value))
        }
        return [unsigned, signed]
    }

    /// Parses a numeric field: octal digits (leading spaces allowed, ended by NUL or space), or GNU base-256 when
    /// the high bit of the first byte is set.
    private static func parseNumber(_ field: ArraySlice<UInt8>) -> Int64? {
        guard let first = field.first else {
            return nil
        }
        if first & 0x80 != 0 {
            guard first == 0x80, field.count <= 12 else {
                return nil  // Negative, or too large for Int64.
            }
            var value: Int64 = 0
            for byte in field.dropFirst() {
                let (shifted, overflow) = value.multipliedReportingOverflow(by: 256)
                guard !overflow else {
                    return nil
                }
                value = shifted | Int64(byte)
            }
            return value
        }
        var value: Int64 = 0
        var sawDigit = false
        for byte in field.drop(while: { $0 == UInt8(ascii: " ") }) {
            if byte == 0 || byte == UInt8(ascii: " ") {
                break
            }
            guard (UInt8(ascii: "0")...UInt8(ascii: "7")).contains(byte), value < Int64.max >> 3 else {
                return nil
            }
            value = value << 3 | Int64(byte - UInt8(ascii: "0"))
            sawDigit = true
        }
        return sawDigit ? value : nil
    }

    private static func cString(_ bytes: ArraySlice<UInt8>) -> String {
        let end = bytes.firstIndex(of: 0) ?? bytes.endIndex
        return String(decoding: bytes[..<end], as: UTF8.self)
    }

    private func corrupt(_ message: String) -> BackupFormatError {
        BackupFormatError(code: .corrupt, message: message + "; use another copy of the backup")
    }

    private func truncated(_ message: String) -> BackupFormatError {
        BackupFormatError(code: .truncated, message: message + "; the file is incomplete, copy or download it again")
    }
}
