public import Foundation
import ProcessSpawn

#if canImport(Glibc)
    import Glibc
#endif

/// appliancectl's own unprivileged libvirt session daemon (P2's default for a new user): no /etc changes, no
/// systemd. As root it runs as `nobody` (uid 65534) through `setpriv`, with HOME and the XDG directories in
/// `root`, so QEMU never runs with root's rights; as another user it runs as that user.
///
/// Every file QEMU opens (pool volumes, console logs) lives under `root`, which that user owns.
public struct SessionDaemon: Sendable {
    /// The daemon's home: its sockets, configuration, logs and the default storage pool live below.
    public let root: URL
    /// The uid the daemon runs as (65534 when started by root, else the caller's).
    public let uid: uid_t
    public let gid: gid_t

    /// The default location: `APPLIANCECTL_LIBVIRT_HOME`, else `/var/lib/appliancectl/libvirt` for root (root's
    /// home is not readable by `nobody`), else `~/.appliancectl/libvirt`.
    public static func standard() -> SessionDaemon {
        let environment = ProcessInfo.processInfo.environment
        let path: String
        if let configured = environment["APPLIANCECTL_LIBVIRT_HOME"], !configured.isEmpty {
            path = configured
        } else if geteuid() == 0 {
            path = "/var/lib/appliancectl/libvirt"
        } else {
            path = NSHomeDirectory() + "/.appliancectl/libvirt"
        }
        return SessionDaemon(root: URL(fileURLWithPath: path, isDirectory: true))
    }

    public init(root: URL) {
        self.root = root
        if geteuid() == 0 {
            uid = 65534
            gid = 65534
        } else {
            uid = geteuid()
            gid = getegid()
        }
    }

    public var socketPath: String { root.appendingPathComponent("run/libvirt/libvirt-sock").path }
    public var pidFile: String { root.appendingPathComponent("run/libvirt/libvirtd.pid").path }
    /// The URI that reaches this daemon.
    public var uri: String { "qemu+unix:///session?socket=\(socketPath)" }
    /// The directory of the default storage pool.
    public var poolDirectory: URL { root.appendingPathComponent("pool", isDirectory: true) }

    /// The daemon's pid when it is running.
    public func runningPid() -> pid_t? {
        guard let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
            let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0,
            Self.isAlive(pid), FileManager.default.fileExists(atPath: socketPath)
        else { return nil }
        return pid
    }

    /// Starts the daemon unless it runs already; returns its URI once its socket answers.
    @discardableResult
    public func ensureRunning(timeout: Duration = .seconds(20)) throws -> String {
        if runningPid() != nil { return uri }
        guard let libvirtd = Self.findTool("libvirtd", in: ["/usr/sbin", "/usr/bin", "/sbin"]) else {
            throw ProvisioningError(
                .daemon,
                "libvirtd is not installed; install the Debian packages libvirt-daemon libvirt-daemon-driver-qemu "
                    + "qemu-system-x86 (scripts/setup.sh does), or pass --connect with a libvirt URI"
            )
        }
        try prepareRoot()
        try writeQEMUConfig()
        // A socket left by a daemon that died would make the new one fail to bind.
        try? FileManager.default.removeItem(atPath: socketPath)
        var arguments: [String] = []
        let executable: String
        if geteuid() == 0 {
            guard let setpriv = Self.findTool("setpriv", in: ["/usr/bin", "/bin"]) else {
                throw ProvisioningError(.daemon, "setpriv is missing; install the Debian package util-linux")
            }
            executable = setpriv
            arguments = ["--reuid=\(uid)", "--regid=\(gid)", "--clear-groups", libvirtd, "-d"]
        } else {
            executable = libvirtd
            arguments = ["-d"]
        }
        let environment = [
            "HOME=\(root.path)",
            "XDG_RUNTIME_DIR=\(root.appendingPathComponent("run").path)",
            "XDG_CONFIG_HOME=\(root.appendingPathComponent("config").path)",
            "XDG_CACHE_HOME=\(root.appendingPathComponent("cache").path)",
            "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
        ]
        // posix_spawn and waitpid, not Foundation's Process: Process learns of the exit through a descriptor the
        // child inherits, and the daemonised grandchild keeps it open, so waitUntilExit would never return.
        let startLog = root.appendingPathComponent("libvirtd-start.log").path
        let status: Int32
        do {
            status = try Spawn.runAndWait(executable, arguments: arguments, environment: environment, output: startLog)
        } catch {
            throw ProvisioningError(.daemon, "\(error); check the libvirt installation")
        }
        guard status == 0 else {
            let message = (try? String(contentsOfFile: startLog, encoding: .utf8)) ?? ""
            throw ProvisioningError(
                .daemon,
                "libvirtd did not start (exit \(status)): "
                    + "\(message.trimmingCharacters(in: .whitespacesAndNewlines)); see \(logFile.path)"
            )
        }
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if runningPid() != nil { return uri }
            usleep(50_000)
        }
        throw ProvisioningError(
            .daemon,
            "libvirtd started but its socket \(socketPath) did not appear in \(timeout); see \(logFile.path)"
        )
    }

    /// Stops the daemon (SIGTERM, then SIGKILL after `grace`). Running VMs keep running: QEMU is not its child.
    public func stop(grace: Duration = .seconds(3)) {
        guard let pid = runningPid() else { return }
        kill(pid, SIGTERM)
        let deadline = ContinuousClock.now + grace
        while ContinuousClock.now < deadline {
            if !Self.isAlive(pid) { return }
            usleep(50_000)
        }
        kill(pid, SIGKILL)
    }

    public var logFile: URL { root.appendingPathComponent("cache/libvirt/libvirtd.log") }

    /// The longest `root` whose QEMU monitor sockets still fit a UNIX socket path (108 bytes): libvirt puts them
    /// at `<root>/config/libvirt/qemu/lib/domain-<id>-<first 20 characters of the name>/monitor.sock`.
    public static let longestRoot = 37

    /// Creates `root` owned by the daemon's user, and checks that user can reach it.
    private func prepareRoot() throws {
        guard root.path.utf8.count <= Self.longestRoot else {
            throw ProvisioningError(
                .daemon,
                "the libvirt daemon's home \(root.path) is too long for the UNIX sockets QEMU gets below it "
                    + "(at most \(Self.longestRoot) characters); set APPLIANCECTL_LIBVIRT_HOME to a shorter path, "
                    + "e.g. /var/lib/appliancectl/libvirt"
            )
        }
        let manager = FileManager.default
        var missing: [URL] = []
        var next = root.standardizedFileURL.deletingLastPathComponent()
        while !manager.fileExists(atPath: next.path) && next.path != "/" {
            missing.append(next)
            next = next.deletingLastPathComponent()
        }
        do {
            try manager.createDirectory(at: root, withIntermediateDirectories: true)
        } catch {
            throw ProvisioningError(.daemon, "cannot create \(root.path) (\(error)); choose APPLIANCECTL_LIBVIRT_HOME")
        }
        // Parents made here are searchable by the daemon's user (appliancectl's umask 077 would close them); they
        // hold nothing but the daemon's directory.
        for parent in missing { chmod(parent.path, 0o711) }
        if geteuid() == 0 {
            guard chown(root.path, uid, gid) == 0 else {
                throw ProvisioningError(.daemon, "cannot hand \(root.path) to uid \(uid) (errno \(errno))")
            }
            // Every parent must let `nobody` through, or QEMU cannot open the volumes.
            var parent = root.deletingLastPathComponent()
            while parent.path != "/" {
                var info = stat()
                if stat(parent.path, &info) == 0, info.st_mode & 0o001 == 0 {
                    throw ProvisioningError(
                        .daemon,
                        "\(parent.path) is not searchable by other users, so the unprivileged libvirt daemon "
                            + "cannot use \(root.path); set APPLIANCECTL_LIBVIRT_HOME to a directory under /var/lib "
                            + "or /tmp"
                    )
                }
                parent = parent.deletingLastPathComponent()
            }
        }
        chmod(root.path, 0o711)
    }

    /// The daemon's qemu.conf: libvirt's own seccomp sandbox denies QEMU every fork and exec (`spawn=deny`), which
    /// would kill the `guestfwd` command a VM reaches the old box through during a live migration. libvirt's is
    /// turned off here and every domain asks for the same sandbox minus that one rule
    /// (`Templates/domain.xml.mustache`), so QEMU still runs confined.
    private func writeQEMUConfig() throws {
        let directory = root.appendingPathComponent("config/libvirt", isDirectory: true)
        let file = directory.appendingPathComponent("qemu.conf")
        let text =
            "# Written by appliancectl (SessionDaemon.writeQEMUConfig): the domains carry their own -sandbox.\n"
            + "seccomp_sandbox = 0\n"
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try Data(text.utf8).write(to: file, options: .atomic)
        } catch {
            throw ProvisioningError(.daemon, "cannot write \(file.path) (\(error)); check APPLIANCECTL_LIBVIRT_HOME")
        }
        if geteuid() == 0 {
            for path in [directory.deletingLastPathComponent().path, directory.path, file.path] {
                guard chown(path, uid, gid) == 0 else {
                    throw ProvisioningError(.daemon, "cannot hand \(path) to uid \(uid) (errno \(errno))")
                }
            }
        }
    }

    /// Whether `pid` is a live process (not gone, not a zombie nobody reaped: PID 1 in a container may not reap).
    static func isAlive(_ pid: pid_t) -> Bool {
        guard kill(pid, 0) == 0 else { return false }
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return true }
        return stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).first != "Z"
    }

    static func findTool(_ name: String, in directories: [String]) -> String? {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init)
        for directory in directories + path {
            let candidate = directory + "/" + name
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}
