/// What an account photo must be: PNG or JPEG, at most 1 MB, at least 80×80 pixels.
///
/// "1 MB" is read as 1,000,000 bytes (the SI megabyte): the documentation says "nicht größer als 1 MB" without
/// defining it, and the decimal reading is the stricter one, so no file we accept is refused by a site that
/// reads it that way.
public struct PhotoPolicy: Sendable, Equatable {
    public static let standard = PhotoPolicy()

    public var maximumBytes = 1_000_000
    public var minimumSide = 80
    /// Not in the vendor's rules: a cap so that a small file cannot declare a picture whose decoded pixels fill
    /// the memory of whatever shows it (a "decompression bomb"). 10,000 pixels is beyond any camera's side.
    public var maximumSide = 10_000

    public init() {}

    /// Checks a photo file.
    ///
    /// - Returns: The photo's format and size.
    /// - Throws: `AccountError` with `photoTooLarge`, `photoUnsupportedFormat`, `photoMalformed` or
    ///   `photoDimensionsOutOfRange`; the message says what to change.
    public func check(_ bytes: [UInt8]) throws -> ImageDimensions {
        guard bytes.count <= maximumBytes else {
            throw AccountError(
                code: .photoTooLarge,
                message: "The photo has \(bytes.count) bytes; at most \(maximumBytes) (1 MB) are allowed. "
                    + "Save it smaller (fewer pixels or stronger JPEG compression) and upload it again."
            )
        }
        let dimensions = try ImageDimensions.read(bytes)
        guard dimensions.width >= minimumSide, dimensions.height >= minimumSide else {
            throw AccountError(
                code: .photoDimensionsOutOfRange,
                message: "The photo is \(dimensions.width)×\(dimensions.height) pixels; it must be at least "
                    + "\(minimumSide)×\(minimumSide). Choose a larger picture."
            )
        }
        guard dimensions.width <= maximumSide, dimensions.height <= maximumSide else {
            throw AccountError(
                code: .photoDimensionsOutOfRange,
                message: "The photo is \(dimensions.width)×\(dimensions.height) pixels; each side may be at most "
                    + "\(maximumSide). Scale it down and upload it again."
            )
        }
        return dimensions
    }
}
