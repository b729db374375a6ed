import ApplianceCrypto
import Foundation
import SoftwarePackages
import Testing

/// `PackageFetcher`: a download key turned into verified package files, from a repository directory and from the
/// same directory served over http by a real HTTP server (python3's http.server, as a process).
@Suite("Fetching packages with a download key")
struct PackageFetcherTests {
    let vendor = Ed25519PrivateKey()
    let appliance = Ed25519PrivateKey()

    /// A repository with base 7.3 and an add-on 1.2 that needs it, and a key of a box at base 7.2, add-on 1.0.
    func makeRepository() throws -> (root: URL, repository: URL, key: DownloadKey) {
        let root = try temporaryDirectory()
        let incoming = root.appendingPathComponent("incoming")
        let repository = root.appendingPathComponent("repo")
        try FileManager.default.createDirectory(at: incoming, withIntermediateDirectories: true)
        let reports = try buildPackage(
            "reports",
            "1.2",
            requires: [.init(name: "base", minimumVersion: "7.3")],
            key: vendor,
            in: incoming
        )
        try RepositoryBuilder.add(package: reports, to: repository)
        try RepositoryBuilder.add(
            package: try buildPackage("base", "7.3", kind: .base, key: vendor, in: incoming),
            to: repository
        )
        let text = DownloadKey.issue(
            applianceId: "box-1",
            hostname: "site-box",
            installed: ["base": "7.2", "reports": "1.0"],
            signingKey: appliance
        )
        return (root, repository, try DownloadKey.parse(text))
    }

    func expectFetched(_ outcome: FetchOutcome, in out: URL, from repository: URL) throws {
        #expect(outcome.fetched.map(\.file) == ["base_7.3.pkg", "reports_1.2.pkg"], "dependencies first")
        #expect(outcome.blocked.isEmpty)
        for package in outcome.fetched {
            let fetched = try readBytes(out.appendingPathComponent(package.file))
            #expect(fetched == (try readBytes(repository.appendingPathComponent(package.file))))
            #expect(try PackageFetcher.verify(package, in: out, trustedKeys: [vendor.publicKey]).name == package.name)
        }
        let left = try FileManager.default.contentsOfDirectory(atPath: out.path).sorted()
        #expect(left == ["base_7.3.pkg", "reports_1.2.pkg"], "no scratch file is left behind")
    }

    @Test func fromADirectoryTheApplicablePackagesAreVerifiedAndRecordedOnce() async throws {
        let (root, repository, key) = try makeRepository()
        defer { try? FileManager.default.removeItem(at: root) }
        let out = root.appendingPathComponent("out")
        let ledger = FetchLedger(file: root.appendingPathComponent("ledger.json"))
        let outcome = try await PackageFetcher.fetch(
            for: key,
            from: try PackageSource(repository.path),
            into: out,
            trustedKeys: [vendor.publicKey],
            ledger: ledger
        )
        try expectFetched(outcome, in: out, from: repository)
        let again = try await PackageFetcher.fetch(
            for: key,
            from: try PackageSource(repository.path),
            into: out,
            trustedKeys: [vendor.publicKey],
            ledger: ledger
        )
        #expect(again.fetched.isEmpty, "the ledger hands each file out once per key")
    }

    @Test func overHTTPTheSameFilesArriveVerified() async throws {
        let (root, repository, key) = try makeRepository()
        defer { try? FileManager.default.removeItem(at: root) }
        let server = try await DirectoryServer(serving: repository)
        defer { server.stop() }
        let out = root.appendingPathComponent("out")
        let outcome = try await PackageFetcher.fetch(
            for: key,
            from: try PackageSource(server.url + "/"),
            into: out,
            trustedKeys: [vendor.publicKey]
        )
        try expectFetched(outcome, in: out, from: repository)
    }

    @Test func overHTTPAChangedFileOrAMissingIndexIsRefused() async throws {
        let (root, repository, key) = try makeRepository()
        defer { try? FileManager.default.removeItem(at: root) }
        let server = try await DirectoryServer(serving: repository)
        defer { server.stop() }
        var bytes = try readBytes(repository.appendingPathComponent("reports_1.2.pkg"))
        bytes[bytes.count / 2] ^= 0xFF
        try writeBytes(bytes, to: repository.appendingPathComponent("reports_1.2.pkg"))
        let out = root.appendingPathComponent("out")
        let source = try PackageSource(server.url)
        await #expect(throws: SoftwarePackageError.self) {
            try await PackageFetcher.fetch(for: key, from: source, into: out, trustedKeys: [vendor.publicKey])
        }
        let left = try FileManager.default.contentsOfDirectory(atPath: out.path)
        #expect(!left.contains("reports_1.2.pkg"), "a file that does not verify never gets its name: \(left)")
        let missing = try PackageSource(server.url + "/no-such-repository")
        do {
            _ = try await PackageFetcher.loadIndex(missing)
            Issue.record("a missing index was accepted")
        } catch let error as SoftwarePackageError {
            #expect(error.code == .invalidRepository)
            #expect(error.message.contains("answered 404"), "\(error)")
        }
    }

    @Test func anotherVendorsKeyRefusesThePackages() async throws {
        let (root, repository, key) = try makeRepository()
        defer { try? FileManager.default.removeItem(at: root) }
        do {
            _ = try await PackageFetcher.fetch(
                for: key,
                from: try PackageSource(repository.path),
                into: root.appendingPathComponent("out"),
                trustedKeys: [Ed25519PrivateKey().publicKey]
            )
            Issue.record("packages of another vendor were accepted")
        } catch let error as SoftwarePackageError {
            #expect(error.code == .untrustedKey, "\(error)")
            #expect(error.message.contains(repository.path), "names the repository's file: \(error)")
        }
    }

    /// A file in the output directory is re-verified, never trusted: a changed one is fetched again.
    @Test func aChangedFetchedFileIsVerifiedAgainAndReplaced() async throws {
        let (root, repository, key) = try makeRepository()
        defer { try? FileManager.default.removeItem(at: root) }
        let out = root.appendingPathComponent("out")
        let source = try PackageSource(repository.path)
        let outcome = try await PackageFetcher.fetch(for: key, from: source, into: out, trustedKeys: nil)
        let base = try #require(outcome.fetched.first)
        try writeBytes(Array("not a package".utf8), to: out.appendingPathComponent(base.file))
        expectPackageError(.tamperedPayload) { try PackageFetcher.verify(base, in: out, trustedKeys: nil) }
        try await PackageFetcher.fetch([base], from: source, into: out, trustedKeys: [vendor.publicKey])
        #expect(try PackageFetcher.verify(base, in: out, trustedKeys: [vendor.publicKey]).version == "7.3")
    }

    @Test(arguments: ["ftp://host/repo", "https://", "file:///srv/repo"])
    func aRepositoryIsADirectoryOrAnHTTPURL(text: String) {
        expectPackageError(.invalidArgument) { _ = try PackageSource(text) }
    }
}

/// A directory served over http on 127.0.0.1 by python3's http.server on a free port (the port is written to a
/// file, which the test polls), stopped with `stop()`.
final class DirectoryServer {
    let url: String
    private let process: Process

    init(serving directory: URL) async throws {
        let portFile = directory.deletingLastPathComponent().appendingPathComponent("port-\(UUID().uuidString)")
        let script = """
            import functools, http.server, os, sys
            handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])
            server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
            open(sys.argv[2] + ".tmp", "w").write(str(server.server_port))
            os.rename(sys.argv[2] + ".tmp", sys.argv[2])
            server.serve_forever()
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, directory.path, portFile.path]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process = process
        let deadline = ContinuousClock.now + .seconds(30)
        while (try? String(contentsOf: portFile, encoding: .utf8)) == nil {
            guard process.isRunning, ContinuousClock.now < deadline else {
                process.terminate()
                throw SoftwarePackageError(code: .storage, message: "python3 http.server did not start")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        url = "http://127.0.0.1:\(try String(contentsOf: portFile, encoding: .utf8))"
    }

    func stop() {
        process.terminate()
    }
}
