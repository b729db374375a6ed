import ApplianceCrypto
import BackupFormat
import Foundation
import SoftwarePackages
import Testing

/// A fresh directory under the system temporary directory; delete it with `defer`.
func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("software-packages-test-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// Deterministic pseudo-random bytes (SplitMix64), so failures reproduce.
func testBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var state = seed
    var bytes = [UInt8]()
    bytes.reserveCapacity(count)
    while bytes.count < count {
        state &+= 0x9E37_79B9_7F4A_7C15
        var value = state
        value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
        value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
        value ^= value >> 31
        withUnsafeBytes(of: value) { bytes += $0.prefix(count - bytes.count) }
    }
    return bytes
}

func readBytes(_ url: URL) throws -> [UInt8] {
    [UInt8](try Data(contentsOf: url))
}

func writeBytes(_ bytes: [UInt8], to url: URL) throws {
    try Data(bytes).write(to: url)
}

/// A tar archive with `members` in order, written with BackupFormat's TarWriter.
func tarArchive(_ members: [(name: String, bytes: [UInt8])]) throws -> [UInt8] {
    var archive: [UInt8] = []
    for member in members {
        archive += try TarWriter.header(
            name: member.name,
            size: Int64(member.bytes.count),
            modificationTime: Date(timeIntervalSince1970: 1_700_000_000)
        )
        archive += member.bytes
        archive += TarWriter.padding(forSize: Int64(member.bytes.count))
    }
    return archive + TarWriter.end()
}

/// A manifest for planner tests (no package file behind it).
func manifest(
    _ name: String,
    _ version: String,
    kind: PackageKind = .addon,
    requires: [(String, String)] = []
) -> PackageManifest {
    PackageManifest(
        name: name,
        kind: kind,
        version: version,
        requires: requires.map { PackageManifest.Requirement(name: $0.0, minimumVersion: $0.1) },
        payloadSize: 0,
        payloadSHA256: String(repeating: "0", count: 64),
        createdAt: Date(timeIntervalSince1970: 1_700_000_000),
        signingKeyId: String(repeating: "a", count: 16)
    )
}

/// Builds `name`-`version` with a small payload into `directory` and returns its URL.
@discardableResult
func buildPackage(
    _ name: String,
    _ version: String,
    kind: PackageKind = .addon,
    requires: [PackageManifest.Requirement] = [],
    payload: [UInt8]? = nil,
    key: Ed25519PrivateKey,
    in directory: URL
) throws -> URL {
    let output = directory.appendingPathComponent("\(name)-\(version)-\(UUID().uuidString).pkg")
    try PackageBuilder.build(
        name: name,
        kind: kind,
        version: version,
        requires: requires,
        payload: payload ?? Array("payload of \(name) \(version)".utf8),
        signingKey: key,
        to: output
    )
    return output
}

/// Runs `body`, requires it to throw a SoftwarePackageError and returns it.
@discardableResult
func expectPackageError(
    _ code: SoftwarePackageError.Code,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () throws -> Void
) -> SoftwarePackageError? {
    do {
        try body()
        Issue.record("expected a \(code) error, but nothing was thrown", sourceLocation: sourceLocation)
        return nil
    } catch let error as SoftwarePackageError {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("expected a SoftwarePackageError \(code), got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}
