/// Base32 (RFC 4648 section 6) as authenticator apps expect TOTP secrets: the `A–Z2–7` alphabet, no `=` padding.
public enum Base32 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".utf8)

    /// Encodes `bytes` as unpadded upper-case base32.
    public static func encode(_ bytes: [UInt8]) -> String {
        var text = [UInt8]()
        text.reserveCapacity((bytes.count * 8 + 4) / 5)
        var buffer: UInt32 = 0
        var bits = 0
        for byte in bytes {
            buffer = buffer << 8 | UInt32(byte)
            bits += 8
            while bits >= 5 {
                bits -= 5
                text.append(alphabet[Int(buffer >> UInt32(bits) & 0x1f)])
            }
        }
        if bits > 0 {
            text.append(alphabet[Int(buffer << UInt32(5 - bits) & 0x1f)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// Decodes unpadded base32; lower-case letters are accepted because people type secrets by hand.
    ///
    /// - Throws: `AccountError.invalidSecret` for padding, any character outside the alphabet, a length no
    ///   encoder produces, or non-zero unused trailing bits (so every secret has exactly one spelling).
    public static func decode(_ text: String) throws -> [UInt8] {
        var bytes = [UInt8]()
        var buffer: UInt32 = 0
        var bits = 0
        for (position, character) in text.utf8.enumerated() {
            guard let value = value(of: character) else {
                throw invalid(character: character, position: position + 1)
            }
            buffer = buffer << 5 | UInt32(value)
            bits += 5
            if bits >= 8 {
                bits -= 8
                bytes.append(UInt8(truncatingIfNeeded: buffer >> UInt32(bits)))
            }
        }
        // Whole bytes leave 0, 2, 4, 1 or 3 bits over; 5 or more means a character too many.
        guard bits < 5 else {
            throw AccountError(
                code: .invalidSecret,
                message: "The base32 text has \(text.utf8.count) characters, a length no encoder produces; "
                    + "copy the whole secret again."
            )
        }
        guard buffer & (1 << UInt32(bits) - 1) == 0 else {
            throw AccountError(
                code: .invalidSecret,
                message: "The last character of the base32 text is not a valid ending; copy the whole secret again."
            )
        }
        return bytes
    }

    private static func value(of character: UInt8) -> UInt8? {
        switch character {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): character - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): character - UInt8(ascii: "a")
        case UInt8(ascii: "2")...UInt8(ascii: "7"): character - UInt8(ascii: "2") + 26
        default: nil
        }
    }

    private static func invalid(character: UInt8, position: Int) -> AccountError {
        let shown =
            character == UInt8(ascii: "=")
            ? "padding '='"
            : (0x21...0x7e).contains(character)
                ? "'\(Character(Unicode.Scalar(character)))'" : "byte 0x\(String(character, radix: 16))"
        return AccountError(
            code: .invalidSecret,
            message: "The base32 text has \(shown) at character \(position); only A–Z and 2–7 are allowed, "
                + "without spaces or padding."
        )
    }
}
