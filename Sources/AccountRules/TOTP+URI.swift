extension TOTP {
    /// The `otpauth://` URI that authenticator apps read from the QR code (Google Authenticator's key URI format):
    /// `otpauth://totp/ISSUER:ACCOUNT?secret=…&issuer=…&algorithm=SHA1&digits=6&period=30`.
    ///
    /// Issuer and account are percent-encoded (everything but RFC 3986's unreserved characters), so names with
    /// spaces, `&`, `?` or non-ASCII letters survive.
    ///
    /// - Throws: `AccountError.invalidAccountLabel` when issuer or account is empty or contains a colon, which
    ///   the format reserves as their separator (apps would split the name in the wrong place).
    public func uri(issuer: String, account: String) throws -> String {
        for (field, value) in [("issuer", issuer), ("account name", account)] {
            guard !value.isEmpty, !value.contains(":") else {
                throw AccountError(
                    code: .invalidAccountLabel,
                    message: "The \(field) of the authenticator entry must be non-empty and contain no ':' "
                        + "(got \"\(value)\"); change the site name or user name."
                )
            }
        }
        let label = Self.percentEncoded(issuer) + ":" + Self.percentEncoded(account)
        return "otpauth://totp/\(label)?secret=\(base32Secret)&issuer=\(Self.percentEncoded(issuer))"
            + "&algorithm=SHA1&digits=\(digits)&period=\(period)"
    }

    /// Percent-encodes the UTF-8 of `text`, keeping only RFC 3986 unreserved characters.
    static func percentEncoded(_ text: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var output = [UInt8]()
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                output.append(byte)
            default:
                output += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0x0f)]]
            }
        }
        return String(decoding: output, as: UTF8.self)
    }
}
