import Foundation

/// Photo files made at test time by independent tools: PNGs written by Python from zlib-compressed scanlines,
/// JPEGs by ImageMagick (installed by scripts/setup.sh).
enum PhotoFixtures {
    static let imageMagick = Tool.find(
        ["/usr/bin/convert-im6.q16", "/usr/bin/convert", "/usr/local/bin/magick", "/usr/bin/magick"],
        marker: "ImageMagick"
    )

    private static let pngProgram = """
        import sys, zlib, struct
        w, h, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
        def chunk(kind, data):
            return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))
        rows = b''.join(b'\\x00' + bytes((x * 7 + y * 3) & 255 for x in range(w * 3)) for y in range(h))
        png = (b'\\x89PNG\\r\\n\\x1a\\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0))
               + chunk(b'tEXt', b'Comment\\x00made by the AccountRules tests') + chunk(b'IDAT', zlib.compress(rows))
               + chunk(b'IEND', b''))
        open(path, 'wb').write(png)
        """

    /// An RGB PNG of the given size with a text chunk before its image data.
    static func png(width: Int, height: Int) throws -> [UInt8] {
        let file = try Tool.temporaryDirectory().appendingPathComponent("photo.png")
        try Tool.python(pngProgram, [String(width), String(height), file.path])
        return try Array(Data(contentsOf: file))
    }

    /// A JPEG from ImageMagick: baseline (SOF0) or progressive (SOF2, several scans).
    static func jpeg(width: Int, height: Int, progressive: Bool = false) throws -> [UInt8] {
        guard let imageMagick else {
            throw ToolFailure(description: "ImageMagick is not installed; run scripts/setup.sh (apt imagemagick)")
        }
        let file = try Tool.temporaryDirectory().appendingPathComponent("photo.jpg")
        try Tool.run(
            imageMagick,
            ["-size", "\(width)x\(height)", "gradient:red-blue", "-quality", "80"]
                + (progressive ? ["-interlace", "JPEG"] : ["-interlace", "none"]) + [file.path]
        )
        return try Array(Data(contentsOf: file))
    }

    /// ImageMagick's own reading of a file's size, as "W H".
    static func imageMagickSize(of bytes: [UInt8], suffix: String) throws -> String {
        guard let imageMagick else {
            throw ToolFailure(description: "ImageMagick is not installed; run scripts/setup.sh (apt imagemagick)")
        }
        let file = try Tool.temporaryDirectory().appendingPathComponent("photo.\(suffix)")
        try Data(bytes).write(to: file)
        return try Tool.run(imageMagick, [file.path, "-format", "%w %h", "info:"])
    }

    /// Offsets of a JPEG's marker segments before its first scan: (offset of the FF, marker code, length).
    static func jpegSegments(_ bytes: [UInt8]) -> [(offset: Int, marker: UInt8, length: Int)] {
        var segments = [(offset: Int, marker: UInt8, length: Int)]()
        var index = 2
        while index + 3 < bytes.count, bytes[index] == 0xff {
            let marker = bytes[index + 1]
            let length = Int(bytes[index + 2]) << 8 | Int(bytes[index + 3])
            segments.append((index, marker, length))
            if marker == 0xda {
                break
            }
            index += 2 + length
        }
        return segments
    }

    /// Rewrites a PNG's IHDR width and height and fixes its checksum, so only the dimension check can object.
    static func png(_ bytes: [UInt8], width: UInt32, height: UInt32) -> [UInt8] {
        var copy = bytes
        for (index, value) in [(16, width), (20, height)] {
            for byte in 0..<4 {
                copy[index + byte] = UInt8(truncatingIfNeeded: value >> UInt32(24 - 8 * byte))
            }
        }
        let crc = crc32(copy[12..<29])
        for byte in 0..<4 {
            copy[29 + byte] = UInt8(truncatingIfNeeded: crc >> UInt32(24 - 8 * byte))
        }
        return copy
    }

    /// Bitwise CRC-32 (a different implementation from the library's table-driven one).
    static func crc32(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        var crc: UInt32 = 0xffff_ffff
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 {
                crc = crc & 1 == 1 ? (crc >> 1) ^ 0xedb8_8320 : crc >> 1
            }
        }
        return ~crc
    }
}
