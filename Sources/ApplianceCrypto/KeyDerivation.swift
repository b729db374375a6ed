import COpenSSL

/// scrypt (RFC 7914) password-based key derivation.
public enum Scrypt {
    /// Derives `length` bytes with N = 2^logN.
    ///
    /// OpenSSL refuses to use more than `maxmem` bytes and its default (32 MiB) is too small for the work factors
    /// used here (N = 2^18, r = 8 needs 256 MiB), so the limit is sized to the parameters plus a margin.
    public static func derive(
        password: [UInt8],
        salt: [UInt8],
        logN: Int,
        r: Int = 8,
        p: Int = 1,
        length: Int
    ) throws -> [UInt8] {
        guard (1...30).contains(logN) else {
            throw CryptoError(code: .invalidArgument, message: "scrypt work factor \(logN) is outside 1...30")
        }
        guard r >= 1, p >= 1, r.multipliedReportingOverflow(by: p).partialValue < 1 << 30 else {
            throw CryptoError(code: .invalidArgument, message: "scrypt parameters r=\(r) p=\(p) are out of range")
        }
        guard (1...(1 << 20)).contains(length) else {
            throw CryptoError(code: .invalidArgument, message: "scrypt output length \(length) is out of range")
        }
        let n = UInt64(1) << UInt64(logN)
        let (vSize, vOverflow) = UInt64(128 * r).multipliedReportingOverflow(by: n + 2)
        guard !vOverflow else {
            throw CryptoError(
                code: .invalidArgument,
                message: "scrypt parameters logN=\(logN) r=\(r) need too much memory"
            )
        }
        let maxMemory = vSize + UInt64(128 * r * p) + (1 << 20)
        return try [UInt8](unsafeUninitializedCapacity: length) { output, initialized in
            let status = withNonNullBytes(password) { passwordBase, passwordCount in
                withNonNullBytes(salt) { saltBase, saltCount in
                    passwordBase.withMemoryRebound(to: CChar.self, capacity: max(passwordCount, 1)) { passwordChars in
                        EVP_PBE_scrypt(
                            passwordChars,
                            passwordCount,
                            saltBase,
                            saltCount,
                            n,
                            UInt64(r),
                            UInt64(p),
                            maxMemory,
                            output.baseAddress,
                            length
                        )
                    }
                }
            }
            guard status == 1 else {
                throw openSSLFailure(.internalFailure, "scrypt key derivation failed (logN=\(logN), r=\(r), p=\(p))")
            }
            initialized = length
        }
    }
}

/// HKDF (RFC 5869).
public enum HKDF {
    /// HKDF-SHA-256 extract-and-expand. An empty salt means "no salt" (a block of zeros, per the RFC).
    ///
    /// Stops the process only if OpenSSL itself is broken: with valid lengths HKDF cannot fail.
    public static func sha256(inputKey: [UInt8], salt: [UInt8], info: [UInt8], length: Int) -> [UInt8] {
        precondition((1...(255 * 32)).contains(length), "HKDF-SHA-256 output length \(length) is out of range")
        guard let kdf = EVP_KDF_fetch(nil, "HKDF", nil) else {
            fatalError("EVP_KDF_fetch(HKDF) failed: \(drainOpenSSLErrors())")
        }
        defer { EVP_KDF_free(kdf) }
        guard let context = EVP_KDF_CTX_new(kdf) else {
            fatalError("EVP_KDF_CTX_new(HKDF) failed: \(drainOpenSSLErrors())")
        }
        defer { EVP_KDF_CTX_free(context) }

        var key = inputKey.isEmpty ? [0] : inputKey
        var saltBytes = salt
        var infoBytes = info.isEmpty ? [0] : info
        return [UInt8](unsafeUninitializedCapacity: length) { output, initialized in
            let status = key.withUnsafeMutableBufferPointer { keyBuffer in
                saltBytes.withUnsafeMutableBufferPointer { saltBuffer in
                    infoBytes.withUnsafeMutableBufferPointer { infoBuffer in
                        var parameters: [OSSL_PARAM] = [
                            shim_OSSL_PARAM_kdf_digest_sha256(),
                            shim_OSSL_PARAM_kdf_key(keyBuffer.baseAddress, inputKey.count),
                            shim_OSSL_PARAM_kdf_info(infoBuffer.baseAddress, info.count),
                        ]
                        // Leaving the salt out is how OpenSSL spells "no salt"; an empty octet string is rejected
                        // by some 3.0.x releases.
                        if !salt.isEmpty {
                            parameters.append(shim_OSSL_PARAM_kdf_salt(saltBuffer.baseAddress, salt.count))
                        }
                        parameters.append(OSSL_PARAM_construct_end())
                        return EVP_KDF_derive(context, output.baseAddress, length, &parameters)
                    }
                }
            }
            guard status == 1 else {
                fatalError("HKDF-SHA-256 derivation failed: \(drainOpenSSLErrors())")
            }
            initialized = length
        }
    }
}

/// HMAC (RFC 2104).
public enum HMAC {
    /// HMAC-SHA-256; returns 32 bytes.
    public static func sha256(key: [UInt8], message: [UInt8]) -> [UInt8] {
        compute(EVP_sha256(), name: "SHA-256", length: 32, key: key, message: message)
    }

    /// HMAC-SHA-1; returns 20 bytes.
    ///
    /// Only for protocols that fix SHA-1, such as TOTP (RFC 6238) as authenticator apps implement it; HMAC-SHA-1
    /// is still sound as a MAC, but new formats should use `sha256`.
    public static func sha1(key: [UInt8], message: [UInt8]) -> [UInt8] {
        compute(EVP_sha1(), name: "SHA-1", length: 20, key: key, message: message)
    }

    private static func compute(
        _ digest: OpaquePointer?,
        name: String,
        length expected: Int,
        key: [UInt8],
        message: [UInt8]
    ) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: expected) { output, initialized in
            var length: UInt32 = 0
            let result = withNonNullBytes(key) { keyBase, keyCount in
                withNonNullBytes(message) { messageBase, messageCount in
                    COpenSSL.HMAC(
                        digest,
                        keyBase,
                        Int32(keyCount),
                        messageBase,
                        messageCount,
                        output.baseAddress,
                        &length
                    )
                }
            }
            guard result != nil, length == expected else {
                fatalError("HMAC-\(name) failed: \(drainOpenSSLErrors())")
            }
            initialized = expected
        }
    }
}
