/// Walks a JPEG file (ITU-T T.81 annex B): SOI, marker segments skipped by their lengths, entropy-coded data
/// after each SOS, up to EOI. The size comes from the one start-of-frame (SOFn) segment.
enum JPEGReader {
    /// Start-of-frame markers: C0–CF except DHT (C4), JPG (C8) and DAC (CC), which share the range.
    private static func isStartOfFrame(_ marker: UInt8) -> Bool {
        (0xc0...0xcf).contains(marker) && marker != 0xc4 && marker != 0xc8 && marker != 0xcc
    }

    private static func marker(_ value: UInt8) -> String {
        "marker FF" + String(value, radix: 16, uppercase: true)
    }

    static func read(_ bytes: [UInt8]) throws -> ImageDimensions {
        var reader = ByteReader(bytes, kind: .jpeg, offset: 2)
        var dimensions: ImageDimensions?
        var sawScan = false
        while true {
            guard try reader.byte("a marker") == 0xff else {
                throw reader.malformed("a segment does not start with a marker")
            }
            var code = try reader.byte("a marker")
            while code == 0xff {  // fill bytes before a marker
                code = try reader.byte("a marker")
            }
            switch code {
            case 0xd9:  // EOI
                guard let dimensions, sawScan else {
                    throw reader.malformed("the image ends before its frame header or image data")
                }
                guard reader.isAtEnd else {
                    throw reader.malformed("\(reader.remaining) bytes follow the end of the image")
                }
                return dimensions
            case 0x00, 0x01, 0xd0...0xd8:
                // A stuffed byte, TEM, RSTn or a second SOI cannot stand between segments.
                throw reader.malformed("unexpected \(marker(code))")
            default:
                break
            }
            let length = try reader.uint16("a segment length")
            guard length >= 2 else {
                throw reader.malformed("\(marker(code)) gives a segment length of \(length)")
            }
            var segment = ByteReader(Array(try reader.take(length - 2, "a segment")), kind: .jpeg)
            if isStartOfFrame(code) {
                guard dimensions == nil else {
                    throw reader.malformed("a second frame header")
                }
                dimensions = try frame(&segment, reader: reader)
            } else if code == 0xda {  // SOS: entropy-coded data follows until the next marker
                guard dimensions != nil else {
                    throw reader.malformed("image data comes before the frame header")
                }
                sawScan = true
                try skipEntropyCodedData(&reader)
            }
        }
    }

    private static func frame(_ segment: inout ByteReader, reader: ByteReader) throws -> ImageDimensions {
        let precision = try segment.byte("the sample precision")
        let height = try segment.uint16("the height")
        let width = try segment.uint16("the width")
        let components = Int(try segment.byte("the component count"))
        guard precision == 8 || precision == 12 || precision == 16, (1...4).contains(components) else {
            throw reader.malformed("the frame header has precision \(precision) and \(components) components")
        }
        guard segment.remaining == 3 * components else {
            throw reader.malformed("the frame header's length does not match its \(components) components")
        }
        // Height 0 defers it to a DNL marker, which hardly any encoder writes; we refuse rather than guess.
        guard width > 0, height > 0 else {
            throw reader.malformed("the frame header gives \(width)×\(height) pixels")
        }
        return ImageDimensions(kind: .jpeg, width: width, height: height)
    }

    /// Advances past entropy-coded bytes to the next marker, leaving the reader on its FF.
    private static func skipEntropyCodedData(_ reader: inout ByteReader) throws {
        while true {
            guard try reader.byte("the image data") == 0xff else {
                continue
            }
            var next = try reader.byte("the image data")
            while next == 0xff {
                next = try reader.byte("the image data")
            }
            if next == 0x00 || (0xd0...0xd7).contains(next) {
                continue  // a stuffed FF or a restart marker belong to the data
            }
            // Step back to the marker so the segment loop reads it.
            reader = ByteReader(reader.bytes, kind: .jpeg, offset: reader.offset - 2)
            return
        }
    }
}
