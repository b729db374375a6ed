import Foundation

/// Writes a "newc" (SVR4, no CRC) cpio archive, the format the Linux kernel unpacks as an initramfs.
///
/// Written here rather than by `cpio -o` so the archive is the same bytes on every build: every entry is owned by
/// root, has one fixed mtime, and inode numbers count up from 1 in the order entries are added. It can also hold
/// device nodes (`/dev/console`) without root privileges on the build host.
struct CPIOArchive {
    enum Kind {
        case directory
        case file(Data)
        case symlink(String)
        case characterDevice(major: UInt32, minor: UInt32)
    }

    struct Entry {
        var path: String
        var kind: Kind
        var permissions: UInt32
    }

    private(set) var entries: [Entry] = []
    var modificationTime: UInt32

    init(modificationTime: UInt32) {
        self.modificationTime = modificationTime
    }

    /// Adds a directory; parents must be added first (the kernel does not create them).
    mutating func addDirectory(_ path: String, permissions: UInt32 = 0o755) {
        entries.append(Entry(path: path, kind: .directory, permissions: permissions))
    }

    mutating func addFile(_ path: String, contents: Data, permissions: UInt32 = 0o644) {
        entries.append(Entry(path: path, kind: .file(contents), permissions: permissions))
    }

    mutating func addSymlink(_ path: String, target: String) {
        entries.append(Entry(path: path, kind: .symlink(target), permissions: 0o777))
    }

    mutating func addCharacterDevice(_ path: String, major: UInt32, minor: UInt32, permissions: UInt32 = 0o600) {
        entries.append(
            Entry(path: path, kind: .characterDevice(major: major, minor: minor), permissions: permissions)
        )
    }

    /// The archive bytes, ending with the `TRAILER!!!` entry.
    func encoded() -> Data {
        var output = Data()
        for (index, entry) in entries.enumerated() {
            let name = entry.path.hasPrefix("/") ? String(entry.path.dropFirst()) : entry.path
            var mode = entry.permissions & 0o7777
            var body = Data()
            var links: UInt32 = 1
            var rdevMajor: UInt32 = 0
            var rdevMinor: UInt32 = 0
            switch entry.kind {
            case .directory:
                mode |= 0o040000
                links = 2
            case .file(let contents):
                mode |= 0o100000
                body = contents
            case .symlink(let target):
                mode |= 0o120000
                body = Data(target.utf8)
            case .characterDevice(let major, let minor):
                mode |= 0o020000
                rdevMajor = major
                rdevMinor = minor
            }
            appendEntry(
                to: &output,
                name: name,
                inode: UInt32(index + 1),
                mode: mode,
                links: links,
                body: body,
                rdevMajor: rdevMajor,
                rdevMinor: rdevMinor
            )
        }
        appendEntry(
            to: &output,
            name: "TRAILER!!!",
            inode: 0,
            mode: 0,
            links: 1,
            body: Data(),
            rdevMajor: 0,
            rdevMinor: 0
        )
        // Pad to a 512-byte block like cpio(1); the kernel ignores trailing zeros.
        let remainder = output.count % 512
        if remainder != 0 {
            output.append(Data(count: 512 - remainder))
        }
        return output
    }

    private func appendEntry(
        to output: inout Data,
        name: String,
        inode: UInt32,
        mode: UInt32,
        links: UInt32,
        body: Data,
        rdevMajor: UInt32,
        rdevMinor: UInt32
    ) {
        let nameBytes = Data(name.utf8) + Data([0])
        let fields: [UInt32] = [
            inode, mode, 0, 0, links, modificationTime, UInt32(body.count), 0, 0, rdevMajor, rdevMinor,
            UInt32(nameBytes.count), 0,
        ]
        var header = "070701"
        for field in fields {
            let hex = String(field, radix: 16, uppercase: true)
            header += String(repeating: "0", count: 8 - hex.count) + hex
        }
        output.append(Data(header.utf8))
        output.append(nameBytes)
        padToFour(&output)
        output.append(body)
        padToFour(&output)
    }

    private func padToFour(_ output: inout Data) {
        let remainder = output.count % 4
        if remainder != 0 {
            output.append(Data(count: 4 - remainder))
        }
    }
}
