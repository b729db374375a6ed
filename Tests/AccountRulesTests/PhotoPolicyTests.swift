import AccountRules
import Testing

@Suite struct PhotoPolicyTests {
    @Test func readsPNGAsImageMagickDoes() throws {
        let png = try PhotoFixtures.png(width: 123, height: 81)
        #expect(try ImageDimensions.read(png) == ImageDimensions(kind: .png, width: 123, height: 81))
        #expect(try PhotoFixtures.imageMagickSize(of: png, suffix: "png") == "123 81")
    }

    @Test(arguments: [false, true])
    func readsJPEG(progressive: Bool) throws {
        let jpeg = try PhotoFixtures.jpeg(width: 120, height: 90, progressive: progressive)
        let marker: UInt8 = progressive ? 0xc2 : 0xc0
        #expect(PhotoFixtures.jpegSegments(jpeg).contains { $0.marker == marker })
        #expect(try ImageDimensions.read(jpeg) == ImageDimensions(kind: .jpeg, width: 120, height: 90))
    }

    @Test func acceptsExactly80By80() throws {
        #expect(try PhotoPolicy.standard.check(try PhotoFixtures.png(width: 80, height: 80)).width == 80)
        #expect(try PhotoPolicy.standard.check(try PhotoFixtures.jpeg(width: 80, height: 80)).height == 80)
    }

    @Test(arguments: [(79, 80), (80, 79), (1, 1)])
    func refusesSmallPhotos(width: Int, height: Int) throws {
        for photo in [
            try PhotoFixtures.png(width: width, height: height), try PhotoFixtures.jpeg(width: width, height: height),
        ] {
            let error = #expect(throws: AccountError.self) { try PhotoPolicy.standard.check(photo) }
            #expect(error?.code == .photoDimensionsOutOfRange)
            #expect(error?.message.contains("at least 80×80") == true)
        }
    }

    /// 1 MB is 1,000,000 bytes; the size is checked before the structure, so an oversized upload is not parsed.
    @Test func sizeLimitIsOneMillionBytes() throws {
        let png = try PhotoFixtures.png(width: 80, height: 80)
        let tooLarge = png + [UInt8](repeating: 0, count: 1_000_001 - png.count)
        let error = #expect(throws: AccountError.self) { try PhotoPolicy.standard.check(tooLarge) }
        #expect(error?.code == .photoTooLarge)
        let atLimit = png + [UInt8](repeating: 0, count: 1_000_000 - png.count)
        let limitError = #expect(throws: AccountError.self) { try PhotoPolicy.standard.check(atLimit) }
        #expect(limitError?.code == .photoMalformed)  // within the size, refused only for the bytes after IEND
    }

    @Test(arguments: [
        Array("GIF89a".utf8) + [UInt8](repeating: 0, count: 40), Array("<svg xmlns=".utf8), [0x42, 0x4d, 0, 0], [],
    ])
    func refusesOtherFormats(bytes: [UInt8]) {
        let error = #expect(throws: AccountError.self) { try PhotoPolicy.standard.check(bytes) }
        #expect(error?.code == .photoUnsupportedFormat)
    }

    @Test func oversizedPNGDimensions() throws {
        let png = try PhotoFixtures.png(width: 80, height: 80)
        // Beyond PNG's 2^31 - 1: the file is malformed.
        for (width, height) in [(UInt32(0x8000_0000), UInt32(80)), (80, 0xffff_ffff), (0, 80)] {
            let error = #expect(throws: AccountError.self) {
                try ImageDimensions.read(PhotoFixtures.png(png, width: width, height: height))
            }
            #expect(error?.code == .photoMalformed)
        }
        // Legal for PNG but beyond the policy's cap.
        let huge = PhotoFixtures.png(png, width: 0x7fff_ffff, height: 80)
        #expect(try ImageDimensions.read(huge).width == 0x7fff_ffff)
        let error = #expect(throws: AccountError.self) { try PhotoPolicy.standard.check(huge) }
        #expect(error?.code == .photoDimensionsOutOfRange)
    }

    @Test func oversizedAndZeroJPEGDimensions() throws {
        let jpeg = try PhotoFixtures.jpeg(width: 120, height: 90)
        let frame = try #require(PhotoFixtures.jpegSegments(jpeg).first { $0.marker == 0xc0 })
        var wide = jpeg
        wide[frame.offset + 7] = 0xff  // width, high byte and low byte
        wide[frame.offset + 8] = 0xff
        #expect(try ImageDimensions.read(wide).width == 65_535)
        let error = #expect(throws: AccountError.self) { try PhotoPolicy.standard.check(wide) }
        #expect(error?.code == .photoDimensionsOutOfRange)
        var zero = jpeg
        zero[frame.offset + 5] = 0  // height 0 (deferred to a DNL marker)
        zero[frame.offset + 6] = 0
        #expect(throws: AccountError.self) { try ImageDimensions.read(zero) }
    }
}
