import ApplianceCrypto
import Foundation
import SoftwarePackages
import Testing

@Suite("Package repositories")
struct RepositoryTests {
    let vendor = Ed25519PrivateKey()

    @Test func addAndLoad() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let incoming = directory.appendingPathComponent("incoming")
        let repository = directory.appendingPathComponent("repo")
        try FileManager.default.createDirectory(at: incoming, withIntermediateDirectories: true)

        let addon = try buildPackage(
            "reports",
            "1.2",
            requires: [.init(name: "core", minimumVersion: "2.0")],
            key: vendor,
            in: incoming
        )
        let core = try buildPackage("core", "2.0", kind: .base, key: vendor, in: incoming)
        let core10 = try buildPackage("core", "10.0", kind: .base, key: vendor, in: incoming)
        let addonEntry = try RepositoryBuilder.add(package: addon, to: repository)
        try RepositoryBuilder.add(package: core10, to: repository, trustedKeys: [vendor.publicKey])
        try RepositoryBuilder.add(package: core, to: repository)

        let index = try RepositoryBuilder.loadIndex(directory: repository)
        #expect(index.formatVersion == 1)
        #expect(index.packages.map(\.file) == ["core_2.0.pkg", "core_10.0.pkg", "reports_1.2.pkg"])
        #expect(index.packages.last == addonEntry)
        #expect(index.manifests.map(\.name) == ["core", "core", "reports"])
        #expect(index.entry(name: "core", version: "10.0.0")?.file == "core_10.0.pkg")
        for entry in index.packages {
            let stored = repository.appendingPathComponent(entry.file)
            let bytes = try readBytes(stored)
            #expect(Int64(bytes.count) == entry.fileSize)
            #expect(SHA256Hasher.hash(bytes).hexString == entry.fileSHA256)
            #expect(
                try PackageVerifier.verify(file: stored, trustedKeys: [vendor.publicKey]).manifest == entry.manifest
            )
        }
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: repository.path).sorted()
                == [".index.lock", "core_10.0.pkg", "core_2.0.pkg", "index.json", "reports_1.2.pkg"]
        )
    }

    @Test func addingTheSameFileAgainIsANoOpButADifferentFileConflicts() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let repository = directory.appendingPathComponent("repo")
        let first = try buildPackage("core", "2.0", kind: .base, payload: [1], key: vendor, in: directory)
        let entry = try RepositoryBuilder.add(package: first, to: repository)
        #expect(try RepositoryBuilder.add(package: first, to: repository) == entry)

        let rebuilt = try buildPackage("core", "2.0.0", kind: .base, payload: [2], key: vendor, in: directory)
        let error = expectPackageError(.conflict) { try RepositoryBuilder.add(package: rebuilt, to: repository) }
        #expect(error?.message.contains("give the new package a higher version") == true)
        #expect(try RepositoryBuilder.loadIndex(directory: repository).packages == [entry])
        #expect(
            !(try FileManager.default.contentsOfDirectory(atPath: repository.path)).contains { $0.hasSuffix(".tmp") }
        )
    }

    @Test func addRefusesBadPackagesAndLeavesNothingBehind() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let repository = directory.appendingPathComponent("repo")
        let package = try buildPackage("core", "2.0", key: vendor, in: directory)
        let error = expectPackageError(.untrustedKey) {
            try RepositoryBuilder.add(package: package, to: repository, trustedKeys: [Ed25519PrivateKey().publicKey])
        }
        #expect(error?.message.contains(package.path) == true, "names the operator's file, not a scratch copy")

        let junk = directory.appendingPathComponent("junk.pkg")
        try writeBytes(testBytes(4096, seed: 5), to: junk)
        expectPackageError(.notAPackage) { try RepositoryBuilder.add(package: junk, to: repository) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: repository.path) == [".index.lock"])
        expectPackageError(.invalidRepository) { _ = try RepositoryBuilder.loadIndex(directory: repository) }
    }

    @Test func loadRefusesUnsafeOrNewerIndexes() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let package = try buildPackage("core", "2.0", key: vendor, in: directory)
        let repository = directory.appendingPathComponent("repo")
        try RepositoryBuilder.add(package: package, to: repository)
        let indexFile = repository.appendingPathComponent("index.json")
        let original = String(decoding: try readBytes(indexFile), as: UTF8.self)

        try writeBytes(
            Array(original.replacingOccurrences(of: "core_2.0.pkg", with: "../../etc/passwd").utf8),
            to: indexFile
        )
        let unsafe = expectPackageError(.invalidRepository) {
            _ = try RepositoryBuilder.loadIndex(directory: repository)
        }
        #expect(unsafe?.message.contains("not a plain file name") == true)

        try writeBytes(
            Array(
                original.replacingOccurrences(
                    of: "\"formatVersion\" : 1,\n  \"packages\"",
                    with: "\"formatVersion\" : 2,\n  \"packages\""
                ).utf8
            ),
            to: indexFile
        )
        expectPackageError(.unsupportedFormat) { _ = try RepositoryBuilder.loadIndex(directory: repository) }

        try writeBytes(Array("[]".utf8), to: indexFile)
        expectPackageError(.invalidRepository) { _ = try RepositoryBuilder.loadIndex(directory: repository) }
    }
}
