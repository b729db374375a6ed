import Foundation

/// The appliance's root disk: an ext4 file system holding busybox, applianced and the libraries it links,
/// made by `mke2fs -d` and shrunk to its used blocks by `qemu-img convert -O qcow2`.
enum RootDisk {
    /// Size of the file system and of the disk image. Sparse: unused blocks take no space. The guest grows the file
    /// system online (`resize2fs`) to fill a larger disk, but cannot shrink it: a VM's disk must be at least this.
    static let size: Int64 = 1 << 30
    /// Fixed file system UUID and directory hash seed, so two builds give the same bytes.
    static let fileSystemUUID = "0b6f3a52-6a1e-4c55-9d1e-2f0a5e7c4a11"
    static let hashSeed = "7d1c9e20-3b4f-4e8a-a6d2-5c8b1f0e9a37"

    /// mke2fs settings pinned here rather than taken from the host's /etc/mke2fs.conf (Debian 12's ext4 defaults),
    /// so the file system does not change with the build host's configuration.
    static let mke2fsConfiguration = """
        [defaults]
        \tbase_features = sparse_super,large_file,filetype,resize_inode,dir_index,ext_attr
        \tdefault_mntopts = acl,user_xattr
        \tenable_periodic_fsck = 0
        \tblocksize = 4096
        \tinode_size = 256
        \tinode_ratio = 16384

        [fs_types]
        \text4 = {
        \t\tfeatures = has_journal,extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,extra_isize
        \t}

        """

    /// The path the applianced binary has inside the guest.
    static let appliancedPath = "/usr/lib/appliance/applianced"

    /// Every shared library `ldd` lists for `binary`, as the absolute paths it prints them (the loader included).
    ///
    /// - Throws: `ImageError.invalidInput` when a library is not installed on the build host.
    static func sharedLibraries(of binary: URL) throws -> [String] {
        let result = try Command.output(.ldd, [binary.path])
        let text = result.text + result.stderr
        if result.status != 0 {
            if text.contains("not a dynamic executable") || text.contains("statically linked") {
                return []
            }
            throw Command.failure(.ldd, [binary.path], result)
        }
        var libraries: [String] = []
        var missing: [String] = []
        for line in result.text.split(separator: "\n") {
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            if let arrow = words.firstIndex(of: "=>") {
                guard arrow + 1 < words.count else {
                    continue
                }
                if words[arrow + 1] == "not" {
                    missing.append(words[0])
                } else if words[arrow + 1].hasPrefix("/") {
                    libraries.append(words[arrow + 1])
                }
            } else if let first = words.first, first.hasPrefix("/") {
                libraries.append(first)
            }
        }
        guard missing.isEmpty else {
            throw ImageError(
                code: .invalidInput,
                message: "\(binary.path) needs \(missing.joined(separator: ", ")), not installed on this host; "
                    + "install the packages that provide them (scripts/setup.sh) and build again"
            )
        }
        var seen: Set<String> = []
        return libraries.filter { seen.insert($0).inserted }
    }

    /// Lays out the root file system in `staging`.
    static func stage(
        in staging: URL,
        busybox: URL,
        applets: [String],
        applianced: URL,
        resize2fs: URL,
        libraries: [String],
        guestPort: Int
    ) throws {
        func path(_ absolute: String) -> URL {
            staging.appendingPathComponent(String(absolute.drop(while: { $0 == "/" })))
        }
        let directories: [(String, Int)] = [
            ("/bin", 0o755), ("/sbin", 0o755), ("/usr/bin", 0o755), ("/usr/sbin", 0o755),
            ("/usr/lib/appliance", 0o755), ("/usr/share/udhcpc", 0o755), ("/etc/acpi/PWRF", 0o755),
            ("/proc", 0o555), ("/sys", 0o555), ("/dev", 0o755), ("/run", 0o755), ("/tmp", 0o1777),
            ("/root", 0o700), ("/var/lib/applianced", 0o700), ("/var/log", 0o755),
        ]
        for (directory, permissions) in directories {
            try FileSystem.createDirectory(path(directory), permissions: permissions, intermediates: 0o755)
        }

        try FileSystem.copyFile(busybox, to: path("/bin/busybox"), permissions: 0o755)
        for applet in applets {
            let absolute = "/" + applet.drop(while: { $0 == "/" })
            let name = (absolute as NSString).lastPathComponent
            guard absolute != "/bin/busybox", name != "linuxrc", absolute.split(separator: "/").count > 1 else {
                continue
            }
            try FileSystem.createDirectory(path((absolute as NSString).deletingLastPathComponent), intermediates: 0o755)
            if !FileManager.default.fileExists(atPath: path(absolute).path) {
                try FileSystem.symlink(path(absolute), to: "/bin/busybox")
            }
        }

        try FileSystem.copyFile(applianced, to: path(appliancedPath), permissions: 0o755)
        try FileSystem.copyFile(resize2fs, to: path("/sbin/resize2fs"), permissions: 0o755)
        for library in libraries {
            try FileSystem.createDirectory(path((library as NSString).deletingLastPathComponent), intermediates: 0o755)
            try FileSystem.copyFile(URL(fileURLWithPath: library), to: path(library))
        }

        let port = String(guestPort)
        let scripts: [(String, String)] = [
            (
                "/sbin/appliance-init",
                GuestScripts.applianceInit.replacingOccurrences(of: GuestScripts.portPlaceholder, with: port)
            ),
            ("/usr/share/udhcpc/default.script", GuestScripts.udhcpcScript),
            ("/etc/acpi/PWRF/00000080", GuestScripts.powerButton),
        ]
        for (file, text) in scripts {
            try FileSystem.write(Data(text.utf8), to: path(file), permissions: 0o755)
        }
        let configuration: [(String, String)] = [
            ("/etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"),
            ("/etc/group", "root:x:0:\nnogroup:x:65534:\n"),
            ("/etc/hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"),
            (
                "/etc/nsswitch.conf",
                "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\n"
                    + "protocols: files\nservices: files\n"
            ),
        ]
        for (file, text) in configuration {
            try FileSystem.write(Data(text.utf8), to: path(file))
        }
        try FileSystem.symlink(path("/etc/resolv.conf"), to: "/run/resolv.conf")
        // resize2fs finds out that the root is mounted (and resizes online) through /etc/mtab.
        try FileSystem.symlink(path("/etc/mtab"), to: "/proc/self/mounts")
    }

    /// Makes `qcow2` from the staged tree: a sparse raw ext4 image, every inode set to root:root and
    /// `modificationTime`, then converted so the qcow2 file holds only the used blocks.
    static func make(from staging: URL, work: URL, qcow2: URL, modificationTime: Int) throws {
        let raw = work.appendingPathComponent("disk.raw")
        let configuration = work.appendingPathComponent("mke2fs.conf")
        try FileSystem.write(Data(mke2fsConfiguration.utf8), to: configuration)
        do {
            try Data().write(to: raw)
            let handle = try FileHandle(forWritingTo: raw)
            try handle.truncate(atOffset: UInt64(size))
            try handle.close()
        } catch {
            throw ImageError(code: .fileSystem, message: "cannot create \(raw.path): \(error)")
        }
        defer { FileSystem.remove(raw) }
        let environment = [
            "MKE2FS_CONFIG": configuration.path,
            "E2FSPROGS_FAKE_TIME": String(modificationTime),
        ]
        try Command.run(
            .mke2fs,
            [
                "-q", "-F", "-t", "ext4", "-L", "appliance", "-U", fileSystemUUID,
                "-E", "root_owner=0:0,hash_seed=\(hashSeed)", "-d", staging.path, raw.path,
            ],
            environment: environment
        )

        // mke2fs -d copies each file's owner, atime and ctime from the staging tree; ctime cannot be set from user
        // space, so debugfs overwrites them in the image.
        var script = ""
        for path in try stagedPaths(staging) + ["/lost+found"] {
            let quoted = "\"\(path)\""
            for field in ["atime", "mtime", "ctime", "crtime"] {
                script += "sif \(quoted) \(field) @\(modificationTime)\n"
            }
            script += "sif \(quoted) uid 0\nsif \(quoted) gid 0\n"
        }
        let scriptURL = work.appendingPathComponent("debugfs.commands")
        try FileSystem.write(Data(script.utf8), to: scriptURL)
        let result = try Command.output(.debugfs, ["-w", "-f", scriptURL.path, raw.path], environment: environment)
        // debugfs exits 0 even when a command fails; its complaints go to standard error after the banner.
        let complaints = result.stderr.split(separator: "\n").filter { !$0.hasPrefix("debugfs ") }
        guard result.status == 0, complaints.isEmpty else {
            let detail =
                complaints.isEmpty ? "exit status \(result.status)" : complaints.prefix(5).joined(separator: "; ")
            throw ImageError(code: .toolFailed, message: "debugfs could not set owners and times: \(detail)")
        }

        try Command.run(.qemuImg, ["convert", "-f", "raw", "-O", "qcow2", raw.path, qcow2.path])
    }

    /// Every path in the staged tree, `/` first, as absolute guest paths in sorted order.
    static func stagedPaths(_ staging: URL) throws -> [String] {
        guard let enumerator = FileManager.default.enumerator(atPath: staging.path) else {
            throw ImageError(code: .fileSystem, message: "cannot list \(staging.path)")
        }
        var paths: [String] = []
        while let relative = enumerator.nextObject() as? String {
            paths.append("/" + relative)
        }
        return ["/"] + paths.sorted()
    }
}
