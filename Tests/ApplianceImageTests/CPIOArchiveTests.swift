import Foundation
import Testing

@testable import ApplianceImage

/// Checked with GNU cpio (Debian package cpio), an implementation other than ours.
@Suite("newc cpio archives")
struct CPIOArchiveTests {
    private func sampleArchive() -> CPIOArchive {
        var archive = CPIOArchive(modificationTime: 1_700_000_000)
        archive.addDirectory("/bin")
        archive.addDirectory("/dev")
        archive.addCharacterDevice("/dev/console", major: 5, minor: 1)
        archive.addFile("/bin/busybox", contents: Data("#!/bin/sh\necho hi\n".utf8), permissions: 0o755)
        archive.addSymlink("/bin/sh", target: "busybox")
        archive.addDirectory("/tmp", permissions: 0o1777)
        archive.addFile("/odd", contents: Data([0, 1, 2]))
        return archive
    }

    @Test("GNU cpio lists every entry with its type, permissions, owner and time")
    func cpioListsEntries() throws {
        let listing = try ExternalTool.run("cpio", ["-itv", "--quiet"], input: sampleArchive().encoded())
        try #require(listing.status == 0, "\(listing.stderr)")
        let lines = listing.text.split(separator: "\n").map(String.init)
        #expect(lines.count == 7)
        func line(_ name: String) -> String? {
            lines.first { $0.hasSuffix(" " + name) || $0.contains(" " + name + " -> ") }
        }
        #expect(line("bin")?.hasPrefix("drwxr-xr-x") == true)
        #expect(line("dev/console")?.hasPrefix("crw-------") == true)
        #expect(line("dev/console")?.contains("5,   1") == true)
        #expect(line("bin/busybox")?.hasPrefix("-rwxr-xr-x") == true)
        #expect(line("bin/sh")?.hasSuffix("bin/sh -> busybox") == true)
        #expect(line("tmp")?.hasPrefix("drwxrwxrwt") == true)
        for entry in lines {
            #expect(entry.contains(" root "), "\(entry)")
            #expect(entry.contains("2023"), "\(entry)")
        }
    }

    @Test("file contents come back unchanged, whatever their length")
    func contentsRoundTrip() throws {
        let archive = sampleArchive().encoded()
        #expect(archive.count % 512 == 0)
        let busybox = try ExternalTool.run("cpio", ["-i", "--quiet", "--to-stdout", "bin/busybox"], input: archive)
        #expect(busybox.text == "#!/bin/sh\necho hi\n")
        let odd = try ExternalTool.run("cpio", ["-i", "--quiet", "--to-stdout", "odd"], input: archive)
        #expect(odd.stdout == Data([0, 1, 2]))
    }

    @Test("the same entries give the same bytes")
    func encodingIsDeterministic() {
        #expect(sampleArchive().encoded() == sampleArchive().encoded())
    }
}
