import AccountRules
import SeededRandom
import Testing

/// Damaged photos must be refused with an AccountError: never a crash, never a read outside the file (which
/// would trap on Swift's bounds checks and fail the run).
@Suite struct PhotoFuzzTests {
    static func fixtures() throws -> [(name: String, bytes: [UInt8])] {
        [
            ("png", try PhotoFixtures.png(width: 96, height: 80)),
            ("jpeg", try PhotoFixtures.jpeg(width: 96, height: 80)),
            ("progressive jpeg", try PhotoFixtures.jpeg(width: 96, height: 80, progressive: true)),
        ]
    }

    @Test func refusesEveryTruncation() throws {
        for (name, bytes) in try Self.fixtures() {
            #expect(try ImageDimensions.read(bytes).width == 96, "\(name)")
            for length in 0..<bytes.count {
                #expect(throws: AccountError.self, "\(name) cut to \(length) bytes") {
                    try ImageDimensions.read(Array(bytes.prefix(length)))
                }
            }
        }
    }

    /// 3,000 seeded runs of one to four random byte changes. JPEG scan data has no checksum, so some changed
    /// files are still valid; those must report a size a JPEG header can hold.
    @Test func survivesRandomByteFlips() throws {
        var random = SeededGenerator(seed: 20_261_204)
        var refused = 0
        for (name, bytes) in try Self.fixtures() {
            for _ in 0..<1_000 {
                var damaged = bytes
                for _ in 0..<Int.random(in: 1...4, using: &random) {
                    damaged[Int.random(in: 0..<damaged.count, using: &random)] = UInt8.random(
                        in: 0...255,
                        using: &random
                    )
                }
                do {
                    let dimensions = try ImageDimensions.read(damaged)
                    #expect((1...0x7fff_ffff).contains(dimensions.width), "\(name)")
                    #expect((1...0x7fff_ffff).contains(dimensions.height), "\(name)")
                } catch is AccountError {
                    refused += 1
                }
            }
        }
        #expect(refused > 1_000)  // the PNG's checksums alone refuse nearly all of its 1,000
    }

    @Test func refusesLyingJPEGSegmentLengths() throws {
        let jpeg = try PhotoFixtures.jpeg(width: 96, height: 80)
        let segments = PhotoFixtures.jpegSegments(jpeg)
        #expect(segments.count >= 4)
        for segment in segments {
            for length in [0, 1, jpeg.count - segment.offset, 0xffff] {
                var lying = jpeg
                lying[segment.offset + 2] = UInt8(length >> 8)
                lying[segment.offset + 3] = UInt8(length & 0xff)
                #expect(throws: AccountError.self, "marker \(segment.marker) length \(length)") {
                    try ImageDimensions.read(lying)
                }
            }
        }
    }

    /// A frame header alone is not a picture: a JPEG whose scans were cut out is refused.
    @Test func refusesJPEGWithoutScan() throws {
        let jpeg = try PhotoFixtures.jpeg(width: 96, height: 80)
        let scan = try #require(PhotoFixtures.jpegSegments(jpeg).last { $0.marker == 0xda })
        let withoutScan = Array(jpeg[..<scan.offset]) + [0xff, 0xd9]
        let error = #expect(throws: AccountError.self) { try ImageDimensions.read(withoutScan) }
        #expect(error?.message.contains("image data") == true)
    }

    @Test func refusesLyingPNGChunkLengths() throws {
        let png = try PhotoFixtures.png(width: 96, height: 80)
        // The IHDR length field at offset 8, then the tEXt chunk's after it (8 + 4 + 4 + 13 + 4).
        for offset in [8, 33] {
            for length: UInt32 in [0, 12, 14, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff] {
                var lying = png
                for byte in 0..<4 {
                    lying[offset + byte] = UInt8(truncatingIfNeeded: length >> UInt32(24 - 8 * byte))
                }
                #expect(throws: AccountError.self, "length \(length) at \(offset)") {
                    try ImageDimensions.read(lying)
                }
            }
        }
    }

    @Test func randomGarbageAfterAValidHeader() throws {
        var random = SeededGenerator(seed: 15_948)
        for prefix in [[0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], [0xff, 0xd8]] as [[UInt8]] {
            for _ in 0..<1_000 {
                let tail = (0..<Int.random(in: 0...300, using: &random)).map { _ in
                    UInt8.random(in: 0...255, using: &random)
                }
                #expect(throws: AccountError.self) { try ImageDimensions.read(prefix + tail) }
            }
        }
    }
}
