import Foundation

/// The two initramfs archives: `initrd.img` (drivers, then the root disk) and `bare-initrd.img` (the benchmark
/// baseline). Both hold busybox with a link per applet in `/bin`, the kernel modules to load, and `/init`.
enum Initramfs {
    /// A kernel module to put into the archive.
    struct Module {
        var name: String
        var file: URL
    }

    /// The archive of `initrd.img`.
    static func appliance(busybox: URL, applets: [String], modules: [Module], modificationTime: Int) throws
        -> CPIOArchive
    {
        var archive = try base(busybox: busybox, applets: applets, modules: modules, modificationTime: modificationTime)
        archive.addDirectory("/newroot")
        let initScript = GuestScripts.initramfsInit.replacingOccurrences(
            of: GuestScripts.modulesPlaceholder,
            with: modules.map(\.name).joined(separator: " ")
        )
        archive.addFile("/init", contents: Data(initScript.utf8), permissions: 0o755)
        return archive
    }

    /// The archive of `bare-initrd.img`.
    static func bare(busybox: URL, applets: [String], modules: [Module], modificationTime: Int) throws -> CPIOArchive {
        var archive = try base(busybox: busybox, applets: applets, modules: modules, modificationTime: modificationTime)
        archive.addDirectory("/run")
        archive.addDirectory("/usr")
        archive.addDirectory("/usr/share")
        archive.addDirectory("/usr/share/udhcpc")
        archive.addFile(
            "/usr/share/udhcpc/default.script",
            contents: Data(GuestScripts.udhcpcScript.utf8),
            permissions: 0o755
        )
        archive.addSymlink("/etc/resolv.conf", target: "/run/resolv.conf")
        archive.addDirectory("/www")
        archive.addFile("/www/index.html", contents: Data("bare ok\n".utf8))
        let initScript = GuestScripts.bareInit.replacingOccurrences(
            of: GuestScripts.modulesPlaceholder,
            with: modules.map(\.name).joined(separator: " ")
        )
        archive.addFile("/init", contents: Data(initScript.utf8), permissions: 0o755)
        return archive
    }

    private static func base(busybox: URL, applets: [String], modules: [Module], modificationTime: Int) throws
        -> CPIOArchive
    {
        var archive = CPIOArchive(modificationTime: UInt32(modificationTime))
        for directory in ["/bin", "/dev", "/etc", "/lib", "/lib/modules", "/proc", "/sys", "/tmp"] {
            archive.addDirectory(directory, permissions: directory == "/tmp" ? 0o1777 : 0o755)
        }
        // The kernel opens /dev/console for /init before devtmpfs is mounted.
        archive.addCharacterDevice("/dev/console", major: 5, minor: 1)
        archive.addFile("/bin/busybox", contents: try FileSystem.read(busybox), permissions: 0o755)
        var names: Set<String> = ["busybox", "linuxrc"]
        for applet in applets {
            let name = (applet as NSString).lastPathComponent
            if names.insert(name).inserted {
                archive.addSymlink("/bin/\(name)", target: "busybox")
            }
        }
        for module in modules {
            archive.addFile("/lib/modules/\(module.name).ko", contents: try FileSystem.read(module.file))
        }
        return archive
    }

    /// Writes `archive` gzip-compressed to `destination` (`gzip -n`: no name or time stamp in the header).
    static func write(_ archive: CPIOArchive, to destination: URL, work: URL) throws {
        let cpio = work.appendingPathComponent(destination.lastPathComponent + ".cpio")
        try FileSystem.write(archive.encoded(), to: cpio)
        defer { FileSystem.remove(cpio) }
        try Command.run(.gzip, ["-n", "-9", "-c", cpio.path], standardOutput: destination)
    }
}
