import BackupFormat
import Foundation
import Testing

/// A regular file read back from an archive.
struct ReadEntry: Equatable {
    var name: String
    var size: Int64
    var contents: [UInt8]
}

/// Reads a whole archive through TarReader in odd pieces, checking the event sequence is well formed.
func readArchive(_ archive: [UInt8], seed: UInt64 = 3) throws -> [ReadEntry] {
    var reader = TarReader()
    var entries: [ReadEntry] = []
    var open: ReadEntry?
    var ended = false
    for piece in oddPieces(archive, seed: seed) {
        for event in try piece.withUnsafeBytes({ try reader.feed($0) }) {
            #expect(!ended, "event after archiveEnd")
            switch event {
            case .entryStart(let name, let size):
                #expect(open == nil, "entryStart inside an entry")
                open = ReadEntry(name: name, size: size, contents: [])
            case .entryData(let bytes):
                #expect(open != nil && !bytes.isEmpty)
                open?.contents += bytes
            case .entryEnd:
                if let entry = open {
                    entries.append(entry)
                }
                open = nil
            case .archiveEnd:
                ended = true
            }
        }
    }
    try reader.finish()
    #expect(open == nil && ended)
    return entries
}

@Suite("tar")
struct TarTests {
    static let modificationTime = Date(timeIntervalSince1970: 1_700_000_000)

    /// 215 bytes: only fits by splitting into the ustar prefix (120 bytes) and name (94 bytes) fields.
    static let longName = String(repeating: "d", count: 120) + "/" + String(repeating: "f", count: 90) + ".bin"

    /// Members that exercise empty files, exact block multiples, chunk-sized data and prefix-split long names.
    static let members: [(name: String, contents: [UInt8])] = [
        ("manifest.json", Array("{\"formatVersion\":1}\n".utf8)),
        ("empty", []),
        ("data/block.bin", randomBytes(512, seed: 1)),
        ("data/database.sqlite", randomBytes(200_001, seed: 2)),
        (longName, randomBytes(99, seed: 3)),
    ]

    static func writeArchive() throws -> [UInt8] {
        var archive: [UInt8] = []
        for member in members {
            archive += try TarWriter.header(
                name: member.name,
                size: Int64(member.contents.count),
                modificationTime: modificationTime
            )
            archive += member.contents
            archive += TarWriter.padding(forSize: Int64(member.contents.count))
        }
        return archive + TarWriter.end()
    }

    @Test func writerOutputListsAndExtractsWithSystemTar() throws {
        let tar = try #require(ExternalTool.find("tar"), "tar is needed: apt-get install tar")
        let directory = try ExternalTool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let archivePath = directory.appendingPathComponent("backup.tar").path
        let archive = try Self.writeArchive()
        #expect(archive.count % 512 == 0)
        try Data(archive).write(to: URL(fileURLWithPath: archivePath))

        let listing = try ExternalTool.run(tar, ["-tvf", archivePath])
        #expect(listing.status == 0, "tar -tvf failed: \(listing.stderr)")
        #expect(listing.stderr.isEmpty, "tar warned: \(listing.stderr)")
        let lines = listing.stdoutText.split(separator: "\n")
        #expect(lines.count == Self.members.count)
        for (line, member) in zip(lines, Self.members) {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            #expect(fields.first == "-rw-r--r--", "\(line)")
            #expect(fields.contains(Substring(String(member.contents.count))), "size missing in \(line)")
            #expect(line.hasSuffix(" " + member.name), "name missing in \(line)")
        }

        let extracted = directory.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: extracted, withIntermediateDirectories: true)
        let extraction = try ExternalTool.run(tar, ["-xf", archivePath, "-C", extracted.path])
        #expect(extraction.status == 0, "tar -xf failed: \(extraction.stderr)")
        for member in Self.members {
            let data = try Data(contentsOf: extracted.appendingPathComponent(member.name))
            #expect([UInt8](data) == member.contents, "\(member.name) differs after extraction")
        }
        // The modification time survives.
        let attributes = try FileManager.default.attributesOfItem(
            atPath: extracted.appendingPathComponent("manifest.json").path
        )
        #expect((attributes[.modificationDate] as? Date) == Self.modificationTime)
    }

    @Test func readerReadsWriterOutput() throws {
        let entries = try readArchive(try Self.writeArchive())
        #expect(entries.map(\.name) == Self.members.map(\.name))
        #expect(entries.map(\.contents) == Self.members.map(\.contents))
        #expect(entries.map(\.size) == Self.members.map { Int64($0.contents.count) })
    }

    /// Archives written by system tar in its default (GNU), pax and ustar formats, with a directory and a long name.
    @Test(arguments: ["gnu", "pax", "ustar"])
    func readerReadsSystemTarArchives(format: String) throws {
        let tar = try #require(ExternalTool.find("tar"), "tar is needed: apt-get install tar")
        let directory = try ExternalTool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let source = directory.appendingPathComponent("src")
        let longDirectory = "dir/" + String(repeating: "n", count: 90)
        try FileManager.default.createDirectory(
            at: source.appendingPathComponent(longDirectory),
            withIntermediateDirectories: true
        )
        var files: [(name: String, contents: [UInt8])] = [
            ("top.txt", Array("hello\n".utf8)),
            ("dir/data.bin", randomBytes(70_001, seed: 4)),
            (longDirectory + "/" + String(repeating: "l", count: 60) + ".txt", randomBytes(3000, seed: 5)),
            ("dir/empty", []),
        ]
        if format != "ustar" {
            // Names ustar cannot hold: GNU tar stores them in ././@LongLink entries, pax in "path" records.
            files.append(("dir/" + String(repeating: "x", count: 120), randomBytes(600, seed: 6)))
            files.append(("dir/caf\u{e9}.txt", Array("accent\n".utf8)))
        }
        for file in files {
            try Data(file.contents).write(to: source.appendingPathComponent(file.name))
        }
        let archivePath = directory.appendingPathComponent("system.tar").path
        let result = try ExternalTool.run(
            tar,
            ["--format=\(format)", "-cf", archivePath, "-C", source.path, "top.txt", "dir"]
        )
        try #require(result.status == 0, "tar -cf failed: \(result.stderr)")

        let entries = try readArchive([UInt8](try Data(contentsOf: URL(fileURLWithPath: archivePath))))
        // Directories are skipped; every regular file comes back with its exact contents.
        let byName = Dictionary(uniqueKeysWithValues: entries.map { ($0.name, $0) })
        #expect(entries.count == files.count, "entries: \(entries.map(\.name))")
        for file in files {
            let entry = try #require(byName[file.name], "missing \(file.name) in \(entries.map(\.name))")
            #expect(entry.contents == file.contents)
            #expect(entry.size == Int64(file.contents.count))
        }
    }

    @Test func corruptedChecksumIsCorrupt() throws {
        var archive = try Self.writeArchive()
        archive[0] ^= 0x01  // First byte of the first name.
        #expect(backupErrorCode { _ = try readArchive(archive) } == .corrupt)
        var badSecond = try Self.writeArchive()
        badSecond[512 + 512 + 100] ^= 0x04  // Mode field of the second header ("empty").
        #expect(backupErrorCode { _ = try readArchive(badSecond) } == .corrupt)
    }

    @Test func truncatedArchiveIsTruncated() throws {
        let archive = try Self.writeArchive()
        let cuts = [0, 100, 512, 1000, 3 * 512 + 7, archive.count - 1024, archive.count - 512, archive.count - 1]
        for cut in cuts {
            let code = backupErrorCode { _ = try readArchive(Array(archive[..<cut])) }
            #expect(code == .truncated, "cut at \(cut) gave \(String(describing: code))")
        }
    }

    @Test func trailingRecordPaddingIsIgnored() throws {
        let archive = try Self.writeArchive() + [UInt8](repeating: 0, count: 10_240)
        #expect(try readArchive(archive).count == Self.members.count)
    }

    @Test func writerFieldLayout() throws {
        let header = try TarWriter.header(
            name: "a.txt",
            size: 0o1234,
            mode: 0o600,
            modificationTime: Self.modificationTime
        )
        #expect(header.count == 512)
        #expect(Array(header[100..<108]) == Array("0000600\0".utf8))
        #expect(Array(header[124..<136]) == Array("00000001234\0".utf8))
        #expect(Array(header[136..<148]) == Array((String(1_700_000_000, radix: 8) + "\0").utf8))
        #expect(header[156] == UInt8(ascii: "0"))
        #expect(Array(header[257..<265]) == Array("ustar\000".utf8))
        let maximum = try TarWriter.header(name: "big", size: TarWriter.maximumSize, modificationTime: Date())
        #expect(Array(maximum[124..<136]) == Array("77777777777\0".utf8))
        #expect(TarWriter.padding(forSize: 0).isEmpty)
        #expect(TarWriter.padding(forSize: 1).count == 511)
        #expect(TarWriter.padding(forSize: 512).isEmpty)
        #expect(TarWriter.padding(forSize: 8 * 1024 * 1024 * 1024 - 1).count == 1)
        #expect(TarWriter.end() == [UInt8](repeating: 0, count: 1024))
    }

    @Test func writerRejectsWhatUstarCannotHold() {
        let date = Date()
        let invalid: [(name: String, size: Int64)] = [
            ("", 0),
            ("caf\u{e9}.txt", 0),
            ("/etc/passwd", 0),
            ("../escape", 0),
            ("dir/", 0),
            ("a//b", 0),
            (String(repeating: "x", count: 101), 0),  // Too long and nowhere to split.
            (String(repeating: "p", count: 156) + "/name", 0),  // Prefix would exceed 155 bytes.
            (String(repeating: "a/", count: 128) + "z", 0),  // Over 255 bytes.
            ("big", TarWriter.maximumSize + 1),
            ("negative", -1),
        ]
        for (name, size) in invalid {
            let code = backupErrorCode { _ = try TarWriter.header(name: name, size: size, modificationTime: date) }
            #expect(code == .invalidArgument, "accepted \(name) size \(size)")
        }
        #expect(
            backupErrorCode { _ = try TarWriter.header(name: "m", size: 0, mode: 0o10000, modificationTime: date) }
                == .invalidArgument
        )
    }
}
