#if canImport(Glibc)
    import Glibc
#endif

/// Runs a program and waits for it with posix_spawn and waitpid, passing it no descriptor but its standard ones.
///
/// Not Foundation's `Process`: it learns of the exit through a descriptor the child inherits, so when the child
/// leaves a daemon behind (libvirtd -d, a hook that starts a forwarder) `waitUntilExit` never returns.
public enum Spawn {
    /// Why a program could not be started.
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// How a program run with a time limit ended.
    public enum Outcome: Sendable, Equatable {
        /// Its exit status, or 128 + the signal that ended it.
        case exited(Int32)
        /// It was still running at the limit; it and every process of its group were killed.
        case timedOut
    }

    /// Runs `executable` (a path) with stdin from /dev/null and stdout and stderr into the file `output`;
    /// returns its exit status, or 128 + the signal that ended it.
    public static func runAndWait(
        _ executable: String,
        arguments: [String],
        environment: [String],
        output: String
    ) throws -> Int32 {
        let pid = try spawn(executable, arguments: arguments, environment: environment, output: output, group: false)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return exitStatus(status)
    }

    /// Runs `executable` like `runAndWait`, in a process group of its own, for at most `timeout`: past it the
    /// group is killed (SIGKILL), so a hung self-test or a child it left behind cannot hold the caller.
    ///
    /// Blocks the calling thread; call it from a thread of its own, not from the cooperative pool.
    public static func run(
        _ executable: String,
        arguments: [String],
        environment: [String],
        output: String,
        timeout: Duration
    ) throws -> Outcome {
        let pid = try spawn(executable, arguments: arguments, environment: environment, output: output, group: true)
        let deadline = ContinuousClock.now + timeout
        var status: Int32 = 0
        while true {
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid { return .exited(exitStatus(status)) }
            if result < 0 && errno != EINTR {
                throw Failure(description: "cannot wait for \(executable) (errno \(errno))")
            }
            if ContinuousClock.now >= deadline {
                kill(-pid, SIGKILL)
                kill(pid, SIGKILL)
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                return .timedOut
            }
            usleep(10_000)
        }
    }

    /// WIFEXITED / WEXITSTATUS by hand (they are macros).
    private static func exitStatus(_ status: Int32) -> Int32 {
        status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }

    private static func spawn(
        _ executable: String,
        arguments: [String],
        environment: [String],
        output: String,
        group: Bool
    ) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        for descriptor in openDescriptors() where descriptor > 2 {
            // Closing a descriptor that is gone by then (the directory listing's own) is not an error here.
            if fcntl(descriptor, F_GETFD) >= 0 { posix_spawn_file_actions_addclose(&actions, descriptor) }
        }
        // The child starts with every signal at its default action and none blocked: a caller that ignores SIGTERM
        // (service lifecycles do, to handle it themselves) must not pass that on.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        sigfillset(&defaults)
        sigdelset(&defaults, SIGKILL)
        sigdelset(&defaults, SIGSTOP)
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var flags = POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK
        if group {
            // Its own group (led by itself), so a timeout can kill whatever it started as well.
            posix_spawnattr_setpgroup(&attributes, 0)
            flags |= POSIX_SPAWN_SETPGROUP
        }
        posix_spawnattr_setflags(&attributes, Int16(flags))
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup($0) } + [nil]
        defer {
            for pointer in argv + envp { free(pointer) }
        }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard result == 0 else {
            throw Failure(description: "cannot run \(executable) (error \(result))")
        }
        return pid
    }

    static func openDescriptors() -> [Int32] {
        guard let directory = opendir("/proc/self/fd") else { return [] }
        defer { closedir(directory) }
        var result: [Int32] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if let descriptor = Int32(name) { result.append(descriptor) }
        }
        return result
    }
}
