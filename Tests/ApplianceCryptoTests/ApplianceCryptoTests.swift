import ApplianceCrypto
import Foundation
import Testing

private func hex(_ text: String) -> [UInt8] {
    [UInt8](hexString: text.filter { !$0.isWhitespace })!
}

@Suite("Known-answer vectors")
struct KnownAnswerTests {
    @Test func sha256OfABC() {
        #expect(
            SHA256Hasher.hash(Array("abc".utf8)).hexString
                == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        )
    }

    @Test func sha256IncrementalMatchesOneShotAndResets() {
        let message = [UInt8]((0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        let hasher = SHA256Hasher()
        hasher.update(Array(message[..<7]))
        message[7..<5000].withUnsafeBytes { hasher.update($0) }
        hasher.update(Array(message[5000...]))
        #expect(hasher.finalize() == SHA256Hasher.hash(message))
        // finalize() starts over, so the next digest is of the empty message.
        #expect(
            hasher.finalize().hexString == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        )
    }

    @Test func hexRoundTrip() {
        let bytes: [UInt8] = [0x00, 0x0f, 0xa5, 0xff]
        #expect(bytes.hexString == "000fa5ff")
        #expect([UInt8](hexString: "000FA5ff") == bytes)
        #expect([UInt8](hexString: "abc") == nil)
        #expect([UInt8](hexString: "zz") == nil)
    }

    /// RFC 4231 section 4.3, test case 2.
    @Test func hmacSHA256RFC4231Case2() {
        let mac = HMAC.sha256(key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8))
        #expect(mac.hexString == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    /// RFC 2202 section 3, test cases 1 and 2 (HMAC-SHA-1, which TOTP uses).
    @Test func hmacSHA1RFC2202() {
        let case1 = HMAC.sha1(key: [UInt8](repeating: 0x0b, count: 20), message: Array("Hi There".utf8))
        #expect(case1.hexString == "b617318655057264e28bc0b6fb378c8ef146be00")
        let case2 = HMAC.sha1(key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8))
        #expect(case2.hexString == "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79")
    }

    /// RFC 5869 appendix A.1, test case 1.
    @Test func hkdfSHA256RFC5869Case1() {
        let okm = HKDF.sha256(
            inputKey: [UInt8](repeating: 0x0b, count: 22),
            salt: hex("000102030405060708090a0b0c"),
            info: hex("f0f1f2f3f4f5f6f7f8f9"),
            length: 42
        )
        #expect(
            okm.hexString
                == "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
        )
    }

    /// An empty salt must behave as the RFC's default (hash-length zeros); age derives its header key that way.
    @Test func hkdfEmptySaltEqualsZeroSalt() {
        let key = [UInt8](repeating: 7, count: 16)
        let info = Array("header".utf8)
        #expect(
            HKDF.sha256(inputKey: key, salt: [], info: info, length: 32)
                == HKDF.sha256(inputKey: key, salt: [UInt8](repeating: 0, count: 32), info: info, length: 32)
        )
    }

    /// RFC 7914 section 12, the N=1024, r=8, p=16 vector.
    @Test func scryptRFC7914() throws {
        let key = try Scrypt.derive(
            password: Array("password".utf8),
            salt: Array("NaCl".utf8),
            logN: 10,
            r: 8,
            p: 16,
            length: 64
        )
        #expect(
            key
                == hex(
                    """
                    fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162
                    2eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640
                    """
                )
        )
    }

    /// RFC 7914 section 12, the empty password and salt vector (N=16, r=1, p=1).
    @Test func scryptRFC7914EmptyInputs() throws {
        let key = try Scrypt.derive(password: [], salt: [], logN: 4, r: 1, p: 1, length: 64)
        #expect(
            key
                == hex(
                    """
                    77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442
                    fcd0069ded0948f8326a753a0fc81f17e8d3e0fb2e0d3628cf35e20c38d18906
                    """
                )
        )
    }

    /// N = 2^18 with r = 8 needs 256 MiB, far above OpenSSL's default 32 MiB limit.
    @Test func scryptHandlesAgeWorkFactor() throws {
        let key = try Scrypt.derive(password: Array("pw".utf8), salt: [1, 2, 3], logN: 18, length: 32)
        #expect(key.count == 32)
    }

    @Test func scryptRejectsBadParameters() {
        #expect { try Scrypt.derive(password: [], salt: [], logN: 0, length: 32) } throws: { error in
            (error as? CryptoError)?.code == .invalidArgument
        }
        #expect { try Scrypt.derive(password: [], salt: [], logN: 10, r: 0, length: 32) } throws: { error in
            (error as? CryptoError)?.code == .invalidArgument
        }
    }
}

@Suite("ChaCha20-Poly1305")
struct ChaCha20Poly1305Tests {
    static let key = [UInt8](0x80...0x9f)
    static let nonce = hex("07000000 40414243 44454647")
    static let associatedData = hex("50515253 c0c1c2c3 c4c5c6c7")
    static let plaintext = Array(
        ("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, "
            + "sunscreen would be it.").utf8
    )
    static let sealed = hex(
        """
        d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6
        3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36
        92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc
        3ff4def08e4b7a9de576d26586cec64b6116
        1ae10b594f09e26a7e902ecbd0600691
        """
    )

    /// RFC 8439 section 2.8.2.
    @Test func rfc8439Vector() throws {
        let cipher = ChaCha20Poly1305(key: Self.key)
        #expect(cipher.seal(Self.plaintext, nonce: Self.nonce, associatedData: Self.associatedData) == Self.sealed)
        #expect(try cipher.open(Self.sealed, nonce: Self.nonce, associatedData: Self.associatedData) == Self.plaintext)
    }

    @Test func flippedBitFailsAuthentication() throws {
        let cipher = ChaCha20Poly1305(key: Self.key)
        for index in [0, 57, Self.sealed.count - 16, Self.sealed.count - 1] {
            var tampered = Self.sealed
            tampered[index] ^= 0x01
            #expect(throws: CryptoError.self) {
                try cipher.open(tampered, nonce: Self.nonce, associatedData: Self.associatedData)
            }
        }
        var otherNonce = Self.nonce
        otherNonce[11] ^= 0x80
        #expect { try cipher.open(Self.sealed, nonce: otherNonce, associatedData: Self.associatedData) } throws: {
            ($0 as? CryptoError)?.code == .authenticationFailed
        }
        #expect(throws: CryptoError.self) { try cipher.open(Self.sealed, nonce: Self.nonce) }
        #expect(throws: CryptoError.self) { try cipher.open([1, 2, 3], nonce: Self.nonce) }
        // A failure leaves the context usable.
        #expect(try cipher.open(Self.sealed, nonce: Self.nonce, associatedData: Self.associatedData) == Self.plaintext)
    }

    @Test func roundTripsManySizesOnOneInstance() throws {
        let cipher = ChaCha20Poly1305(key: SecureRandom.bytes(32))
        for size in [0, 1, 15, 16, 17, 65_536, 100_001] {
            let message = SecureRandom.bytes(size)
            let nonce = SecureRandom.bytes(12)
            let sealed = cipher.seal(message, nonce: nonce)
            #expect(sealed.count == size + 16)
            #expect(try cipher.open(sealed, nonce: nonce) == message)
        }
    }

    @Test func openIntoZeroesOutputOnFailure() {
        let cipher = ChaCha20Poly1305(key: Self.key)
        var tampered = Self.sealed
        tampered[3] ^= 0x10
        var output = [UInt8](repeating: 0xee, count: tampered.count)
        let failed = tampered.withUnsafeBytes { sealed in
            output.withUnsafeMutableBytes { out in
                (try? cipher.open(sealed, nonce: Self.nonce, associatedData: Self.associatedData, into: out)) == nil
            }
        }
        #expect(failed)
        #expect(output[..<(tampered.count - 16)].allSatisfy { $0 == 0 })
    }
}

@Suite("Randomness and passwords")
struct PasswordTests {
    @Test func secureRandomLengths() {
        #expect(SecureRandom.bytes(0).isEmpty)
        #expect(SecureRandom.bytes(33).count == 33)
        #expect(SecureRandom.bytes(32) != SecureRandom.bytes(32))
    }

    @Test func constantTimeEquals() {
        #expect(ConstantTime.equals([], []))
        #expect(ConstantTime.equals([1, 2, 3], [1, 2, 3]))
        #expect(!ConstantTime.equals([1, 2, 3], [1, 2, 4]))
        #expect(!ConstantTime.equals([1, 2, 3], [1, 2]))
    }

    @Test func passwordHashRoundTrip() throws {
        let encoded = PasswordHash.make("correct horse battery staple")
        let fields = encoded.split(separator: "$")
        #expect(fields.count == 6)
        #expect(fields[0...3] == ["scrypt", "14", "8", "1"])
        #expect(PasswordHash.verify("correct horse battery staple", against: encoded))
        #expect(!PasswordHash.verify("correct horse battery stapler", against: encoded))
        #expect(!PasswordHash.verify("", against: encoded))
        // Salted: the same password hashes differently each time.
        #expect(PasswordHash.make("pw") != PasswordHash.make("pw"))
    }

    @Test func passwordHashUnicodeAndEmpty() {
        let encoded = PasswordHash.make("pässwörd ✓")
        #expect(PasswordHash.verify("pässwörd ✓", against: encoded))
        #expect(!PasswordHash.verify("passwörd ✓", against: encoded))
        let empty = PasswordHash.make("")
        #expect(PasswordHash.verify("", against: empty))
        #expect(!PasswordHash.verify(" ", against: empty))
    }

    @Test func passwordHashRejectsMalformedEncodings() {
        let valid = PasswordHash.make("pw")
        let fields = valid.split(separator: "$", omittingEmptySubsequences: false).map(String.init)
        let malformed = [
            "",
            "pw",
            "bcrypt$14$8$1$\(fields[4])$\(fields[5])",
            "scrypt$30$8$1$\(fields[4])$\(fields[5])",  // Work factor too large to be allowed.
            "scrypt$14$8$1$!!!$\(fields[5])",
            "scrypt$14$8$1$\(fields[4])$",
            "scrypt$14$8$1$\(fields[4])$\(fields[5])$extra",
        ]
        for encoded in malformed {
            #expect(!PasswordHash.verify("pw", against: encoded), "accepted \(encoded)")
        }
    }
}

@Suite("Certificates")
struct CertificateTests {
    private func openssl() throws -> String {
        try #require(ExternalTool.find("openssl"), "the openssl CLI is needed: apt-get install openssl")
    }

    @Test func selfSignedCertificateHasRequestedContents() throws {
        let openssl = try openssl()
        let (certificatePEM, keyPEM) = try SelfSignedCertificate.make(
            commonName: "appliance.example.test",
            dnsNames: ["appliance.example.test", "appliance.local"],
            ipAddresses: ["192.168.10.20", "fd00::1"],
            validDays: 825
        )
        #expect(certificatePEM.hasPrefix("-----BEGIN CERTIFICATE-----\n"))
        #expect(keyPEM.hasPrefix("-----BEGIN PRIVATE KEY-----\n"))  // PKCS#8, unencrypted.

        let directory = try ExternalTool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let certificatePath = directory.appendingPathComponent("cert.pem").path
        try Data(certificatePEM.utf8).write(to: URL(fileURLWithPath: certificatePath))

        let result = try ExternalTool.run(openssl, ["x509", "-in", certificatePath, "-noout", "-text"])
        #expect(result.status == 0, "openssl x509 failed: \(result.stderr)")
        let text = result.stdoutText
        for expected in [
            "Version: 3 (0x2)",
            "Signature Algorithm: ecdsa-with-SHA256",
            "Issuer: CN = appliance.example.test",
            "Subject: CN = appliance.example.test",
            "NIST CURVE: P-256",
            "X509v3 Basic Constraints: critical",
            "CA:FALSE",
            "Digital Signature",
            "TLS Web Server Authentication",
            "DNS:appliance.example.test",
            "DNS:appliance.local",
            "IP Address:192.168.10.20",
            "IP Address:FD00:0:0:0:0:0:0:1",
        ] {
            #expect(text.contains(expected), "missing \(expected) in:\n\(text)")
        }
        // A positive 16-byte serial prints as 16 colon-separated bytes without a leading 00.
        let serial = try #require(
            text.split(separator: "\n").drop(while: { !$0.contains("Serial Number:") }).dropFirst().first
        )
        let serialBytes = serial.trimmingCharacters(in: .whitespaces).split(separator: ":")
        #expect(serialBytes.count == 16 && serialBytes.first != "00", "serial line: \(serial)")

        // Valid now (notBefore is backdated) and for the requested period.
        let checkNow = try ExternalTool.run(openssl, ["x509", "-in", certificatePath, "-noout", "-checkend", "0"])
        #expect(checkNow.status == 0, "certificate not valid now: \(checkNow.stdoutText)")
        let checkLater = try ExternalTool.run(
            openssl,
            ["x509", "-in", certificatePath, "-noout", "-checkend", String(826 * 86_400)]
        )
        #expect(checkLater.status != 0, "certificate valid for longer than requested")
    }

    @Test func publicKeyPinMatchesOpenSSL() throws {
        let openssl = try openssl()
        let (certificatePEM, keyPEM) = try SelfSignedCertificate.make(
            commonName: "pin-test",
            dnsNames: ["pin-test.local"],
            ipAddresses: [],
            validDays: 30
        )
        let pin = try PublicKeyPin.sha256(certificatePEM: certificatePEM)
        #expect(pin.hasPrefix("sha256:") && pin.count == 7 + 64)

        // From the private key, as the pin would be computed by an operator with the key file.
        let fromKey = try ExternalTool.shell(
            "\(openssl) pkey -pubout | \(openssl) pkey -pubin -outform DER | sha256sum",
            input: Array(keyPEM.utf8)
        )
        #expect(fromKey.status == 0, "openssl pipeline failed: \(fromKey.stderr)")
        #expect("sha256:" + (fromKey.stdoutText.split(separator: " ").first ?? "") == pin)

        // From the certificate.
        let fromCertificate = try ExternalTool.shell(
            "\(openssl) x509 -pubkey -noout | \(openssl) pkey -pubin -outform DER | sha256sum",
            input: Array(certificatePEM.utf8)
        )
        #expect("sha256:" + (fromCertificate.stdoutText.split(separator: " ").first ?? "") == pin)

        let spki = try PublicKeyPin.subjectPublicKeyInfo(certificatePEM: certificatePEM)
        #expect(PublicKeyPin.sha256(spkiDER: spki) == pin)
    }

    @Test func eachCertificateHasAFreshKey() throws {
        let first = try SelfSignedCertificate.make(commonName: "a", dnsNames: [], ipAddresses: [], validDays: 1)
        let second = try SelfSignedCertificate.make(commonName: "a", dnsNames: [], ipAddresses: [], validDays: 1)
        #expect(
            try PublicKeyPin.sha256(certificatePEM: first.certificatePEM)
                != PublicKeyPin.sha256(certificatePEM: second.certificatePEM)
        )
    }

    @Test func rejectsInvalidInput() {
        let cases: [(commonName: String, dnsNames: [String], ipAddresses: [String], validDays: Int)] = [
            ("x", [], ["300.1.1.1"], 1),
            ("x", [], ["appliance.local"], 1),
            ("x", ["bad name"], [], 1),
            ("x", ["a,DNS:b"], [], 1),
            ("", [], [], 1),
            (String(repeating: "c", count: 65), [], [], 1),
            ("x", [], [], 0),
        ]
        for input in cases {
            #expect {
                try SelfSignedCertificate.make(
                    commonName: input.commonName,
                    dnsNames: input.dnsNames,
                    ipAddresses: input.ipAddresses,
                    validDays: input.validDays
                )
            } throws: {
                ($0 as? CryptoError)?.code == .invalidArgument
            }
        }
        #expect { try PublicKeyPin.sha256(certificatePEM: "not a certificate") } throws: {
            ($0 as? CryptoError)?.code == .invalidCertificate
        }
    }
}
