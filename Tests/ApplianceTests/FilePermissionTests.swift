import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The appliance's data directory and appliancectl's state directory are readable by their owner alone: they
/// hold every certificate's private key in clear, the pins, the journal and the reports.
@Suite struct FilePermissionTests {
    /// Every directory under `root` (itself included) that is not 0700 and every file with group or other bits.
    static func openEntries(under root: URL) -> [String] {
        var found: [String] = []
        func check(_ path: String, _ name: String) {
            var info = stat()
            guard lstat(path, &info) == 0 else { return }
            let type = info.st_mode & S_IFMT
            let mode = info.st_mode & 0o7777
            if type == S_IFDIR, mode != 0o700 {
                found.append("\(name)/ \(String(mode, radix: 8))")
            } else if type == S_IFREG, mode & 0o077 != 0 {
                found.append("\(name) \(String(mode, radix: 8))")
            }
        }
        check(root.path, ".")
        let walker = FileManager.default.enumerator(atPath: root.path)
        while let relative = walker?.nextObject() as? String {
            check(root.appendingPathComponent(relative).path, relative)
        }
        return found
    }

    static func count(under root: URL) -> Int {
        FileManager.default.enumerator(atPath: root.path)?.allObjects.count ?? 0
    }

    @Test func dataAndStateDirectoriesArePrivateAfterPopulateBackupRestoreAndImport() async throws {
        let box = try await TestBox()
        defer { box.terminate() }
        var cli = CommandLineTests.CLI()
        cli.environment["CERT_PASSPHRASE"] = "perm-cert-pass"
        #expect(try await cli.run(["first-login", box.endpoint]).status == 0)
        let populate = try await cli.run(["populate", box.endpoint, "--size", "1MiB"])
        #expect(populate.status == 0, "\(populate.stderr)")
        let outside = TestSupport.temporaryDirectory("perm-out")
        let backupFile = outside.appendingPathComponent("site.backup")
        let backup = try await cli.run(["backup", box.endpoint, "--out", backupFile.path])
        #expect(backup.status == 0, "\(backup.stderr)")
        let restore = try await cli.run(["restore", box.endpoint, "--file", backupFile.path])
        #expect(restore.status == 0, "\(restore.stderr)")
        let pki = try TestPKI()
        let leaf = try pki.leaf(CertificateTests.hostname)
        let bundle = outside.appendingPathComponent("bundle.pem")
        try Data((leaf.certificate + pki.intermediate + pki.root + leaf.key).utf8).write(to: bundle)
        let imported = try await cli.run(["cert", "import", box.endpoint, "--name", "site", "--pem", bundle.path])
        #expect(imported.status == 0, "\(imported.stderr)")

        // The trees hold what the commands left (databases with their WAL, files, pins), all of it private.
        #expect(Self.count(under: box.dataDir) > 5)
        #expect(FileManager.default.fileExists(atPath: cli.home.appendingPathComponent("pins.json").path))
        #expect(Self.openEntries(under: box.dataDir) == [])
        #expect(Self.openEntries(under: cli.home) == [])
        // The backup written outside them is the operator's alone too.
        let mode = try FileManager.default.attributesOfItem(atPath: backupFile.path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }

    /// A data directory an older version left open (0755, files 0644) is closed when applianced starts.
    @Test func anOpenDataDirectoryIsClosedAtStart() async throws {
        let box = try await TestBox()
        defer { box.terminate() }
        _ = try await box.admin()
        await box.stop()
        chmod(box.dataDir.path, 0o755)
        chmod(box.dataDir.appendingPathComponent("box.sqlite").path, 0o644)
        chmod(box.dataDir.appendingPathComponent("site").path, 0o755)
        #expect(Self.openEntries(under: box.dataDir).count >= 3)
        try await box.start()
        #expect(Self.openEntries(under: box.dataDir) == [])
    }
}
