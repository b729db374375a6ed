import ApplianceCrypto

/// Constants and key schedule of the age v1 format (https://age-encryption.org/v1), passphrase recipient only.
enum AgeFormat {
    static let versionLine = Array("age-encryption.org/v1\n".utf8)
    static let scryptSaltLabel = Array("age-encryption.org/v1/scrypt".utf8)
    static let scryptSaltLength = 16
    static let fileKeyLength = 16
    static let payloadNonceLength = 16
    static let chunkSize = 64 * 1024
    static let tagLength = ChaCha20Poly1305.tagLength
    static let sealedChunkSize = chunkSize + tagLength
    /// The wrapped file key: 16 bytes of key plus a 16-byte tag.
    static let wrappedFileKeyLength = fileKeyLength + tagLength
    /// Stanza bodies are base64 wrapped at this many columns.
    static let bodyColumns = 64
    static let zeroNonce = [UInt8](repeating: 0, count: ChaCha20Poly1305.nonceLength)

    static func wrapKey(passphrase: String, salt: [UInt8], workFactor: Int) throws -> [UInt8] {
        try Scrypt.derive(
            password: Array(passphrase.utf8),
            salt: scryptSaltLabel + salt,
            logN: workFactor,
            r: 8,
            p: 1,
            length: 32
        )
    }

    static func headerMAC(fileKey: [UInt8], headerText: [UInt8]) -> [UInt8] {
        let key = HKDF.sha256(inputKey: fileKey, salt: [], info: Array("header".utf8), length: 32)
        return HMAC.sha256(key: key, message: headerText)
    }

    static func payloadKey(fileKey: [UInt8], nonce: [UInt8]) -> [UInt8] {
        HKDF.sha256(inputKey: fileKey, salt: nonce, info: Array("payload".utf8), length: 32)
    }

    /// Writes the STREAM nonce for chunk `counter` into `nonce`: an 11-byte big-endian counter, then 0x01 for the
    /// last chunk or 0x00 otherwise. Updating in place keeps the per-chunk path free of allocations.
    static func setChunkNonce(_ nonce: inout [UInt8], counter: UInt64, last: Bool) {
        for index in 0..<11 {
            let shift = (10 - index) * 8
            nonce[index] = shift < 64 ? UInt8(truncatingIfNeeded: counter >> UInt64(shift)) : 0
        }
        nonce[11] = last ? 1 : 0
    }
}

/// Streaming age encryption with a passphrase (scrypt recipient).
///
/// Write `header()` first, then the bytes returned by each `encrypt(_:)`, then those returned by `finish()`.
/// Memory stays bounded by one 64 KiB chunk plus the output of the current call.
///
/// A class so that it cannot be copied: two copies of a running encryptor would seal different data under the
/// same key and nonce. Not Sendable; use it from one task.
public final class AgeEncryptor {
    /// age's own default work factor (N = 2^18, 256 MiB, about a second).
    public static let defaultWorkFactor = 18
    /// The highest work factor accepted, matching the decryptor's default limit so every backup stays readable.
    public static let maximumWorkFactor = 22

    private let headerBytes: [UInt8]
    private let cipher: ChaCha20Poly1305
    private var nonce = [UInt8](repeating: 0, count: ChaCha20Poly1305.nonceLength)
    private var counter: UInt64 = 0
    /// Plaintext of the chunk that is not yet known to be non-final; 1...64 KiB once any data was seen.
    private var pending: [UInt8]
    private var finished = false

    /// Derives the wrapping key with scrypt (N = 2^workFactor, which takes about a second at 18) and builds the
    /// header. Throws `.invalidArgument` for an empty passphrase or a work factor outside 1...22.
    public init(passphrase: String, workFactor: Int = AgeEncryptor.defaultWorkFactor) throws {
        guard !passphrase.isEmpty else {
            throw BackupFormatError(code: .invalidArgument, message: "the backup password must not be empty")
        }
        guard (1...Self.maximumWorkFactor).contains(workFactor) else {
            throw BackupFormatError(
                code: .invalidArgument,
                message: "the scrypt work factor must be 1...\(Self.maximumWorkFactor), got \(workFactor)"
            )
        }
        let salt = SecureRandom.bytes(AgeFormat.scryptSaltLength)
        let wrapKey: [UInt8]
        do {
            wrapKey = try AgeFormat.wrapKey(passphrase: passphrase, salt: salt, workFactor: workFactor)
        } catch {
            throw BackupFormatError(
                code: .unsupported,
                message: "deriving the backup key failed (\(error)); try again or lower the work factor"
            )
        }
        let fileKey = SecureRandom.bytes(AgeFormat.fileKeyLength)
        let wrappedFileKey = ChaCha20Poly1305(key: wrapKey).seal(fileKey, nonce: AgeFormat.zeroNonce)

        var text = AgeFormat.versionLine
        text += Array("-> scrypt \(UnpaddedBase64.encode(salt)) \(workFactor)\n".utf8)
        let body = Array(UnpaddedBase64.encode(wrappedFileKey).utf8)
        // Full 64-column lines, then a final shorter (possibly empty) line that ends the body.
        var lineStart = 0
        while true {
            let lineEnd = min(lineStart + AgeFormat.bodyColumns, body.count)
            text += body[lineStart..<lineEnd]
            text.append(UInt8(ascii: "\n"))
            if lineEnd - lineStart < AgeFormat.bodyColumns {
                break
            }
            lineStart = lineEnd
        }
        text += Array("---".utf8)
        let mac = AgeFormat.headerMAC(fileKey: fileKey, headerText: text)
        text += Array(" \(UnpaddedBase64.encode(mac))\n".utf8)

        let payloadNonce = SecureRandom.bytes(AgeFormat.payloadNonceLength)
        headerBytes = text + payloadNonce
        cipher = ChaCha20Poly1305(key: AgeFormat.payloadKey(fileKey: fileKey, nonce: payloadNonce))
        pending = []
        pending.reserveCapacity(AgeFormat.chunkSize)
    }

    /// The text header followed by the 16-byte payload nonce; goes before all encrypted output.
    public func header() -> [UInt8] {
        headerBytes
    }

    /// Encrypts `bytes`, returning whole sealed chunks as they complete (often nothing). The last chunk is held
    /// back until `finish()`, because age marks the final chunk and a full chunk may turn out to be the last one.
    public func encrypt(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        precondition(!finished, "AgeEncryptor.encrypt called after finish()")
        guard !bytes.isEmpty else {
            return []
        }
        let total = pending.count + bytes.count
        // Every full chunk that is followed by at least one more byte can go out now.
        let chunkCount = (total - 1) / AgeFormat.chunkSize
        guard chunkCount > 0 else {
            pending.append(contentsOf: bytes)
            return []
        }
        var consumed = 0
        let output = [UInt8](unsafeUninitializedCapacity: chunkCount * AgeFormat.sealedChunkSize) { out, initialized in
            let out = UnsafeMutableRawBufferPointer(out)
            var written = 0
            var sealed = 0
            if !pending.isEmpty {
                // Top up the buffered partial chunk; it is followed by more data, so it is not the last.
                consumed = AgeFormat.chunkSize - pending.count
                pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[..<consumed]))
                written += pending.withUnsafeBytes { sealChunk($0, last: false, into: out, at: written) }
                pending.removeAll(keepingCapacity: true)
                sealed = 1
            }
            // The rest are sealed straight from the caller's memory.
            while sealed < chunkCount {
                let chunk = UnsafeRawBufferPointer(rebasing: bytes[consumed..<consumed + AgeFormat.chunkSize])
                written += sealChunk(chunk, last: false, into: out, at: written)
                consumed += AgeFormat.chunkSize
                sealed += 1
            }
            initialized = written
        }
        pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[consumed...]))
        return output
    }

    public func encrypt(_ bytes: [UInt8]) -> [UInt8] {
        bytes.withUnsafeBytes { encrypt($0) }
    }

    /// Seals the final chunk (empty only when the whole plaintext was empty). Call exactly once.
    public func finish() -> [UInt8] {
        precondition(!finished, "AgeEncryptor.finish called twice")
        finished = true
        return [UInt8](unsafeUninitializedCapacity: pending.count + AgeFormat.tagLength) { out, initialized in
            initialized = pending.withUnsafeBytes { chunk in
                sealChunk(chunk, last: true, into: UnsafeMutableRawBufferPointer(out), at: 0)
            }
        }
    }

    private func sealChunk(
        _ chunk: UnsafeRawBufferPointer,
        last: Bool,
        into output: UnsafeMutableRawBufferPointer,
        at offset: Int
    ) -> Int {
        AgeFormat.setChunkNonce(&nonce, counter: counter, last: last)
        counter += 1
        return cipher.seal(chunk, nonce: nonce, into: UnsafeMutableRawBufferPointer(rebasing: output[offset...]))
    }
}
