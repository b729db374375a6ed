import COpenSSL
import Foundation

/// An Ed25519 signing key (RFC 8032), for signing software packages and download keys.
///
/// Holds only the 32-byte private seed and the derived public key, so it is a plain Sendable value; each operation
/// builds (and frees) its own OpenSSL key object. `description` never shows the seed.
public struct Ed25519PrivateKey: Sendable, CustomStringConvertible {
    /// Length of the private seed in bytes.
    public static let rawLength = 32

    private let seed: [UInt8]
    /// The public half, for verifiers.
    public let publicKey: Ed25519PublicKey

    /// Generates a new random key.
    public init() {
        guard let context = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nil) else {
            fatalError("EVP_PKEY_CTX_new_id(Ed25519) failed: \(drainOpenSSLErrors())")
        }
        defer { EVP_PKEY_CTX_free(context) }
        var key: OpaquePointer?
        guard EVP_PKEY_keygen_init(context) == 1, EVP_PKEY_keygen(context, &key) == 1, let key else {
            // Key generation only fails without randomness or memory; there is no safe way to continue.
            fatalError("generating an Ed25519 key failed: \(drainOpenSSLErrors())")
        }
        defer { EVP_PKEY_free(key) }
        guard let seed = Ed25519Support.rawKey(key, isPrivate: true),
            let publicRaw = Ed25519Support.rawKey(key, isPrivate: false)
        else {
            fatalError("reading a generated Ed25519 key failed: \(drainOpenSSLErrors())")
        }
        self.seed = seed
        self.publicKey = Ed25519PublicKey(trustedRaw: publicRaw)
    }

    /// A key from its 32-byte private seed (the RFC 8032 "secret key"). Throws `.invalidArgument` for other lengths.
    public init(raw: [UInt8]) throws {
        guard raw.count == Self.rawLength else {
            throw CryptoError(
                code: .invalidArgument,
                message: "an Ed25519 private key is \(Self.rawLength) bytes, got \(raw.count)"
            )
        }
        let key = try Ed25519Support.makeKey(raw, isPrivate: true)
        defer { EVP_PKEY_free(key) }
        guard let publicRaw = Ed25519Support.rawKey(key, isPrivate: false) else {
            throw openSSLFailure(.internalFailure, "deriving the Ed25519 public key failed")
        }
        self.seed = raw
        self.publicKey = Ed25519PublicKey(trustedRaw: publicRaw)
    }

    /// Reads an unencrypted PKCS#8 PEM private key (`-----BEGIN PRIVATE KEY-----`), as written by `pem` or
    /// `openssl genpkey -algorithm ed25519`. Throws `.invalidCertificate` for anything else, including encrypted keys
    /// and keys of other algorithms.
    public init(pem: String) throws {
        let key = try Ed25519Support.readPEM(pem, isPrivate: true)
        defer { EVP_PKEY_free(key) }
        guard let seed = Ed25519Support.rawKey(key, isPrivate: true),
            let publicRaw = Ed25519Support.rawKey(key, isPrivate: false)
        else {
            throw openSSLFailure(.invalidCertificate, "the Ed25519 private key in the PEM text cannot be read")
        }
        self.seed = seed
        self.publicKey = Ed25519PublicKey(trustedRaw: publicRaw)
    }

    /// The key as unencrypted PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`). Store it with owner-only permissions.
    public var pem: String {
        withKey { key in
            Ed25519Support.writePEM("the Ed25519 private key") {
                PEM_write_bio_PKCS8PrivateKey($0, key, nil, nil, 0, nil, nil)
            }
        }
    }

    /// The 64-byte Ed25519 signature of `message` (deterministic: the same key and message give the same bytes).
    public func sign(_ message: [UInt8]) -> [UInt8] {
        withKey { key in
            guard let context = EVP_MD_CTX_new() else {
                fatalError("EVP_MD_CTX_new failed: \(drainOpenSSLErrors())")
            }
            defer { EVP_MD_CTX_free(context) }
            // Ed25519 hashes internally (PureEdDSA), so the digest is NULL and the message goes in one call.
            guard EVP_DigestSignInit(context, nil, nil, nil, key) == 1 else {
                fatalError("EVP_DigestSignInit(Ed25519) failed: \(drainOpenSSLErrors())")
            }
            return [UInt8](unsafeUninitializedCapacity: Ed25519PublicKey.signatureLength) { buffer, initialized in
                var length = Ed25519PublicKey.signatureLength
                let status = withNonNullBytes(message) { base, count in
                    EVP_DigestSign(context, buffer.baseAddress, &length, base, count)
                }
                guard status == 1, length == Ed25519PublicKey.signatureLength else {
                    fatalError("Ed25519 signing failed: \(drainOpenSSLErrors())")
                }
                initialized = length
            }
        }
    }

    public var description: String {
        "Ed25519PrivateKey(keyId: \(publicKey.keyId))"
    }

    private func withKey<Result>(_ body: (OpaquePointer) -> Result) -> Result {
        let key: OpaquePointer
        do {
            key = try Ed25519Support.makeKey(seed, isPrivate: true)
        } catch {
            // The seed was accepted when this value was made, so only an allocation failure gets here.
            fatalError("rebuilding an Ed25519 key failed: \(error)")
        }
        defer { EVP_PKEY_free(key) }
        return body(key)
    }
}

/// An Ed25519 public key: verifies signatures made by the matching `Ed25519PrivateKey`.
///
/// Codable as a single string: standard base64 (with padding) of the 32 raw bytes.
public struct Ed25519PublicKey: Sendable, Hashable, Codable, CustomStringConvertible {
    /// Length of a public key in bytes.
    public static let rawLength = 32
    /// Length of a signature in bytes.
    public static let signatureLength = 64

    /// The 32 raw key bytes (RFC 8032 encoding).
    public let raw: [UInt8]

    /// A key from its 32 raw bytes. Throws `.invalidArgument` for other lengths and `.invalidCertificate` if OpenSSL
    /// refuses the bytes (it accepts most; a key that is not a valid point simply never verifies anything).
    public init(raw: [UInt8]) throws {
        guard raw.count == Self.rawLength else {
            throw CryptoError(
                code: .invalidArgument,
                message: "an Ed25519 public key is \(Self.rawLength) bytes, got \(raw.count)"
            )
        }
        let key = try Ed25519Support.makeKey(raw, isPrivate: false)
        EVP_PKEY_free(key)
        self.raw = raw
    }

    /// Reads a PEM SubjectPublicKeyInfo (`-----BEGIN PUBLIC KEY-----`), as written by `pem` or
    /// `openssl pkey -pubout`. Throws `.invalidCertificate` for anything else, including keys of other algorithms.
    public init(pem: String) throws {
        let key = try Ed25519Support.readPEM(pem, isPrivate: false)
        defer { EVP_PKEY_free(key) }
        guard let raw = Ed25519Support.rawKey(key, isPrivate: false) else {
            throw openSSLFailure(.invalidCertificate, "the Ed25519 public key in the PEM text cannot be read")
        }
        self.raw = raw
    }

    /// For bytes that OpenSSL itself produced.
    init(trustedRaw: [UInt8]) {
        self.raw = trustedRaw
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let bytes = Self.decodeBase64(text), let key = try? Ed25519PublicKey(raw: bytes) else {
            throw DecodingError.dataCorruptedError(
                in: container,
                debugDescription: "\"\(text)\" is not the base64 of a 32-byte Ed25519 public key"
            )
        }
        self = key
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(base64)
    }

    /// Standard base64 (with padding) of the raw bytes: the Codable form.
    public var base64: String {
        Self.encodeBase64(raw)
    }

    /// Reads the Codable form: standard base64 of the 32 raw bytes. Throws like `init(raw:)`.
    public init(base64: String) throws {
        guard let bytes = Self.decodeBase64(base64) else {
            throw CryptoError(
                code: .invalidArgument,
                message: "\"\(base64.prefix(60))\" is not base64; an Ed25519 public key is 44 base64 characters"
            )
        }
        try self.init(raw: bytes)
    }

    /// The key as PEM SubjectPublicKeyInfo (`-----BEGIN PUBLIC KEY-----`).
    public var pem: String {
        let key: OpaquePointer
        do {
            key = try Ed25519Support.makeKey(raw, isPrivate: false)
        } catch {
            fatalError("rebuilding an Ed25519 public key failed: \(error)")
        }
        defer { EVP_PKEY_free(key) }
        return Ed25519Support.writePEM("the Ed25519 public key") { PEM_write_bio_PUBKEY($0, key) }
    }

    /// A short fingerprint for naming the key to operators and in signed metadata: the first 16 lowercase hex
    /// digits of SHA-256 of the raw key.
    public var keyId: String {
        String(SHA256Hasher.hash(raw).hexString.prefix(16))
    }

    /// True when `signature` is a valid Ed25519 signature of `message` by this key. Wrong lengths are simply false.
    public func isValidSignature(_ signature: [UInt8], for message: [UInt8]) -> Bool {
        guard signature.count == Self.signatureLength,
            let key = try? Ed25519Support.makeKey(raw, isPrivate: false)
        else {
            return false
        }
        defer { EVP_PKEY_free(key) }
        guard let context = EVP_MD_CTX_new() else {
            fatalError("EVP_MD_CTX_new failed: \(drainOpenSSLErrors())")
        }
        defer { EVP_MD_CTX_free(context) }
        guard EVP_DigestVerifyInit(context, nil, nil, nil, key) == 1 else {
            fatalError("EVP_DigestVerifyInit(Ed25519) failed: \(drainOpenSSLErrors())")
        }
        let status = signature.withUnsafeBufferPointer { signatureBuffer in
            withNonNullBytes(message) { base, count in
                EVP_DigestVerify(context, signatureBuffer.baseAddress, signatureBuffer.count, base, count)
            }
        }
        // A failed verification leaves a reason on the error queue; clear it so it is not blamed on a later call.
        ERR_clear_error()
        return status == 1
    }

    public var description: String {
        "Ed25519PublicKey(keyId: \(keyId))"
    }

    static func encodeBase64(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
    }

    /// Strict standard base64 with padding: only the canonical spelling of some bytes is accepted.
    static func decodeBase64(_ text: String) -> [UInt8]? {
        guard let data = Data(base64Encoded: text), data.base64EncodedString() == text else {
            return nil
        }
        return [UInt8](data)
    }
}

/// OpenSSL plumbing shared by the two key types. Every returned EVP_PKEY must be freed by the caller.
private enum Ed25519Support {
    static func makeKey(_ raw: [UInt8], isPrivate: Bool) throws -> OpaquePointer {
        let key = raw.withUnsafeBufferPointer { buffer in
            isPrivate
                ? EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nil, buffer.baseAddress, buffer.count)
                : EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nil, buffer.baseAddress, buffer.count)
        }
        guard let key else {
            throw openSSLFailure(
                .invalidCertificate,
                "the \(raw.count) bytes are not a valid Ed25519 \(isPrivate ? "private" : "public") key"
            )
        }
        return key
    }

    static func rawKey(_ key: OpaquePointer, isPrivate: Bool) -> [UInt8]? {
        var length = 32
        var bytes = [UInt8](repeating: 0, count: length)
        let status = bytes.withUnsafeMutableBufferPointer { buffer in
            isPrivate
                ? EVP_PKEY_get_raw_private_key(key, buffer.baseAddress, &length)
                : EVP_PKEY_get_raw_public_key(key, buffer.baseAddress, &length)
        }
        guard status == 1, length == 32 else {
            return nil
        }
        return bytes
    }

    static func readPEM(_ pem: String, isPrivate: Bool) throws -> OpaquePointer {
        let what = isPrivate ? "private" : "public"
        if isPrivate, pem.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
            throw CryptoError(
                code: .invalidCertificate,
                message: "the Ed25519 private key is encrypted; export it without a passphrase "
                    + "(openssl pkey -in KEY -out PLAIN) and keep that file readable by its owner only"
            )
        }
        let bytes = Array(pem.utf8)
        let key: OpaquePointer? = withNonNullBytes(bytes) { base, count in
            guard let bio = BIO_new_mem_buf(base, Int32(count)) else {
                return nil
            }
            defer { BIO_free(bio) }
            // The callbacks supply no passphrase, so OpenSSL never prompts on the terminal.
            return isPrivate
                ? PEM_read_bio_PrivateKey(bio, nil, { _, _, _, _ in 0 }, nil)
                : PEM_read_bio_PUBKEY(bio, nil, { _, _, _, _ in 0 }, nil)
        }
        guard let key else {
            let marker = isPrivate ? "-----BEGIN PRIVATE KEY-----" : "-----BEGIN PUBLIC KEY-----"
            throw openSSLFailure(.invalidCertificate, "the text is not a PEM \(what) key (expected \(marker))")
        }
        guard EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519 else {
            EVP_PKEY_free(key)
            throw CryptoError(
                code: .invalidCertificate,
                message: "the PEM \(what) key is not an Ed25519 key; create one with openssl genpkey -algorithm ed25519"
            )
        }
        return key
    }

    /// Runs `write` on a fresh memory BIO and returns what it wrote. Writing a valid key to memory fails only when
    /// memory runs out, so failures stop the process.
    static func writePEM(_ what: String, _ write: (OpaquePointer) -> Int32) -> String {
        guard let bio = BIO_new(BIO_s_mem()) else {
            fatalError("allocating a memory BIO failed: \(drainOpenSSLErrors())")
        }
        defer { BIO_free(bio) }
        guard write(bio) == 1 else {
            fatalError("writing \(what) as PEM failed: \(drainOpenSSLErrors())")
        }
        let pending = Int(BIO_ctrl_pending(bio))
        let bytes = [UInt8](unsafeUninitializedCapacity: pending) { buffer, initialized in
            initialized = pending > 0 ? Int(max(0, BIO_read(bio, buffer.baseAddress, Int32(pending)))) : 0
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
