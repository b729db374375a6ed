public import ApplianceCrypto
import BackupFormat
public import Foundation

/// Writes signed package files.
///
/// A package file is a ustar archive with exactly three regular-file members, in this order:
///
/// 1. `manifest.json`: the `PackageManifest` as pretty-printed JSON with sorted keys. These exact bytes are signed.
/// 2. `signature`: 64 raw bytes, the Ed25519 signature of the `manifest.json` bytes.
/// 3. `payload`: opaque bytes whose size and SHA-256 the manifest records.
///
/// Because the manifest and signature come first, a verifier can refuse an untrusted or forged package before
/// reading the (possibly large) payload, and can hash the payload in one streaming pass.
public enum PackageBuilder {
    /// Size of the pieces the payload is streamed in.
    static let chunkSize = 1 << 20

    /// Builds a package from the payload file at `payload`, streaming it (twice: once to hash it for the manifest,
    /// once to copy it) so memory use does not depend on its size. The output appears at `output` only when
    /// complete. Returns the manifest exactly as a verifier will read it back (`createdAt` to the whole second).
    ///
    /// Throws `.invalidArgument` for a name, version or requirement the format cannot hold, and `.storage` when a
    /// file cannot be read or written or the payload changes while being packaged.
    @discardableResult
    public static func build(
        name: String,
        kind: PackageKind,
        version: String,
        requires: [PackageManifest.Requirement] = [],
        eula: String = "",
        description: String = "",
        createdAt: Date = Date(),
        selfTest: PackageManifest.SelfTest? = nil,
        payload: URL,
        signingKey: Ed25519PrivateKey,
        to output: URL
    ) throws -> PackageManifest {
        try build(
            PackageManifest(
                // The oldest format that holds what this package has, so older appliances still read it.
                formatVersion: selfTest == nil ? 1 : PackageManifest.selfTestFormatVersion,
                name: name,
                kind: kind,
                version: version,
                requires: requires,
                eula: eula,
                description: description,
                payloadSize: 0,
                payloadSHA256: "",
                createdAt: Timestamp.truncated(createdAt),
                signingKeyId: signingKey.publicKey.keyId,
                selfTest: selfTest
            ),
            payload: .file(payload),
            signingKey: signingKey,
            output: output
        )
    }

    /// Builds a package whose payload is `payload`, for payloads already in memory.
    @discardableResult
    public static func build(
        name: String,
        kind: PackageKind,
        version: String,
        requires: [PackageManifest.Requirement] = [],
        eula: String = "",
        description: String = "",
        createdAt: Date = Date(),
        selfTest: PackageManifest.SelfTest? = nil,
        payload: [UInt8],
        signingKey: Ed25519PrivateKey,
        to output: URL
    ) throws -> PackageManifest {
        try build(
            PackageManifest(
                // The oldest format that holds what this package has, so older appliances still read it.
                formatVersion: selfTest == nil ? 1 : PackageManifest.selfTestFormatVersion,
                name: name,
                kind: kind,
                version: version,
                requires: requires,
                eula: eula,
                description: description,
                payloadSize: 0,
                payloadSHA256: "",
                createdAt: Timestamp.truncated(createdAt),
                signingKeyId: signingKey.publicKey.keyId,
                selfTest: selfTest
            ),
            payload: .bytes(payload),
            signingKey: signingKey,
            output: output
        )
    }

    private enum Payload {
        case file(URL)
        case bytes([UInt8])

        /// Calls `body` with the payload in pieces and returns its size and SHA-256 (hex).
        func stream(_ body: (UnsafeRawBufferPointer) throws -> Void) throws -> (size: Int64, sha256: String) {
            let hasher = SHA256Hasher()
            var size: Int64 = 0
            switch self {
            case .bytes(let bytes):
                try bytes.withUnsafeBytes { buffer in
                    hasher.update(buffer)
                    try body(buffer)
                }
                size = Int64(bytes.count)
            case .file(let url):
                let input = try InputFile(url)
                var buffer = [UInt8](repeating: 0, count: PackageBuilder.chunkSize)
                try buffer.withUnsafeMutableBytes { buffer in
                    while true {
                        let count = try input.read(into: buffer)
                        if count == 0 {
                            break
                        }
                        let piece = UnsafeRawBufferPointer(rebasing: buffer[..<count])
                        hasher.update(piece)
                        try body(piece)
                        size += Int64(count)
                    }
                }
            }
            return (size, hasher.finalize().hexString)
        }
    }

    private static func build(
        _ draft: PackageManifest,
        payload: Payload,
        signingKey: Ed25519PrivateKey,
        output: URL
    ) throws -> PackageManifest {
        var manifest = draft
        manifest.payloadSHA256 = String(repeating: "0", count: 64)
        try manifest.validate()

        let (size, sha256) = try payload.stream { _ in }
        guard size <= TarWriter.maximumSize else {
            throw SoftwarePackageError(
                code: .invalidArgument,
                message: "the payload is \(size) bytes; a package payload must be smaller than 8 GiB, so split it "
                    + "into add-ons"
            )
        }
        manifest.payloadSize = size
        manifest.payloadSHA256 = sha256
        let manifestBytes = try manifest.jsonBytes()
        guard manifestBytes.count <= PackageManifest.maximumSize else {
            throw SoftwarePackageError(
                code: .invalidArgument,
                message: "the manifest is \(manifestBytes.count) bytes, more than the 1 MiB allowed; shorten the "
                    + "EULA or description"
            )
        }
        let signature = signingKey.sign(manifestBytes)

        let writer = try AtomicFileWriter(destination: output)
        try writeMember("manifest.json", manifestBytes, createdAt: manifest.createdAt, to: writer)
        try writeMember("signature", signature, createdAt: manifest.createdAt, to: writer)
        try writer.write(try header("payload", size: size, createdAt: manifest.createdAt))
        let copied = try payload.stream { try writer.write($0) }
        guard copied.size == size, copied.sha256 == sha256 else {
            throw SoftwarePackageError(
                code: .storage,
                message: "the payload changed while the package was being built (\(size) then \(copied.size) bytes); "
                    + "build it again from a file nothing else is writing"
            )
        }
        try writer.write(TarWriter.padding(forSize: size))
        try writer.write(TarWriter.end())
        try writer.commit()
        return try PackageManifest.decodeSigned(manifestBytes)
    }

    private static func writeMember(
        _ name: String,
        _ bytes: [UInt8],
        createdAt: Date,
        to writer: AtomicFileWriter
    ) throws {
        try writer.write(try header(name, size: Int64(bytes.count), createdAt: createdAt))
        try writer.write(bytes)
        try writer.write(TarWriter.padding(forSize: Int64(bytes.count)))
    }

    private static func header(_ name: String, size: Int64, createdAt: Date) throws -> [UInt8] {
        do {
            return try TarWriter.header(name: name, size: size, modificationTime: createdAt)
        } catch let error as BackupFormatError {
            throw SoftwarePackageError(code: .invalidArgument, message: error.message)
        }
    }
}

extension PackageManifest {
    /// Decodes and validates `manifest.json` bytes, throwing `.notAPackage` for anything that is not a valid
    /// manifest of a format this code reads.
    static func decodeSigned(_ bytes: [UInt8]) throws -> PackageManifest {
        let manifest: PackageManifest
        do {
            manifest = try JSONDecoder().decode(PackageManifest.self, from: Data(bytes))
        } catch {
            throw SoftwarePackageError(
                code: .notAPackage,
                message: "the package's manifest.json cannot be read (\(error)); this is not a valid software package"
            )
        }
        do {
            try manifest.validate()
        } catch let error as SoftwarePackageError {
            throw SoftwarePackageError(
                code: .notAPackage,
                message: "the package's manifest.json is invalid: \(error.message); ask the vendor for a corrected "
                    + "package"
            )
        }
        return manifest
    }
}
