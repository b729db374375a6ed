public import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Where appliancectl keeps pins, locks, the journal, run reports, built images and the fetch ledger, readable
/// by no one else. The one place that resolves it: every command and library asks this type.
///
/// It holds what lets a run go on (journal, pins) and what a run leaves (reports, snapshots), so it is 0700, and
/// appliancectl runs with umask 077, so every file in it is 0600. The libvirt session daemon, which runs as
/// `nobody` under root, never reads it: images reach the pool through libvirt's volume upload, and the daemon's
/// own directory is elsewhere (`APPLIANCECTL_LIBVIRT_HOME`, see `SessionDaemon`).
public struct StateDirectory: Sendable, Equatable {
    public let url: URL

    /// `option` (--state-dir), else `$APPLIANCECTL_HOME`, else `~/.appliancectl`; created and made private.
    public init(_ option: String?, environment: [String: String] = ProcessInfo.processInfo.environment) {
        let path = option ?? environment["APPLIANCECTL_HOME"] ?? (NSHomeDirectory() + "/.appliancectl")
        self.init(url: URL(fileURLWithPath: path, isDirectory: true))
    }

    /// The state directory at `url`, created and made private.
    public init(url: URL) {
        self.url = url
        Self.restrict(url)
    }

    /// The journal of every run.
    public var journal: URL { url.appendingPathComponent("journal.sqlite") }
    /// One lock file per appliance name.
    public var locks: URL { url.appendingPathComponent("locks") }
    /// One directory per run: backup, staging, snapshots, report.
    public var runs: URL { url.appendingPathComponent("runs") }
    /// The directory of run `id`.
    public func run(_ id: String) -> URL { runs.appendingPathComponent(id) }
    /// The cache of built images.
    public var images: URL { url.appendingPathComponent("images") }
    /// Which package files `updates fetch` handed out.
    public var fetchLedger: URL { url.appendingPathComponent("fetched.json") }

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
