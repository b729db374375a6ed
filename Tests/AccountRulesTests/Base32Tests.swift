import AccountRules
import SeededRandom
import Testing

@Suite struct Base32Tests {
    /// RFC 4648 section 10, without the padding authenticator apps do not use.
    @Test(arguments: [
        ("", ""), ("f", "MY"), ("fo", "MZXQ"), ("foo", "MZXW6"), ("foob", "MZXW6YQ"), ("fooba", "MZXW6YTB"),
        ("foobar", "MZXW6YTBOI"),
    ])
    func rfc4648Vectors(plain: String, encoded: String) throws {
        #expect(Base32.encode(Array(plain.utf8)) == encoded)
        #expect(try Base32.decode(encoded) == Array(plain.utf8))
        #expect(try Base32.decode(encoded.lowercased()) == Array(plain.utf8))
    }

    @Test func roundTripsEveryLength() throws {
        var random = SeededGenerator(seed: 4648)
        for length in 0...64 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
            let text = Base32.encode(bytes)
            #expect(!text.contains("="))
            #expect(try Base32.decode(text) == bytes)
        }
    }

    @Test(arguments: [
        "MZXW6===",  // padding
        "MZXW6YQ=",
        "MZ1Q",  // 1 is not in the alphabet
        "MZ0Q",
        "MZ XQ",  // a space
        "MZXQ\n",
        "MZ-XQ",
        "MÜXQ",
        "M",  // lengths no encoder produces
        "MZX",
        "MZXW6Y",
        "MZ",  // non-zero unused bits ("MY" is the spelling of "f")
    ])
    func refuses(text: String) {
        let error = #expect(throws: AccountError.self) { try Base32.decode(text) }
        #expect(error?.code == .invalidSecret)
    }

    @Test func messageNamesTheCharacter() {
        let error = #expect(throws: AccountError.self) { try Base32.decode("MZ1Q") }
        #expect(error?.message.contains("'1' at character 3") == true)
    }
}
