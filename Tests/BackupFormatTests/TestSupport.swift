import BackupFormat
import Foundation
import SeededRandom

func randomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var generator = SeededGenerator(seed: seed)
    var bytes = [UInt8]()
    bytes.reserveCapacity(count + 8)
    while bytes.count < count {
        withUnsafeBytes(of: generator.next()) { bytes.append(contentsOf: $0) }
    }
    return Array(bytes.prefix(count))
}

/// Splits `bytes` into pieces of irregular, mostly odd sizes (1 byte up to a little over two age chunks), the way
/// network reads arrive.
func oddPieces(_ bytes: [UInt8], seed: UInt64) -> [ArraySlice<UInt8>] {
    var generator = SeededGenerator(seed: seed)
    let sizes = [1, 3, 7, 511, 512, 513, 4_099, 65_535, 65_553, 140_001]
    var pieces: [ArraySlice<UInt8>] = []
    var start = 0
    while start < bytes.count {
        let size = sizes.randomElement(using: &generator)!
        let end = min(bytes.count, start + size)
        pieces.append(bytes[start..<end])
        start = end
    }
    return pieces
}

/// Encrypts `plaintext` in one go (header, one `encrypt` per odd piece, `finish`).
func ageEncrypt(_ plaintext: [UInt8], passphrase: String, workFactor: Int, seed: UInt64 = 1) throws -> [UInt8] {
    let encryptor = try AgeEncryptor(passphrase: passphrase, workFactor: workFactor)
    var output = encryptor.header()
    for piece in oddPieces(plaintext, seed: seed) {
        output += piece.withUnsafeBytes { encryptor.encrypt($0) }
    }
    output += encryptor.finish()
    return output
}

/// Decrypts `file` by feeding it in odd pieces; returns the plaintext or throws the first error.
func ageDecrypt(_ file: [UInt8], passphrase: String, maxWorkFactor: Int = 22, seed: UInt64 = 2) throws -> [UInt8] {
    let decryptor = AgeDecryptor(passphrase: passphrase, maxWorkFactor: maxWorkFactor)
    var plaintext: [UInt8] = []
    for piece in oddPieces(file, seed: seed) {
        plaintext += try piece.withUnsafeBytes { try decryptor.feed($0) }
    }
    plaintext += try decryptor.finish()
    return plaintext
}

/// The error code thrown by `body`, or nil when it succeeds.
func backupErrorCode(_ body: () throws -> Void) -> BackupFormatError.Code? {
    do {
        try body()
        return nil
    } catch let error as BackupFormatError {
        return error.code
    } catch {
        return nil
    }
}
