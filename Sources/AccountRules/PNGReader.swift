/// Walks a PNG file (ISO/IEC 15948): signature, then chunks of length, type, data and CRC-32 up to IEND.
enum PNGReader {
    static let signature: [UInt8] = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]

    /// Bit depths each colour type allows (PNG table 11.1).
    private static let allowedBitDepths: [UInt8: Set<UInt8>] = [
        0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16],
    ]

    static func read(_ bytes: [UInt8]) throws -> ImageDimensions {
        var reader = ByteReader(bytes, kind: .png, offset: signature.count)
        var dimensions: ImageDimensions?
        var sawImageData = false
        while true {
            let length = try reader.uint32("a chunk length")
            // The format caps chunk lengths at 2^31 - 1.
            guard length <= 0x7fff_ffff else {
                throw reader.malformed("a chunk length of \(length) bytes")
            }
            let typeAndData = try reader.take(4 + Int(length), "a chunk")
            let crc = try reader.uint32("a chunk checksum")
            guard CRC32.checksum(typeAndData) == crc else {
                throw reader.malformed("a chunk checksum does not match")
            }
            let type = String(decoding: typeAndData.prefix(4), as: UTF8.self)
            let data = typeAndData.dropFirst(4)
            if dimensions == nil {
                guard type == "IHDR" else {
                    throw reader.malformed("the first chunk is \(type), not IHDR")
                }
                dimensions = try header(data, reader: reader)
                continue
            }
            switch type {
            case "IHDR":
                throw reader.malformed("a second IHDR chunk")
            case "IDAT":
                sawImageData = true
            case "IEND":
                guard sawImageData else {
                    throw reader.malformed("there is no image data")
                }
                guard reader.isAtEnd else {
                    throw reader.malformed("\(reader.remaining) bytes follow the end of the image")
                }
                return dimensions!
            default:
                break
            }
        }
    }

    private static func header(_ data: ArraySlice<UInt8>, reader: ByteReader) throws -> ImageDimensions {
        guard data.count == 13 else {
            throw reader.malformed("the IHDR chunk has \(data.count) bytes instead of 13")
        }
        var fields = ByteReader(Array(data), kind: .png)
        let width = try fields.uint32("the width")
        let height = try fields.uint32("the height")
        let bitDepth = try fields.byte("the bit depth")
        let colourType = try fields.byte("the colour type")
        let compression = try fields.byte("the compression method")
        let filter = try fields.byte("the filter method")
        let interlace = try fields.byte("the interlace method")
        guard (1...0x7fff_ffff).contains(width), (1...0x7fff_ffff).contains(height) else {
            throw reader.malformed("the header gives \(width)×\(height) pixels")
        }
        guard allowedBitDepths[colourType]?.contains(bitDepth) == true, compression == 0, filter == 0,
            interlace <= 1
        else {
            throw reader.malformed("the header has an unknown colour type, bit depth or method")
        }
        return ImageDimensions(kind: .png, width: Int(width), height: Int(height))
    }
}

/// CRC-32 as PNG uses it (ISO 3309, polynomial 0xEDB88320, reflected).
enum CRC32 {
    private static let table: [UInt32] = (0..<256).map { index in
        var value = UInt32(index)
        for _ in 0..<8 {
            value = value & 1 == 1 ? 0xedb8_8320 ^ (value >> 1) : value >> 1
        }
        return value
    }

    static func checksum(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        var crc: UInt32 = 0xffff_ffff
        for byte in bytes {
            crc = table[Int((crc ^ UInt32(byte)) & 0xff)] ^ (crc >> 8)
        }
        return crc ^ 0xffff_ffff
    }
}
