import ApplianceCrypto

/// Time-based one-time passwords (RFC 6238) with HMAC-SHA-1, as authenticator apps implement them.
///
/// Pure: the caller passes the time as seconds since 1970, so every rule is testable without a clock.
public struct TOTP: Sendable, Equatable {
    /// What the product uses: 6 digits, 30-second steps (the RFC's test vectors use 8 digits).
    public static let productDigits = 6
    public static let productPeriod = 30
    /// RFC 4226 section 4 asks for at least 128 bits of secret; we issue 160 (the SHA-1 block output size).
    public static let minimumSecretBytes = 16
    public static let issuedSecretBytes = 20

    public let secret: [UInt8]
    public let digits: Int
    public let period: Int

    /// - Throws: `AccountError.invalidSecret` when the secret is shorter than 16 bytes, `digits` is not 6–8 or
    ///   `period` is not positive.
    public init(secret: [UInt8], digits: Int = TOTP.productDigits, period: Int = TOTP.productPeriod) throws {
        guard secret.count >= Self.minimumSecretBytes else {
            throw AccountError(
                code: .invalidSecret,
                message: "The TOTP secret has \(secret.count) bytes; at least \(Self.minimumSecretBytes) are "
                    + "needed. Enrol the authenticator app again to get a new secret."
            )
        }
        guard (6...8).contains(digits), period > 0 else {
            throw AccountError(
                code: .invalidSecret,
                message: "TOTP needs 6 to 8 digits and a positive period (got \(digits) digits, \(period) s)."
            )
        }
        self.secret = secret
        self.digits = digits
        self.period = period
    }

    /// A new product TOTP with a fresh random secret, for enrolment.
    public static func generate() -> TOTP {
        // 20 random bytes always pass the length check.
        // swift-format-ignore: NeverUseForceTry
        try! TOTP(secret: SecureRandom.bytes(issuedSecretBytes))
    }

    /// The secret as authenticator apps show and accept it for manual entry.
    public var base32Secret: String {
        Base32.encode(secret)
    }

    /// The time step that `unixTime` falls in (RFC 6238's T, with T0 = 0).
    ///
    /// - Throws: `AccountError.invalidCode` for a time before 1970, which only a broken clock gives.
    public func step(at unixTime: Int64) throws -> Int64 {
        guard unixTime >= 0 else {
            throw AccountError(
                code: .invalidCode,
                message: "The clock reads \(unixTime) s before 1970; set the appliance clock (NTP) and try again."
            )
        }
        return unixTime / Int64(period)
    }

    /// The code for a time step (RFC 4226 HOTP with the step as counter), zero-padded to `digits`.
    public func code(forStep step: Int64) -> String {
        var counter = [UInt8](repeating: 0, count: 8)
        for index in 0..<8 {
            counter[index] = UInt8(truncatingIfNeeded: UInt64(bitPattern: step) >> UInt64(56 - 8 * index))
        }
        let mac = HMAC.sha1(key: secret, message: counter)
        // Dynamic truncation (RFC 4226 section 5.3).
        let offset = Int(mac[mac.count - 1] & 0x0f)
        let binary =
            UInt32(mac[offset] & 0x7f) << 24 | UInt32(mac[offset + 1]) << 16 | UInt32(mac[offset + 2]) << 8
            | UInt32(mac[offset + 3])
        var modulus: UInt32 = 1
        for _ in 0..<digits {
            modulus *= 10
        }
        let text = String(binary % modulus)
        return String(repeating: "0", count: digits - text.count) + text
    }

    /// The code valid at `unixTime`.
    public func code(at unixTime: Int64) throws -> String {
        code(forStep: try step(at: unixTime))
    }

    /// The step among the current and the previous one whose code equals `code`, newest first; nil when neither.
    ///
    /// Accepting the previous step makes each code valid for two steps (60 s), which covers a user who types a
    /// code just before it rolls over. Spaces are ignored because apps show codes as "123 456".
    ///
    /// - Throws: `AccountError.invalidCode` when the code is not `digits` decimal digits.
    public func matchingStep(of code: String, at unixTime: Int64) throws -> Int64? {
        let typed = Array(code.utf8.filter { $0 != UInt8(ascii: " ") })
        guard typed.count == digits, typed.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) })
        else {
            throw AccountError(
                code: .invalidCode,
                message: "A code has \(digits) digits; type the code your authenticator app shows now."
            )
        }
        let current = try step(at: unixTime)
        for candidate in [current, current - 1] where candidate >= 0 {
            if ConstantTime.equals(Array(self.code(forStep: candidate).utf8), typed) {
                return candidate
            }
        }
        return nil
    }
}
