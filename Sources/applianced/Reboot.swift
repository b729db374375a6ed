import Foundation
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// A8 reboot of a process appliance: every listener is closed by now; the process image is replaced by a new
/// one with the same arguments, so the box comes back as after a power cycle (same data directory, new uptime).
enum Reboot {
    static func restart(exitStatus: Int32?, logger: Logger) throws {
        if let exitStatus {
            logger.notice("Rebooting: exiting for the init", metadata: ["exit.status": "\(exitStatus)"])
            exit(exitStatus)
        }
        logger.notice("Rebooting: starting applianced again")
        closeOnExec()
        let arguments = CommandLine.arguments
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) }
        argv.append(nil)
        execv("/proc/self/exe", &argv)
        let reason = String(cString: strerror(errno))
        throw RebootFailure(message: "cannot start applianced again (\(reason)); start it by hand")
    }

    /// Databases and files the old image opened must not leak into the new one.
    static func closeOnExec() {
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        for fd in fds.compactMap(Int32.init) where fd > 2 {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
    }

    struct RebootFailure: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }
}
