import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Where appliancectl keeps pins, locks, the journal, run reports and built images, readable by no one else.
///
/// It holds what lets a run go on (journal, pins) and what a run leaves (reports, snapshots), so it is 0700, and
/// appliancectl runs with umask 077, so every file in it is 0600. The libvirt session daemon, which runs as
/// `nobody` under root, never reads it: images reach the pool through libvirt's volume upload, and the daemon's
/// own directory is elsewhere (`APPLIANCECTL_LIBVIRT_HOME`, see `SessionDaemon`).
enum StateHome {
    /// `option` (--state-dir), else `$APPLIANCECTL_HOME`, else `~/.appliancectl`; made private when it exists.
    static func directory(_ option: String?) -> URL {
        let path =
            option ?? ProcessInfo.processInfo.environment["APPLIANCECTL_HOME"]
            ?? (NSHomeDirectory() + "/.appliancectl")
        let url = URL(fileURLWithPath: path, isDirectory: true)
        restrict(url)
        return url
    }

    /// Creates `url` if missing and makes it 0700, fixing one an older version left open. Failures surface when
    /// the directory is used, with what to do.
    static func restrict(_ url: URL) {
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        var info = stat()
        if stat(url.path, &info) == 0, info.st_mode & 0o777 != 0o700 {
            chmod(url.path, 0o700)
        }
    }
}
