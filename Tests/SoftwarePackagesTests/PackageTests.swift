import ApplianceCrypto
import BackupFormat
import Foundation
import SoftwarePackages
import Testing

@Suite("Package build and verify")
struct PackageTests {
    let vendor = Ed25519PrivateKey()

    @Test func buildAndVerifyRoundTripFromFile() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        // Larger than one 1 MiB read and not a multiple of 512, so streaming and padding are both exercised.
        let payload = testBytes(2_500_123, seed: 1)
        let payloadFile = directory.appendingPathComponent("payload.bin")
        try writeBytes(payload, to: payloadFile)
        let output = directory.appendingPathComponent("core_2.0.pkg")
        let createdAt = Date(timeIntervalSince1970: 1_767_225_600.75)

        let built = try PackageBuilder.build(
            name: "core",
            kind: .base,
            version: "2.0",
            requires: [PackageManifest.Requirement(name: "firmware", minimumVersion: "1.4")],
            eula: "You may use this.",
            description: "The core system",
            createdAt: createdAt,
            payload: payloadFile,
            signingKey: vendor,
            to: output
        )
        #expect(built.formatVersion == 1)
        #expect(built.payloadSize == Int64(payload.count))
        #expect(built.payloadSHA256 == SHA256Hasher.hash(payload).hexString)
        #expect(built.signingKeyId == vendor.publicKey.keyId)
        #expect(built.createdAt == Date(timeIntervalSince1970: 1_767_225_600), "rounded down to the second")

        let verified = try PackageVerifier.verify(
            file: output,
            trustedKeys: [Ed25519PrivateKey().publicKey, vendor.publicKey]
        )
        #expect(verified.manifest == built)
        #expect(verified.signingKey == vendor.publicKey)
        #expect(verified.payloadLength == Int64(payload.count))
        let fileBytes = try readBytes(output)
        let offset = Int(verified.payloadOffset)
        #expect(Array(fileBytes[offset..<offset + payload.count]) == payload)

        var streamed: [UInt8] = []
        try verified.readPayload { streamed += $0 }
        #expect(streamed == payload)
        let extracted = directory.appendingPathComponent("extracted.bin")
        try verified.copyPayload(to: extracted)
        #expect(try readBytes(extracted) == payload)
        // No scratch files are left next to the output.
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
                == ["core_2.0.pkg", "extracted.bin", "payload.bin"]
        )
    }

    @Test func packageLayoutIsPlainTarInOrder() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let payload = Array("opaque".utf8)
        let output = try buildPackage("site", "24.1", kind: .site, payload: payload, key: vendor, in: directory)

        var reader = TarReader()
        var members: [(String, [UInt8])] = []
        for event in try reader.feed(try readBytes(output)) {
            switch event {
            case .entryStart(let name, _): members.append((name, []))
            case .entryData(let bytes): members[members.count - 1].1 += bytes
            default: break
            }
        }
        try reader.finish()
        #expect(members.map(\.0) == ["manifest.json", "signature", "payload"])
        let manifestBytes = members[0].1
        #expect(vendor.publicKey.isValidSignature(members[1].1, for: manifestBytes))
        #expect(members[1].1.count == 64)
        #expect(members[2].1 == payload)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(manifestBytes)) as? [String: Any])
        #expect(json["name"] as? String == "site")
        #expect(json["kind"] as? String == "site")
        #expect(json["formatVersion"] as? Int == 1)
        #expect((json["createdAt"] as? String)?.hasSuffix("Z") == true)
    }

    @Test func emptyPayloadFromBytes() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = try buildPackage("empty", "1", payload: [], key: vendor, in: directory)
        let verified = try PackageVerifier.verify(file: output, trustedKeys: [vendor.publicKey])
        #expect(verified.payloadLength == 0)
        #expect(verified.manifest.payloadSHA256 == SHA256Hasher.hash([]).hexString)
        var pieces = 0
        try verified.readPayload { _ in pieces += 1 }
        #expect(pieces == 0)
    }

    @Test func refusesUnknownSigningKey() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = try buildPackage("core", "2.0", key: vendor, in: directory)
        let error = expectPackageError(.untrustedKey) {
            _ = try PackageVerifier.verify(file: output, trustedKeys: [Ed25519PrivateKey().publicKey])
        }
        #expect(
            error?.message.contains("signed by key \(vendor.publicKey.keyId) which this appliance does not trust")
                == true
        )
        expectPackageError(.untrustedKey) {
            _ = try PackageVerifier.verify(file: output, trustedKeys: [])
        }
    }

    @Test func refusesFlippedSignatureByte() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = try buildPackage("core", "2.0", key: vendor, in: directory)
        let offset = Int(try PackageVerifier.verify(file: output, trustedKeys: [vendor.publicKey]).payloadOffset)
        var bytes = try readBytes(output)
        // The 64 signature bytes fill the start of the block before the payload's header block.
        let signatureStart = offset - 1024
        let manifestBytes = Array(bytes[512..<512 + Int(try manifestSize(bytes))])
        #expect(Array(bytes[signatureStart..<signatureStart + 64]) == vendor.sign(manifestBytes))
        bytes[signatureStart + 10] ^= 0x01
        try writeBytes(bytes, to: output)
        let error = expectPackageError(.badSignature) {
            _ = try PackageVerifier.verify(file: output, trustedKeys: [vendor.publicKey])
        }
        #expect(error?.message.contains("does not match its manifest") == true)
    }

    @Test func refusesChangedManifest() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = try buildPackage("core", "2.0", key: vendor, in: directory)
        var bytes = try readBytes(output)
        // Raise the version inside the signed JSON ("2.0" -> "3.0"); the tar checksum does not cover data.
        let text = Array("\"version\" : \"2.0\"".utf8)
        let start = try #require(
            (0..<1024).first { bytes[$0..<min($0 + text.count, bytes.count)].elementsEqual(text) }
        )
        bytes[start + text.count - 4] = UInt8(ascii: "3")
        try writeBytes(bytes, to: output)
        expectPackageError(.badSignature) {
            _ = try PackageVerifier.verify(file: output, trustedKeys: [vendor.publicKey])
        }
    }

    @Test func refusesTamperedPayloadByte() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let payload = testBytes(10_000, seed: 2)
        let output = try buildPackage("core", "2.0", payload: payload, key: vendor, in: directory)
        let verified = try PackageVerifier.verify(file: output, trustedKeys: [vendor.publicKey])
        var bytes = try readBytes(output)
        bytes[Int(verified.payloadOffset) + 5_000] ^= 0x40
        try writeBytes(bytes, to: output)

        // A file changed after verification is caught when the payload is used.
        let extracted = directory.appendingPathComponent("extracted.bin")
        expectPackageError(.tamperedPayload) { try verified.copyPayload(to: extracted) }
        #expect(!FileManager.default.fileExists(atPath: extracted.path))

        let error = expectPackageError(.tamperedPayload) {
            _ = try PackageVerifier.verify(file: output, trustedKeys: [vendor.publicKey])
        }
        #expect(error?.message.contains("do not install it") == true)
    }

    @Test func refusesPayloadOfAnotherSize() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let signed = try buildPackage("core", "2.0", payload: [1, 2, 3], key: vendor, in: directory)
        let verified = try PackageVerifier.verify(file: signed, trustedKeys: [vendor.publicKey])
        let bytes = try readBytes(signed)
        let manifestBytes = Array(bytes[512..<512 + Int(try manifestSize(bytes))])
        let signature = Array(bytes[Int(verified.payloadOffset) - 1024..<Int(verified.payloadOffset) - 960])
        let forged = directory.appendingPathComponent("forged.pkg")
        try writeBytes(
            try tarArchive([("manifest.json", manifestBytes), ("signature", signature), ("payload", [1, 2, 3, 4])]),
            to: forged
        )
        let error = expectPackageError(.tamperedPayload) {
            _ = try PackageVerifier.verify(file: forged, trustedKeys: [vendor.publicKey])
        }
        #expect(error?.message.contains("4 bytes but the signed manifest says 3") == true)
    }

    @Test(arguments: [0.5, 0.99])
    func refusesTruncatedFile(fraction: Double) throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = try buildPackage("core", "2.0", payload: testBytes(50_000, seed: 3), key: vendor, in: directory)
        let bytes = try readBytes(output)
        try writeBytes(Array(bytes[..<Int(Double(bytes.count) * fraction)]), to: output)
        let error = expectPackageError(.truncated) {
            _ = try PackageVerifier.verify(file: output, trustedKeys: [vendor.publicKey])
        }
        #expect(error?.message.contains("download it again") == true)
    }

    @Test func refusesTruncationInsideTheManifest() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = try buildPackage("core", "2.0", key: vendor, in: directory)
        try writeBytes(Array(try readBytes(output)[..<700]), to: output)
        expectPackageError(.truncated) {
            _ = try PackageVerifier.verify(file: output, trustedKeys: [vendor.publicKey])
        }
    }

    @Test func refusesFilesThatAreNotTarArchives() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let cases: [(String, [UInt8])] = [
            ("empty", []),
            ("short text", Array("hello, this is not a package\n".utf8)),
            ("random", testBytes(5_000, seed: 4)),
            ("text", Array(String(repeating: "not a tar archive\n", count: 100).utf8)),
        ]
        for (label, bytes) in cases {
            let file = directory.appendingPathComponent("\(label).pkg")
            try writeBytes(bytes, to: file)
            let error = expectPackageError(.notAPackage) {
                _ = try PackageVerifier.verify(file: file, trustedKeys: [vendor.publicKey])
            }
            #expect(error?.message.contains("is not a software package") == true, "\(label)")
        }
    }

    @Test func refusesTarArchivesThatAreNotPackages() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = try buildPackage("core", "2.0", key: vendor, in: directory)
        let verified = try PackageVerifier.verify(file: output, trustedKeys: [vendor.publicKey])
        let bytes = try readBytes(output)
        let manifestBytes = Array(bytes[512..<512 + Int(try manifestSize(bytes))])
        let signature = Array(bytes[Int(verified.payloadOffset) - 1024..<Int(verified.payloadOffset) - 960])
        let payload = Array("payload of core 2.0".utf8)
        let archives: [(String, [(name: String, bytes: [UInt8])])] = [
            ("no members", []),
            ("other file", [("readme.txt", Array("hi".utf8))]),
            ("wrong order", [("signature", signature), ("manifest.json", manifestBytes), ("payload", payload)]),
            ("no payload", [("manifest.json", manifestBytes), ("signature", signature)]),
            (
                "extra member",
                [("manifest.json", manifestBytes), ("signature", signature), ("payload", payload), ("x", [1])]
            ),
            ("manifest not JSON", [("manifest.json", Array("{".utf8)), ("signature", signature), ("payload", [])]),
            ("short signature", [("manifest.json", manifestBytes), ("signature", [1, 2]), ("payload", payload)]),
        ]
        for (label, members) in archives {
            let file = directory.appendingPathComponent("archive.pkg")
            try writeBytes(try tarArchive(members), to: file)
            expectPackageError(.notAPackage) {
                _ = try PackageVerifier.verify(file: file, trustedKeys: [vendor.publicKey])
            }
            _ = label
        }
    }

    @Test func refusesNewerFormatVersion() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var future = manifest("core", "2.0", kind: .base)
        future.formatVersion = PackageManifest.currentFormatVersion + 1
        future.signingKeyId = vendor.publicKey.keyId
        future.payloadSHA256 = SHA256Hasher.hash([]).hexString
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let manifestBytes = Array(try encoder.encode(future))
        let file = directory.appendingPathComponent("future.pkg")
        try writeBytes(
            try tarArchive([
                ("manifest.json", manifestBytes), ("signature", vendor.sign(manifestBytes)), ("payload", []),
            ]),
            to: file
        )
        let error = expectPackageError(.unsupportedFormat) {
            _ = try PackageVerifier.verify(file: file, trustedKeys: [vendor.publicKey])
        }
        #expect(error?.message.contains("update the appliance software") == true)
    }

    @Test func builderRefusesInvalidFields() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = directory.appendingPathComponent("x.pkg")
        for (name, version) in [("", "1.0"), ("../evil", "1.0"), ("-dash", "1.0"), ("core", "1.x"), ("core", "")] {
            expectPackageError(.invalidArgument) {
                try PackageBuilder.build(
                    name: name,
                    kind: .addon,
                    version: version,
                    payload: [],
                    signingKey: vendor,
                    to: output
                )
            }
        }
        expectPackageError(.invalidArgument) {
            try PackageBuilder.build(
                name: "core",
                kind: .addon,
                version: "1.0",
                requires: [.init(name: "a", minimumVersion: "1"), .init(name: "a", minimumVersion: "2")],
                payload: [],
                signingKey: vendor,
                to: output
            )
        }
        expectPackageError(.storage) {
            try PackageBuilder.build(
                name: "core",
                kind: .addon,
                version: "1.0",
                payload: directory.appendingPathComponent("missing.bin"),
                signingKey: vendor,
                to: output
            )
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty)
    }

    /// The size of the first tar member (manifest.json), from its header.
    private func manifestSize(_ archive: [UInt8]) throws -> Int64 {
        let field = String(decoding: archive[124..<135], as: UTF8.self)
        return try #require(Int64(field, radix: 8))
    }
}
