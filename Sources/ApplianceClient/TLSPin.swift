import ApplianceCrypto

/// A public-key pin: `"sha256:"` followed by the lowercase hex SHA-256 of a certificate's DER
/// SubjectPublicKeyInfo.
///
/// Pinning the key rather than the certificate means an appliance can renew its self-signed certificate with the
/// same key without breaking trust.
public struct TLSPin: Sendable, Hashable, Codable, CustomStringConvertible, LosslessStringConvertible {
    private static let prefix = "sha256:"

    /// The 32-byte SHA-256 digest of the SubjectPublicKeyInfo.
    public let digest: [UInt8]

    /// Creates the pin of a DER-encoded SubjectPublicKeyInfo.
    public init(spkiDER: [UInt8]) {
        self.digest = SHA256Hasher.hash(spkiDER)
    }

    /// Parses `"sha256:<64 hex digits>"`. The prefix and the hex digits may be in either case; anything else
    /// (missing prefix, wrong length, stray characters or whitespace) returns nil.
    public init?(_ description: String) {
        let utf8 = Array(description.utf8)
        let prefix = Array(Self.prefix.utf8)
        guard utf8.count == prefix.count + 64 else {
            return nil
        }
        for (byte, expected) in zip(utf8, prefix) where Self.lowercased(byte) != expected {
            return nil
        }
        var digest: [UInt8] = []
        digest.reserveCapacity(32)
        var index = prefix.count
        while index < utf8.count {
            guard let high = Self.hexValue(utf8[index]), let low = Self.hexValue(utf8[index + 1]) else {
                return nil
            }
            digest.append(high << 4 | low)
            index += 2
        }
        self.digest = digest
    }

    /// The canonical form, `"sha256:"` followed by 64 lowercase hex digits.
    public var description: String {
        let hexDigits = Array("0123456789abcdef".utf8)
        var text = Array(Self.prefix.utf8)
        for byte in self.digest {
            text.append(hexDigits[Int(byte >> 4)])
            text.append(hexDigits[Int(byte & 0x0f)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let pin = TLSPin(text) else {
            throw DecodingError.dataCorruptedError(
                in: container,
                debugDescription: "expected a key pin of the form sha256:<64 hex digits>, got \"\(text)\""
            )
        }
        self = pin
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(self.description)
    }

    private static func lowercased(_ byte: UInt8) -> UInt8 {
        (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte + 32 : byte
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
