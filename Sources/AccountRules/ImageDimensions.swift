/// What a photo file says about itself: its format and size in pixels.
public struct ImageDimensions: Sendable, Equatable {
    /// The image formats the photo upload understands.
    public enum Kind: String, Sendable, Equatable {
        case png = "PNG"
        case jpeg = "JPEG"
    }

    public var kind: Kind
    public var width: Int
    public var height: Int

    public init(kind: Kind, width: Int, height: Int) {
        self.kind = kind
        self.width = width
        self.height = height
    }

    /// Reads format and size from the file's own structure (PNG signature and chunks, JPEG markers), never from
    /// its name or a declared content type.
    ///
    /// The whole file is walked, not only the header, so that a truncated upload or one with a damaged chunk is
    /// refused here rather than shown broken to customers later.
    ///
    /// - Throws: `AccountError.photoUnsupportedFormat` for anything but PNG or JPEG, `AccountError.photoMalformed`
    ///   for a file whose structure is damaged, truncated or followed by extra bytes.
    public static func read(_ bytes: [UInt8]) throws -> ImageDimensions {
        if bytes.starts(with: PNGReader.signature) {
            return try PNGReader.read(bytes)
        }
        if bytes.starts(with: [0xff, 0xd8]) {
            return try JPEGReader.read(bytes)
        }
        throw AccountError(
            code: .photoUnsupportedFormat,
            message: "The photo is neither a PNG nor a JPEG file; save it in one of these formats and upload it again."
        )
    }
}

/// A bounds-checked cursor over the file: every read checks the remaining length first, so no input can make
/// the parsers read outside the array.
struct ByteReader {
    let bytes: [UInt8]
    private(set) var offset: Int
    let kind: ImageDimensions.Kind

    init(_ bytes: [UInt8], kind: ImageDimensions.Kind, offset: Int = 0) {
        self.bytes = bytes
        self.kind = kind
        self.offset = offset
    }

    var remaining: Int {
        bytes.count - offset
    }

    var isAtEnd: Bool {
        offset >= bytes.count
    }

    mutating func take(_ count: Int, _ what: String) throws -> ArraySlice<UInt8> {
        guard count >= 0, count <= remaining else {
            throw malformed("the file ends inside \(what)")
        }
        defer { offset += count }
        return bytes[offset..<offset + count]
    }

    mutating func byte(_ what: String) throws -> UInt8 {
        try take(1, what).first!
    }

    mutating func uint16(_ what: String) throws -> Int {
        try take(2, what).reduce(0) { $0 << 8 | Int($1) }
    }

    mutating func uint32(_ what: String) throws -> UInt32 {
        try take(4, what).reduce(0) { $0 << 8 | UInt32($1) }
    }

    mutating func skip(_ count: Int, _ what: String) throws {
        _ = try take(count, what)
    }

    func malformed(_ detail: String) -> AccountError {
        AccountError(
            code: .photoMalformed,
            message: "The \(kind.rawValue) file is damaged (\(detail), at byte \(offset)); "
                + "open it in an image editor, save it again and upload the new file."
        )
    }
}
