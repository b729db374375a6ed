public import ApplianceCrypto
import BackupFormat
public import Foundation

/// A package file whose signature and payload have been checked.
///
/// The payload is not extracted: it stays in `file`, as the `payloadLength` bytes starting at byte `payloadOffset`
/// (the contents of the tar member, contiguous in the file). Read it with `readPayload` or `copyPayload(to:)`,
/// which check its SHA-256 again, so a file changed after verification is still caught.
public struct VerifiedPackage: Sendable, Equatable {
    public let manifest: PackageManifest
    public let file: URL
    /// The trusted key whose signature was checked.
    public let signingKey: Ed25519PublicKey
    /// Offset of the first payload byte in `file`.
    public let payloadOffset: Int64

    /// Length of the payload in bytes (the signed `manifest.payloadSize`).
    public var payloadLength: Int64 {
        manifest.payloadSize
    }

    init(manifest: PackageManifest, file: URL, signingKey: Ed25519PublicKey, payloadOffset: Int64) {
        self.manifest = manifest
        self.file = file
        self.signingKey = signingKey
        self.payloadOffset = payloadOffset
    }

    /// Streams the payload to `body` in pieces of up to 1 MiB, hashing it again on the way. Throws
    /// `.tamperedPayload` after the last piece if the file changed since verification, so treat what `body` received
    /// as provisional until this returns.
    public func readPayload(_ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let input = try InputFile(file)
        try input.seek(to: payloadOffset)
        let hasher = SHA256Hasher()
        var remaining = payloadLength
        var buffer = [UInt8](repeating: 0, count: PackageBuilder.chunkSize)
        try buffer.withUnsafeMutableBytes { buffer in
            while remaining > 0 {
                let want = Int(min(Int64(buffer.count), remaining))
                let count = try input.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[..<want]))
                guard count > 0 else {
                    throw SoftwarePackageError(
                        code: .truncated,
                        message: "\(file.path) became shorter after it was verified; copy the package again"
                    )
                }
                let piece = UnsafeRawBufferPointer(rebasing: buffer[..<count])
                hasher.update(piece)
                try body(piece)
                remaining -= Int64(count)
            }
        }
        guard hasher.finalize().hexString == manifest.payloadSHA256 else {
            throw SoftwarePackageError(
                code: .tamperedPayload,
                message: "the payload of \(file.path) changed after it was verified; copy the package again and make "
                    + "sure nothing else writes to it"
            )
        }
    }

    /// Writes the payload to `destination` (replacing it atomically), only if its SHA-256 still matches.
    public func copyPayload(to destination: URL) throws {
        let writer = try AtomicFileWriter(destination: destination)
        try readPayload { try writer.write($0) }
        try writer.commit()
    }
}

/// Checks package files before anything in them is used.
public enum PackageVerifier {
    /// Verifies the package at `file` against `trustedKeys`, reading it once from start to end in pieces (memory
    /// stays bounded by the 1 MiB manifest limit plus one read buffer).
    ///
    /// The checks, in order, each with its own error code:
    /// - `.notAPackage`: not a tar archive, a damaged one, members other than `manifest.json`, `signature` and
    ///   `payload` in that order, or an unreadable manifest; `.truncated`: the file ends early;
    /// - `.unsupportedFormat`: a manifest `formatVersion` newer than this software reads;
    /// - `.untrustedKey`: signed by a key that is not in `trustedKeys`;
    /// - `.badSignature`: the signature does not match the `manifest.json` bytes;
    /// - `.tamperedPayload`: the payload's size or SHA-256 differs from the manifest.
    public static func verify(file: URL, trustedKeys: [Ed25519PublicKey]) throws -> VerifiedPackage {
        let result = try scan(file: file, trustedKeys: trustedKeys)
        guard let key = result.key else {
            // scan() checks the signature whenever it is given trusted keys; an empty list refuses every package.
            preconditionFailure("scan returned no key for a signature check")
        }
        return VerifiedPackage(manifest: result.manifest, file: file, signingKey: key, payloadOffset: result.offset)
    }

    /// The tar block size: the archive is fed one block at a time until the payload starts, so its offset is exact.
    private static let blockSize = 512

    private enum Phase {
        case expectManifest
        case manifest
        case expectSignature
        case signature
        case expectPayload
        case payload
        case expectEnd
        case ended
    }

    /// Reads and checks the package. With `trustedKeys == nil` the signature is not checked (only the structure and
    /// the payload hash): repositories use that to index packages whose vendor key they do not hold.
    static func scan(
        file: URL,
        trustedKeys: [Ed25519PublicKey]?
    ) throws -> (manifest: PackageManifest, key: Ed25519PublicKey?, offset: Int64) {
        let input = try InputFile(file)
        let path = file.path
        guard input.size >= Int64(blockSize) else {
            throw SoftwarePackageError(
                code: .notAPackage,
                message: "\(path) is not a software package: it is only \(input.size) bytes; if it was downloaded, "
                    + "download it again"
            )
        }
        var reader = TarReader()
        var phase = Phase.expectManifest
        var manifestBytes: [UInt8] = []
        var signature: [UInt8] = []
        var manifest: PackageManifest?
        var key: Ed25519PublicKey?
        var offset: Int64 = 0
        var payloadOffset: Int64 = 0
        let hasher = SHA256Hasher()

        func notAPackage(_ reason: String) -> SoftwarePackageError {
            SoftwarePackageError(
                code: .notAPackage,
                message: "\(path) is not a software package: \(reason); check that you chose the right .pkg file"
            )
        }

        func handle(_ event: TarEvent) throws {
            switch (phase, event) {
            case (.expectManifest, .entryStart(let name, let size)):
                guard name == "manifest.json" else {
                    throw notAPackage("its first member is \"\(name)\", not manifest.json")
                }
                guard size <= Int64(PackageManifest.maximumSize) else {
                    throw notAPackage("its manifest.json is \(size) bytes, more than the 1 MiB allowed")
                }
                phase = .manifest
            case (.manifest, .entryData(let bytes)):
                manifestBytes += bytes
            case (.manifest, .entryEnd):
                phase = .expectSignature
            case (.expectSignature, .entryStart(let name, let size)):
                guard name == "signature", size == Int64(Ed25519PublicKey.signatureLength) else {
                    throw notAPackage("its second member is \"\(name)\" (\(size) bytes), not a 64-byte signature")
                }
                phase = .signature
            case (.signature, .entryData(let bytes)):
                signature += bytes
            case (.signature, .entryEnd):
                (manifest, key) = try checkManifest(manifestBytes, signature: signature, trustedKeys, path: path)
                phase = .expectPayload
            case (.expectPayload, .entryStart(let name, let size)):
                guard name == "payload" else {
                    throw notAPackage("its third member is \"\(name)\", not payload")
                }
                guard let manifest, size == manifest.payloadSize else {
                    let signedSize = manifest?.payloadSize ?? 0
                    throw tampered(path, "its payload is \(size) bytes but the signed manifest says \(signedSize)")
                }
                // Blocks are fed one at a time until here, so the payload starts right after what was fed.
                payloadOffset = offset
                phase = .payload
            case (.payload, .entryData(let bytes)):
                hasher.update(bytes)
            case (.payload, .entryEnd):
                phase = .expectEnd
            case (.expectEnd, .entryStart(let name, _)):
                throw notAPackage("it has an extra member \"\(name)\" after the payload")
            case (.expectEnd, .archiveEnd):
                phase = .ended
            case (_, .archiveEnd):
                throw notAPackage("the archive ends before it has manifest.json, signature and payload")
            default:
                throw notAPackage("its members are not manifest.json, signature and payload in that order")
            }
        }

        var buffer = [UInt8](repeating: 0, count: PackageBuilder.chunkSize)
        try buffer.withUnsafeMutableBytes { buffer in
            while phase != .ended {
                // One block at a time until the payload starts (so its offset is exact), then large pieces.
                let isStreaming = phase == .payload || phase == .expectEnd
                let want = isStreaming ? buffer.count : blockSize
                let count = try input.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[..<want]))
                if count == 0 {
                    break
                }
                let events: [TarEvent]
                do {
                    events = try reader.feed(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
                } catch is BackupFormatError {
                    throw notAPackage("it is not a tar archive, or the archive is damaged")
                }
                offset += Int64(count)
                for event in events {
                    try handle(event)
                }
            }
        }
        guard phase == .ended else {
            do {
                try reader.finish()
            } catch {
                throw SoftwarePackageError(
                    code: .truncated,
                    message: "\(path) ends before the package is complete (\(offset) bytes); the copy or download "
                        + "was interrupted, copy or download it again"
                )
            }
            throw notAPackage("the archive ends before it has manifest.json, signature and payload")
        }
        guard let manifest else {
            throw notAPackage("it has no manifest")
        }
        guard hasher.finalize().hexString == manifest.payloadSHA256 else {
            throw tampered(path, "the SHA-256 of its payload differs from the signed manifest")
        }
        return (manifest, key, payloadOffset)
    }

    private static func tampered(_ path: String, _ reason: String) -> SoftwarePackageError {
        SoftwarePackageError(
            code: .tamperedPayload,
            message: "\(path) has been modified: \(reason); do not install it, get the package again from the vendor"
        )
    }

    /// The fields every manifest version has, read before trusting the rest.
    private struct ManifestProbe: Decodable {
        var formatVersion: Int
        var signingKeyId: String?
    }

    private static func checkManifest(
        _ bytes: [UInt8],
        signature: [UInt8],
        _ trustedKeys: [Ed25519PublicKey]?,
        path: String
    ) throws -> (PackageManifest, Ed25519PublicKey?) {
        guard let probe = try? JSONDecoder().decode(ManifestProbe.self, from: Data(bytes)), probe.formatVersion >= 1
        else {
            throw SoftwarePackageError(
                code: .notAPackage,
                message: "\(path) is not a software package: its manifest.json is not a package manifest; check "
                    + "that you chose the right .pkg file"
            )
        }
        guard probe.formatVersion <= PackageManifest.currentFormatVersion else {
            throw SoftwarePackageError(
                code: .unsupportedFormat,
                message: "\(path) has package format version \(probe.formatVersion), newer than this software reads "
                    + "(\(PackageManifest.currentFormatVersion)); update the appliance software first"
            )
        }
        var key: Ed25519PublicKey?
        if let trustedKeys {
            let keyId = probe.signingKeyId ?? "(none)"
            let candidates = trustedKeys.filter { $0.keyId == keyId }
            guard !candidates.isEmpty else {
                throw SoftwarePackageError(
                    code: .untrustedKey,
                    message: "\(path) is signed by key \(keyId) which this appliance does not trust; install "
                        + "packages from your vendor only, or add the vendor's public key to the trusted keys"
                )
            }
            key = candidates.first { $0.isValidSignature(signature, for: bytes) }
            guard key != nil else {
                throw SoftwarePackageError(
                    code: .badSignature,
                    message: "the signature of \(path) does not match its manifest (key \(keyId)): the package was "
                        + "changed after it was signed; do not install it, get it again from the vendor"
                )
            }
        }
        let manifest: PackageManifest
        do {
            manifest = try PackageManifest.decodeSigned(bytes)
        } catch let error as SoftwarePackageError {
            throw SoftwarePackageError(code: error.code, message: "\(path): \(error.message)")
        }
        return (manifest, key)
    }
}
