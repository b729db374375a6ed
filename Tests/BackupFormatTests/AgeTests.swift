import ApplianceCrypto
import BackupFormat
import Foundation
import Testing

/// Low work factor for speed; the interop tests use age's real default of 18.
private let fastWorkFactor = 10
private let passphrase = "correct horse battery staple"

@Suite("age encryption")
struct AgeTests {
    @Test(arguments: [0, 1, 65_535, 65_536, 65_537, 3 * 65_536, 1_000_003])
    func roundTrip(size: Int) throws {
        let plaintext = randomBytes(size, seed: UInt64(size) + 11)
        let file = try ageEncrypt(plaintext, passphrase: passphrase, workFactor: fastWorkFactor, seed: UInt64(size))
        let chunks = max(1, (size + 65_535) / 65_536)
        let headerSize = try #require(headerLength(file))
        #expect(file.count == headerSize + 16 + size + 16 * chunks)
        #expect(try ageDecrypt(file, passphrase: passphrase, seed: UInt64(size) + 3) == plaintext)
    }

    @Test func byteAtATime() throws {
        let plaintext = randomBytes(70_000, seed: 5)
        let file = try ageEncrypt(plaintext, passphrase: passphrase, workFactor: fastWorkFactor)
        let decryptor = AgeDecryptor(passphrase: passphrase)
        var output: [UInt8] = []
        for byte in file {
            output += try decryptor.feed([byte])
        }
        output += try decryptor.finish()
        #expect(output == plaintext)
        #expect(decryptor.workFactor == fastWorkFactor)
    }

    @Test func encryptorReleasesChunksOnlyWhenKnownNotLast() throws {
        let encryptor = try AgeEncryptor(passphrase: passphrase, workFactor: fastWorkFactor)
        #expect(encryptor.encrypt([UInt8](repeating: 1, count: 65_536)).isEmpty)  // Could still be the last.
        #expect(encryptor.encrypt([2]).count == 65_536 + 16)
        #expect(encryptor.finish().count == 1 + 16)
    }

    @Test func headerFollowsTheSpecification() throws {
        let encryptor = try AgeEncryptor(passphrase: passphrase, workFactor: fastWorkFactor)
        let header = encryptor.header()
        let length = try #require(headerLength(header))
        #expect(header.count == length + 16)
        let lines = String(decoding: header[..<length], as: UTF8.self).split(separator: "\n")
        #expect(lines.count == 4)
        #expect(lines[0] == "age-encryption.org/v1")
        let arguments = lines[1].split(separator: " ")
        #expect(arguments.count == 4 && arguments[0] == "->" && arguments[1] == "scrypt")
        #expect(arguments[2].count == 22 && !arguments[2].contains("="))  // 16 bytes, unpadded base64.
        #expect(arguments[3] == "\(fastWorkFactor)")
        #expect(lines[2].count == 43)  // 32-byte wrapped file key.
        #expect(lines[3].hasPrefix("--- ") && lines[3].count == 4 + 43)
        #expect(encryptor.header() == header)
    }

    @Test func wrongPassword() throws {
        let file = try ageEncrypt(randomBytes(1000, seed: 1), passphrase: passphrase, workFactor: fastWorkFactor)
        let decryptor = AgeDecryptor(passphrase: "Correct horse battery staple")
        let error = try #require(throws: BackupFormatError.self) { _ = try decryptor.feed(file) }
        #expect(error.code == .wrongPassword)
        #expect(error.message.contains("cannot be recovered"))
        // The decryptor stays failed.
        #expect(throws: BackupFormatError.self) { _ = try decryptor.feed([0]) }
    }

    @Test(arguments: [1000, 3 * 65_536 + 100])
    func flippedPayloadByteIsCorrupt(size: Int) throws {
        let file = try ageEncrypt(randomBytes(size, seed: 2), passphrase: passphrase, workFactor: fastWorkFactor)
        let payloadStart = try #require(headerLength(file)) + 16
        for offset in [payloadStart, payloadStart + size / 2, file.count - 1] {
            var tampered = file
            tampered[offset] ^= 0x20
            #expect(backupErrorCode { _ = try ageDecrypt(tampered, passphrase: passphrase) } == .corrupt)
        }
    }

    @Test func modifiedHeaderIsDetected() throws {
        let file = try ageEncrypt(randomBytes(100, seed: 3), passphrase: passphrase, workFactor: fastWorkFactor)
        let length = try #require(headerLength(file))
        // A changed MAC.
        var badMAC = file
        badMAC[length - 2] = badMAC[length - 2] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        #expect(backupErrorCode { _ = try ageDecrypt(badMAC, passphrase: passphrase) } == .corrupt)
        // A changed payload nonce derives a different payload key.
        var badNonce = file
        badNonce[length + 3] ^= 1
        #expect(backupErrorCode { _ = try ageDecrypt(badNonce, passphrase: passphrase) } == .corrupt)
        // Non-canonical header text (a trailing space on the stanza line).
        let text = String(decoding: file[..<length], as: UTF8.self)
        let spaced = Array(text.replacingOccurrences(of: " \(fastWorkFactor)\n", with: " \(fastWorkFactor) \n").utf8)
        #expect(
            backupErrorCode { _ = try ageDecrypt(spaced + file[length...], passphrase: passphrase) } == .corrupt
        )
    }

    @Test func truncationIsNeverSuccess() throws {
        let size = 3 * 65_536 + 1234
        let file = try ageEncrypt(randomBytes(size, seed: 4), passphrase: passphrase, workFactor: fastWorkFactor)
        let payloadStart = try #require(headerLength(file)) + 16
        let sealedChunk = 65_536 + 16
        let cuts = [
            1, 10, 30, payloadStart - 20,  // Inside the header.
            payloadStart - 8,  // Inside the payload nonce.
            payloadStart,  // No payload at all.
            payloadStart + 5,  // Inside the first chunk.
            payloadStart + sealedChunk + 100,  // Inside a middle chunk.
            payloadStart + sealedChunk,  // Exactly at a chunk boundary.
            payloadStart + 3 * sealedChunk,  // At the boundary before the last chunk.
            file.count - 1,  // Inside the last chunk.
        ]
        for cut in cuts {
            let code = backupErrorCode { _ = try ageDecrypt(Array(file[..<cut]), passphrase: passphrase) }
            #expect(code == .truncated || code == .corrupt, "cut at \(cut) gave \(String(describing: code))")
        }
        for cut in [30, payloadStart - 8, payloadStart, payloadStart + sealedChunk, payloadStart + 3 * sealedChunk] {
            let code = backupErrorCode { _ = try ageDecrypt(Array(file[..<cut]), passphrase: passphrase) }
            #expect(code == .truncated, "cut at \(cut) gave \(String(describing: code))")
        }
    }

    @Test(arguments: [0, 1000, 65_536, 3 * 65_536])
    func appendedDataIsCorrupt(size: Int) throws {
        let file = try ageEncrypt(randomBytes(size, seed: 5), passphrase: passphrase, workFactor: fastWorkFactor)
        for extra in [[UInt8(0)], randomBytes(16, seed: 6), randomBytes(70_000, seed: 7)] {
            let code = backupErrorCode { _ = try ageDecrypt(file + extra, passphrase: passphrase) }
            #expect(code == .corrupt, "\(extra.count) extra bytes gave \(String(describing: code))")
        }
        // A second complete encryption appended (for example a file written twice).
        let doubled = file + file[(try #require(headerLength(file)) + 16)...]
        #expect(backupErrorCode { _ = try ageDecrypt(doubled, passphrase: passphrase) } == .corrupt)
    }

    @Test func plainTarIsNotEncrypted() throws {
        let tar = try TarWriter.header(name: "manifest.json", size: 0, modificationTime: Date()) + TarWriter.end()
        let decryptor = AgeDecryptor(passphrase: passphrase)
        let error = try #require(throws: BackupFormatError.self) { _ = try decryptor.feed(tar) }
        #expect(error.code == .notEncrypted)
        // Detected from the first differing byte, without waiting for more input.
        let early = backupErrorCode { _ = try AgeDecryptor(passphrase: passphrase).feed(Array("agx".utf8)) }
        #expect(early == .notEncrypted)
        #expect(backupErrorCode { _ = try AgeDecryptor(passphrase: passphrase).finish() } == .notEncrypted)
        // A prefix of the version line is an incomplete age file.
        let prefix = AgeDecryptor(passphrase: passphrase)
        #expect(try prefix.feed(Array("age-enc".utf8)).isEmpty)
        #expect(backupErrorCode { _ = try prefix.finish() } == .truncated)
    }

    @Test func workFactorAboveLimitIsUnsupported() throws {
        let file = try ageEncrypt([1, 2, 3], passphrase: passphrase, workFactor: 12)
        #expect(
            backupErrorCode { _ = try ageDecrypt(file, passphrase: passphrase, maxWorkFactor: 11) } == .unsupported
        )
    }

    @Test func otherRecipientTypes() throws {
        let body = String(repeating: "A", count: 43)
        let mac = String(repeating: "A", count: 43)
        let x25519 = "age-encryption.org/v1\n-> X25519 \(body)\n\(body)\n--- \(mac)\n"
        #expect(backupErrorCode { _ = try AgeDecryptor(passphrase: "x").feed(Array(x25519.utf8)) } == .unsupported)
        // scrypt must be the only recipient.
        let salt = String(repeating: "A", count: 22)
        let mixed = "age-encryption.org/v1\n-> X25519 \(body)\n\(body)\n-> scrypt \(salt) 10\n\(body)\n--- \(mac)\n"
        #expect(backupErrorCode { _ = try AgeDecryptor(passphrase: "x").feed(Array(mixed.utf8)) } == .corrupt)
    }

    @Test func endlessHeaderIsRejected() throws {
        let decryptor = AgeDecryptor(passphrase: passphrase)
        var code: BackupFormatError.Code?
        #expect(try decryptor.feed(AgeEncryptorTestData.versionLine).isEmpty)
        for _ in 0..<5_000 where code == nil {
            code = backupErrorCode { _ = try decryptor.feed(Array("-> junk stanza line\n".utf8)) }
        }
        #expect(code == .corrupt)
        let noNewline = AgeDecryptor(passphrase: passphrase)
        let junk = AgeEncryptorTestData.versionLine + [UInt8](repeating: UInt8(ascii: "x"), count: 100_000)
        #expect(backupErrorCode { _ = try noNewline.feed(junk) } == .corrupt)
    }

    @Test func encryptorRejectsBadParameters() {
        #expect(backupErrorCode { _ = try AgeEncryptor(passphrase: "", workFactor: 10) } == .invalidArgument)
        #expect(backupErrorCode { _ = try AgeEncryptor(passphrase: "x", workFactor: 23) } == .invalidArgument)
        #expect(backupErrorCode { _ = try AgeEncryptor(passphrase: "x", workFactor: 0) } == .invalidArgument)
    }

    @Test func sameInputEncryptsDifferentlyEachTime() throws {
        let plaintext = randomBytes(100, seed: 8)
        let first = try ageEncrypt(plaintext, passphrase: passphrase, workFactor: fastWorkFactor)
        let second = try ageEncrypt(plaintext, passphrase: passphrase, workFactor: fastWorkFactor)
        #expect(first != second)
    }
}

enum AgeEncryptorTestData {
    static let versionLine = Array("age-encryption.org/v1\n".utf8)
}

/// Length of the text header (through the newline after the MAC), or nil.
func headerLength(_ file: [UInt8]) -> Int? {
    let marker = Array("\n--- ".utf8)
    let starts = 0...(file.count - marker.count)
    guard let start = starts.first(where: { file[$0..<$0 + marker.count].elementsEqual(marker) }),
        let newline = file[(start + 1)...].firstIndex(of: UInt8(ascii: "\n"))
    else {
        return nil
    }
    return newline + 1
}
