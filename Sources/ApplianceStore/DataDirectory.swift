public import Foundation
public import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// The layout of an appliance's data directory.
///
/// ```
/// DIR/appliance-id        the box's stable id (kept across factory resets: it names the hardware)
/// DIR/box.sqlite          box state: network, certificates, installed software, recordings index
/// DIR/site/site.sqlite    site state: users, sessions, settings, security, history, file store index
/// DIR/site/files/         file store contents
/// DIR/recordings/         session recordings (not part of a backup)
/// DIR/tmp/                scratch space for uploads and backup snapshots
/// DIR/site.restore/       a restore being staged; `COMPLETE` inside marks it whole
/// DIR/site.old/           the previous site while a restore is being committed
/// DIR/reset.trash/        what a factory reset is deleting
/// ```
public struct DataDirectory: Sendable {
    public let root: URL

    public init(_ path: String) {
        self.root = URL(fileURLWithPath: path, isDirectory: true).standardizedFileURL
    }

    public var applianceIdFile: URL { root.appendingPathComponent("appliance-id") }
    public var boxDatabase: URL { root.appendingPathComponent("box.sqlite") }
    public var site: URL { root.appendingPathComponent("site", isDirectory: true) }
    public var siteDatabase: URL { site.appendingPathComponent("site.sqlite") }
    public var files: URL { site.appendingPathComponent("files", isDirectory: true) }
    public var recordings: URL { root.appendingPathComponent("recordings", isDirectory: true) }
    public var tmp: URL { root.appendingPathComponent("tmp", isDirectory: true) }
    public var restoreStaging: URL { root.appendingPathComponent("site.restore", isDirectory: true) }
    public var restoreMarker: URL { restoreStaging.appendingPathComponent("COMPLETE") }
    public var siteOld: URL { root.appendingPathComponent("site.old", isDirectory: true) }
    public var resetTrash: URL { root.appendingPathComponent("reset.trash", isDirectory: true) }

    /// Creates the directories and finishes or undoes whatever a crash interrupted, so that the site is
    /// either the old one or the restored one in full, and a factory reset is either done or not begun.
    public func prepare(logger: Logger) throws {
        let fm = FileManager.default
        try fm.createDirectory(at: root, withIntermediateDirectories: true)
        try restrictPermissions()
        if fm.fileExists(atPath: resetTrash.path) {
            logger.notice("Finishing an interrupted factory reset")
            try fm.removeItem(at: resetTrash)
        }
        try recoverRestore(logger: logger)
        for dir in [site, files, recordings, tmp] {
            try fm.createDirectory(at: dir, withIntermediateDirectories: true)
        }
        // Scratch files of an interrupted upload or backup are worthless.
        for item in (try? fm.contentsOfDirectory(at: tmp, includingPropertiesForKeys: nil)) ?? [] {
            try? fm.removeItem(at: item)
        }
    }

    private func recoverRestore(logger: Logger) throws {
        let fm = FileManager.default
        if fm.fileExists(atPath: restoreStaging.path) {
            if fm.fileExists(atPath: restoreMarker.path) {
                // The staged site was verified in full before the marker was written: finish the switch.
                logger.notice("Finishing an interrupted restore")
                if fm.fileExists(atPath: site.path) {
                    if fm.fileExists(atPath: siteOld.path) { try fm.removeItem(at: siteOld) }
                    try fm.moveItem(at: site, to: siteOld)
                }
                try fm.moveItem(at: restoreStaging, to: site)
                try syncDirectory(root)
            } else {
                logger.notice("Discarding an incomplete restore; the previous site stays")
                try fm.removeItem(at: restoreStaging)
            }
        }
        if !fm.fileExists(atPath: site.path) && fm.fileExists(atPath: siteOld.path) {
            try fm.moveItem(at: siteOld, to: site)
            try syncDirectory(root)
        }
        let committedMarker = site.appendingPathComponent("COMPLETE")
        if fm.fileExists(atPath: committedMarker.path) { try fm.removeItem(at: committedMarker) }
        if fm.fileExists(atPath: siteOld.path) { try fm.removeItem(at: siteOld) }
    }

    /// Makes the directory and everything in it the appliance's alone: directories 0700, files without group or
    /// other bits. New files get that from the umask (applianced sets 077); this fixes what an older version or
    /// a copy left open.
    public func restrictPermissions() throws {
        guard chmod(root.path, 0o700) == 0 else {
            throw StoreError(.storage, "cannot make \(root.path) private (errno \(errno)); check who owns it")
        }
        guard let walker = FileManager.default.enumerator(atPath: root.path) else { return }
        while let relative = walker.nextObject() as? String {
            let path = root.appendingPathComponent(relative).path
            var info = stat()
            guard lstat(path, &info) == 0 else { continue }
            let type = info.st_mode & S_IFMT
            let mode = info.st_mode & 0o7777
            if type == S_IFDIR, mode != 0o700 {
                chmod(path, 0o700)
            } else if type == S_IFREG, mode & 0o077 != 0 {
                chmod(path, mode & 0o700)
            }
        }
    }

    /// Makes renames inside `url` durable.
    public func syncDirectory(_ url: URL) throws {
        let fd = open(url.path, O_RDONLY | O_DIRECTORY)
        guard fd >= 0 else { throw StoreError(.storage, "cannot open \(url.path) to sync it") }
        defer { close(fd) }
        fsync(fd)
    }

    /// A fresh scratch file path under `tmp/`.
    public func scratchFile(_ prefix: String) -> URL {
        tmp.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
    }
}
