import Foundation

/// The base64 dialect of the age header: standard alphabet, no padding, canonical encodings only.
enum UnpaddedBase64 {
    static func encode(_ bytes: [UInt8]) -> String {
        var text = Data(bytes).base64EncodedString()
        while text.last == "=" {
            text.removeLast()
        }
        return text
    }

    /// Decodes strictly: rejects padding, characters outside the alphabet, impossible lengths and non-zero
    /// trailing bits, so every header has exactly one valid spelling (age requires this; it also keeps the header
    /// MAC meaningful).
    static func decode<Bytes: Collection<UInt8>>(_ text: Bytes) -> [UInt8]? {
        guard text.count % 4 != 1 else {
            return nil
        }
        for character in text {
            switch character {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "+"), UInt8(ascii: "/"):
                continue
            default:
                return nil
            }
        }
        var padded = Array(text)
        while padded.count % 4 != 0 {
            padded.append(UInt8(ascii: "="))
        }
        guard let data = Data(base64Encoded: Data(padded)) else {
            return nil
        }
        let bytes = [UInt8](data)
        guard Array(encode(bytes).utf8) == Array(text) else {
            return nil
        }
        return bytes
    }
}
