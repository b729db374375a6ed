import COpenSSL

/// ChaCha20-Poly1305 AEAD (RFC 8439) with a 32-byte key, 12-byte nonces and 16-byte tags appended to the
/// ciphertext, and optional associated data (authenticated, not encrypted).
///
/// A class because it keeps one OpenSSL cipher context for its lifetime: the key schedule and the provider lookup
/// happen once, and each seal/open only resets the nonce. Not Sendable; use one instance per task.
public final class ChaCha20Poly1305 {
    public static let keyLength = 32
    public static let nonceLength = 12
    public static let tagLength = 16

    /// The largest input handed to a single EVP_CipherUpdate call, whose length parameter is an Int32.
    private static let maximumUpdate = 1 << 30

    private let context: OpaquePointer

    /// `key` must be exactly 32 bytes; anything else is a programming error.
    public init(key: [UInt8]) {
        precondition(key.count == Self.keyLength, "ChaCha20-Poly1305 needs a 32-byte key, got \(key.count)")
        guard let context = EVP_CIPHER_CTX_new() else {
            fatalError("EVP_CIPHER_CTX_new failed: \(drainOpenSSLErrors())")
        }
        self.context = context
        let status = key.withUnsafeBufferPointer { keyBuffer in
            EVP_CipherInit_ex(context, EVP_chacha20_poly1305(), nil, keyBuffer.baseAddress, nil, 1)
        }
        guard status == 1 else {
            fatalError("ChaCha20-Poly1305 initialisation failed: \(drainOpenSSLErrors())")
        }
    }

    deinit {
        EVP_CIPHER_CTX_free(context)
    }

    /// Encrypts `plaintext`, returning ciphertext followed by the 16-byte tag.
    public func seal(_ plaintext: [UInt8], nonce: [UInt8], associatedData: [UInt8] = []) -> [UInt8] {
        plaintext.withUnsafeBytes { seal($0, nonce: nonce, associatedData: associatedData) }
    }

    /// Encrypts `plaintext`, returning ciphertext followed by the 16-byte tag.
    public func seal(_ plaintext: UnsafeRawBufferPointer, nonce: [UInt8], associatedData: [UInt8] = []) -> [UInt8] {
        let sealedCount = plaintext.count + Self.tagLength
        return [UInt8](unsafeUninitializedCapacity: sealedCount) { output, initialized in
            initialized = seal(
                plaintext,
                nonce: nonce,
                associatedData: associatedData,
                into: UnsafeMutableRawBufferPointer(output)
            )
        }
    }

    /// Encrypts `plaintext` into the start of `output` (which needs room for `plaintext.count + 16` bytes) and
    /// returns the number of bytes written. Lets callers seal many chunks into one buffer without copies.
    @discardableResult
    public func seal(
        _ plaintext: UnsafeRawBufferPointer,
        nonce: [UInt8],
        associatedData: [UInt8] = [],
        into output: UnsafeMutableRawBufferPointer
    ) -> Int {
        let sealedCount = plaintext.count + Self.tagLength
        precondition(output.count >= sealedCount, "ChaCha20Poly1305.seal: output buffer too small")
        precondition(nonce.count == Self.nonceLength, "ChaCha20-Poly1305 needs a 12-byte nonce, got \(nonce.count)")
        let outputBase = output.baseAddress!.assumingMemoryBound(to: UInt8.self)
        // Everything below fails only on a broken context (memory corruption), never because of the data.
        guard start(nonce: nonce, encrypting: true), authenticate(associatedData) else {
            fatalError("ChaCha20-Poly1305 nonce setup failed: \(drainOpenSSLErrors())")
        }
        guard update(input: plaintext, output: outputBase) else {
            fatalError("ChaCha20-Poly1305 encryption failed: \(drainOpenSSLErrors())")
        }
        var finalCount: Int32 = 0
        guard EVP_CipherFinal_ex(context, outputBase + plaintext.count, &finalCount) == 1, finalCount == 0 else {
            fatalError("ChaCha20-Poly1305 finalisation failed: \(drainOpenSSLErrors())")
        }
        guard shim_EVP_CIPHER_CTX_get_aead_tag(context, outputBase + plaintext.count, Int32(Self.tagLength)) == 1
        else {
            fatalError("ChaCha20-Poly1305 tag retrieval failed: \(drainOpenSSLErrors())")
        }
        return sealedCount
    }

    /// Decrypts and authenticates ciphertext-plus-tag; throws `.authenticationFailed` if it was modified or the
    /// key or nonce is wrong.
    public func open(_ sealed: [UInt8], nonce: [UInt8], associatedData: [UInt8] = []) throws -> [UInt8] {
        try sealed.withUnsafeBytes { try open($0, nonce: nonce, associatedData: associatedData) }
    }

    /// Decrypts and authenticates ciphertext-plus-tag; throws `.authenticationFailed` if it was modified or the
    /// key or nonce is wrong.
    public func open(
        _ sealed: UnsafeRawBufferPointer,
        nonce: [UInt8],
        associatedData: [UInt8] = []
    ) throws -> [UInt8] {
        guard sealed.count >= Self.tagLength else {
            throw Self.tooShort(sealed.count)
        }
        return try [UInt8](unsafeUninitializedCapacity: sealed.count - Self.tagLength) { output, initialized in
            initialized = try open(
                sealed,
                nonce: nonce,
                associatedData: associatedData,
                into: UnsafeMutableRawBufferPointer(output)
            )
        }
    }

    /// Decrypts `sealed` into the start of `output` (room for `sealed.count - 16` bytes) and returns the number of
    /// plaintext bytes. On failure the written bytes are zeroed so unauthenticated plaintext never escapes.
    @discardableResult
    public func open(
        _ sealed: UnsafeRawBufferPointer,
        nonce: [UInt8],
        associatedData: [UInt8] = [],
        into output: UnsafeMutableRawBufferPointer
    ) throws -> Int {
        guard sealed.count >= Self.tagLength else {
            throw Self.tooShort(sealed.count)
        }
        precondition(nonce.count == Self.nonceLength, "ChaCha20-Poly1305 needs a 12-byte nonce, got \(nonce.count)")
        let plaintextCount = sealed.count - Self.tagLength
        precondition(output.count >= plaintextCount, "ChaCha20Poly1305.open: output buffer too small")
        let outputBase = output.baseAddress?.assumingMemoryBound(to: UInt8.self)

        // OpenSSL wants the expected tag in a mutable buffer.
        var tag = [UInt8](sealed[plaintextCount...])
        let authenticated: Bool = tag.withUnsafeMutableBufferPointer { tagBuffer in
            guard start(nonce: nonce, encrypting: false), authenticate(associatedData) else {
                return false
            }
            if plaintextCount > 0 {
                guard let outputBase,
                    update(input: UnsafeRawBufferPointer(rebasing: sealed[..<plaintextCount]), output: outputBase)
                else {
                    return false
                }
            }
            guard shim_EVP_CIPHER_CTX_set_aead_tag(context, tagBuffer.baseAddress, Int32(Self.tagLength)) == 1 else {
                return false
            }
            // A stream cipher's final step writes nothing; it only checks the tag.
            var finalCount: Int32 = 0
            let finalOutput = outputBase.map { $0 + plaintextCount } ?? tagBuffer.baseAddress!
            return EVP_CipherFinal_ex(context, finalOutput, &finalCount) == 1 && finalCount == 0
        }
        guard authenticated else {
            if plaintextCount > 0 {
                UnsafeMutableRawBufferPointer(rebasing: output[..<plaintextCount])
                    .initializeMemory(as: UInt8.self, repeating: 0)
            }
            // A failed tag check queues an OpenSSL error; clear it so it is not reported by an unrelated call later.
            ERR_clear_error()
            throw CryptoError(
                code: .authenticationFailed,
                message: "the data failed its integrity check: it was modified or damaged, or the key is wrong"
            )
        }
        return plaintextCount
    }

    private static func tooShort(_ count: Int) -> CryptoError {
        CryptoError(
            code: .authenticationFailed,
            message: "sealed data is \(count) bytes, shorter than the 16-byte authentication tag"
        )
    }

    private func start(nonce: [UInt8], encrypting: Bool) -> Bool {
        nonce.withUnsafeBufferPointer { nonceBuffer in
            EVP_CipherInit_ex(context, nil, nil, nil, nonceBuffer.baseAddress, encrypting ? 1 : 0) == 1
        }
    }

    /// Feeds associated data (a NULL output pointer tells OpenSSL it is AAD); must precede the ciphertext.
    private func authenticate(_ associatedData: [UInt8]) -> Bool {
        if associatedData.isEmpty {
            return true
        }
        return associatedData.withUnsafeBufferPointer { buffer in
            var written: Int32 = 0
            return EVP_CipherUpdate(context, nil, &written, buffer.baseAddress, Int32(buffer.count)) == 1
        }
    }

    private func update(input: UnsafeRawBufferPointer, output: UnsafeMutablePointer<UInt8>) -> Bool {
        guard let inputBase = input.baseAddress?.assumingMemoryBound(to: UInt8.self) else {
            return true
        }
        var offset = 0
        while offset < input.count {
            let length = min(input.count - offset, Self.maximumUpdate)
            var written: Int32 = 0
            guard EVP_CipherUpdate(context, output + offset, &written, inputBase + offset, Int32(length)) == 1,
                Int(written) == length
            else {
                return false
            }
            offset += length
        }
        return true
    }
}
