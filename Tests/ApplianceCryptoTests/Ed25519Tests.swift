import ApplianceCrypto
import Foundation
import Testing

private func hex(_ text: String) -> [UInt8] {
    [UInt8](hexString: text.filter { !$0.isWhitespace })!
}

@Suite("Ed25519")
struct Ed25519Tests {
    /// RFC 8032 section 7.1, TEST 1 (the empty message).
    @Test func rfc8032Test1() throws {
        let key = try Ed25519PrivateKey(raw: hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"))
        #expect(key.publicKey.raw == hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"))
        let expected = hex(
            """
            e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595
            bbe24655141438e7a100b
            """
        )
        #expect(key.sign([]) == expected)
        #expect(key.publicKey.isValidSignature(expected, for: []))
        #expect(!key.publicKey.isValidSignature(expected, for: [0]))
    }

    /// RFC 8032 section 7.1, TEST 2 (one byte, 0x72).
    @Test func rfc8032Test2() throws {
        let key = try Ed25519PrivateKey(raw: hex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"))
        let publicKey = try Ed25519PublicKey(
            raw: hex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c")
        )
        #expect(key.publicKey == publicKey)
        let expected = hex(
            """
            92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb43
            02aeeb00d291612bb0c00
            """
        )
        #expect(key.sign([0x72]) == expected)
        #expect(publicKey.isValidSignature(expected, for: [0x72]))
    }

    @Test func signAndVerifyRoundTrip() {
        let key = Ed25519PrivateKey()
        let other = Ed25519PrivateKey()
        #expect(key.publicKey != other.publicKey)
        let message = [UInt8]((0..<10_000).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        let signature = key.sign(message)
        #expect(signature.count == 64)
        #expect(key.sign(message) == signature, "Ed25519 signatures are deterministic")
        #expect(key.publicKey.isValidSignature(signature, for: message))
        #expect(!other.publicKey.isValidSignature(signature, for: message), "another key must not verify")
    }

    @Test func tamperedMessageOrSignatureFails() {
        let key = Ed25519PrivateKey()
        let message = Array("install core 2.0".utf8)
        let signature = key.sign(message)
        var changedMessage = message
        changedMessage[0] ^= 0x01
        #expect(!key.publicKey.isValidSignature(signature, for: changedMessage))
        for index in [0, 31, 32, 63] {
            var changedSignature = signature
            changedSignature[index] ^= 0x80
            #expect(!key.publicKey.isValidSignature(changedSignature, for: message), "byte \(index) flipped")
        }
        #expect(!key.publicKey.isValidSignature(Array(signature.dropLast()), for: message))
        #expect(!key.publicKey.isValidSignature([], for: message))
        #expect(!key.publicKey.isValidSignature(signature + [0], for: message))
    }

    @Test func pemRoundTrip() throws {
        let key = Ed25519PrivateKey()
        let pem = key.pem
        #expect(pem.hasPrefix("-----BEGIN PRIVATE KEY-----\n"))
        let reread = try Ed25519PrivateKey(pem: pem)
        #expect(reread.publicKey == key.publicKey)
        #expect(reread.sign([1, 2, 3]) == key.sign([1, 2, 3]))
        #expect(reread.pem == pem)

        let publicPEM = key.publicKey.pem
        #expect(publicPEM.hasPrefix("-----BEGIN PUBLIC KEY-----\n"))
        #expect(try Ed25519PublicKey(pem: publicPEM) == key.publicKey)
    }

    @Test func keyIdAndCodableForm() throws {
        let key = try Ed25519PrivateKey(raw: [UInt8](repeating: 7, count: 32))
        let publicKey = key.publicKey
        #expect(publicKey.keyId == String(SHA256Hasher.hash(publicKey.raw).hexString.prefix(16)))
        #expect(publicKey.keyId.count == 16)
        let json = try JSONEncoder().encode([publicKey])
        #expect(String(decoding: json, as: UTF8.self) == "[\"\(Data(publicKey.raw).base64EncodedString())\"]")
        #expect(try JSONDecoder().decode([Ed25519PublicKey].self, from: json) == [publicKey])
        #expect(try Ed25519PublicKey(base64: publicKey.base64) == publicKey)
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode([Ed25519PublicKey].self, from: Data("[\"AAAA\"]".utf8))
        }
        // Printing a private key must not reveal it.
        #expect(!"\(key)".contains("0707"))
        #expect("\(key)".contains(publicKey.keyId))
    }

    @Test func malformedKeysAreRefused() throws {
        let short = #expect(throws: CryptoError.self) { try Ed25519PublicKey(raw: [1, 2, 3]) }
        #expect(short?.code == .invalidArgument)
        #expect(throws: CryptoError.self) { try Ed25519PrivateKey(raw: [UInt8](repeating: 1, count: 31)) }
        #expect(throws: CryptoError.self) { try Ed25519PublicKey(base64: "not base64!") }
        let garbage = #expect(throws: CryptoError.self) { try Ed25519PrivateKey(pem: "hello") }
        #expect(garbage?.code == .invalidCertificate)
        #expect(throws: CryptoError.self) { try Ed25519PublicKey(pem: Ed25519PrivateKey().pem) }

        // A P-256 key is a valid PEM private key, but not an Ed25519 one.
        let (_, p256PEM) = try SelfSignedCertificate.make(
            commonName: "x",
            dnsNames: [],
            ipAddresses: [],
            validDays: 1
        )
        let wrongAlgorithm = #expect(throws: CryptoError.self) { try Ed25519PrivateKey(pem: p256PEM) }
        #expect(wrongAlgorithm?.message.contains("not an Ed25519 key") == true)
    }
}

@Suite("Ed25519 against the openssl command")
struct Ed25519OpenSSLTests {
    private static func openssl() throws -> String {
        try #require(
            ExternalTool.find("openssl"),
            "the openssl command is needed; install it with apt-get install openssl"
        )
    }

    @Test func opensslDerivesTheSamePublicKey() throws {
        let openssl = try Self.openssl()
        let directory = try ExternalTool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let key = Ed25519PrivateKey()
        let keyFile = directory.appendingPathComponent("key.pem")
        try Data(key.pem.utf8).write(to: keyFile)

        let result = try ExternalTool.run(openssl, ["pkey", "-in", keyFile.path, "-pubout"])
        try #require(result.status == 0, "openssl pkey failed: \(result.stderr)")
        #expect(result.stdoutText == key.publicKey.pem)
    }

    @Test func opensslKeysAndSignaturesAgree() throws {
        let openssl = try Self.openssl()
        let directory = try ExternalTool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let keyFile = directory.appendingPathComponent("key.pem")
        let messageFile = directory.appendingPathComponent("message")
        let generated = try ExternalTool.run(openssl, ["genpkey", "-algorithm", "ed25519", "-out", keyFile.path])
        try #require(generated.status == 0, "openssl genpkey failed: \(generated.stderr)")
        let key = try Ed25519PrivateKey(pem: String(decoding: try Data(contentsOf: keyFile), as: UTF8.self))
        let message = Array("a package manifest".utf8)
        try Data(message).write(to: messageFile)

        let signed = try ExternalTool.run(
            openssl,
            ["pkeyutl", "-sign", "-inkey", keyFile.path, "-rawin", "-in", messageFile.path]
        )
        try #require(signed.status == 0, "openssl pkeyutl -sign failed: \(signed.stderr)")
        #expect(signed.stdout == key.sign(message))
        #expect(key.publicKey.isValidSignature(signed.stdout, for: message))
    }

    @Test func encryptedKeyIsRefusedWithAdvice() throws {
        let openssl = try Self.openssl()
        let directory = try ExternalTool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let keyFile = directory.appendingPathComponent("key.pem")
        let generated = try ExternalTool.run(
            openssl,
            ["genpkey", "-algorithm", "ed25519", "-aes-128-cbc", "-pass", "pass:secret", "-out", keyFile.path]
        )
        try #require(generated.status == 0, "openssl genpkey failed: \(generated.stderr)")
        let pem = String(decoding: try Data(contentsOf: keyFile), as: UTF8.self)
        let error = #expect(throws: CryptoError.self) { try Ed25519PrivateKey(pem: pem) }
        #expect(error?.message.contains("without a passphrase") == true)
    }
}
