import Foundation
import ProcessSpawn
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite("Spawn")
struct SpawnTests {
    let directory: URL = {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("spawn-\(UUID().uuidString)", isDirectory: true)
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }()

    @Test("the exit status and the output, stdout and stderr both, reach the caller")
    func statusAndOutput() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let log = directory.appendingPathComponent("out.log").path
        let status = try Spawn.runAndWait(
            "/bin/sh",
            arguments: ["-c", "echo to-stdout; echo to-stderr >&2; echo \"$GREETING\"; exit 7"],
            environment: ["GREETING=hello", "PATH=/usr/bin:/bin"],
            output: log
        )
        #expect(status == 7)
        let text = try String(contentsOfFile: log, encoding: .utf8)
        #expect(text == "to-stdout\nto-stderr\nhello\n")
    }

    @Test("a program ended by a signal reports 128 + the signal")
    func signalled() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let status = try Spawn.runAndWait(
            "/bin/sh",
            arguments: ["-c", "kill -TERM $$"],
            environment: [],
            output: directory.appendingPathComponent("out.log").path
        )
        #expect(status == 128 + SIGTERM)
    }

    @Test("a program that leaves a daemon behind returns as soon as it exits, and passes no descriptor of ours on")
    func daemonLeftBehind() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        // A descriptor of this process that a child must not inherit (Foundation's Process waits on such a pipe).
        var pipeEnds: [Int32] = [0, 0]
        #expect(pipe(&pipeEnds) == 0)
        defer {
            close(pipeEnds[0])
            close(pipeEnds[1])
        }
        let pidFile = directory.appendingPathComponent("daemon.pid").path
        let fdFile = directory.appendingPathComponent("daemon.fds").path
        let status = try Spawn.runAndWait(
            "/bin/sh",
            arguments: ["-c", "sleep 300 & echo $! > \(pidFile); ls /proc/self/fd > \(fdFile)"],
            environment: ["PATH=/usr/bin:/bin"],
            output: directory.appendingPathComponent("out.log").path
        )
        #expect(status == 0)
        let daemon = try #require(
            pid_t(try String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))
        )
        #expect(kill(daemon, 0) == 0, "the daemon still runs after runAndWait returned")
        kill(daemon, SIGKILL)
        let descriptors = try String(contentsOfFile: fdFile, encoding: .utf8).split(separator: "\n").compactMap {
            Int32($0)
        }
        // 0-2, and 3: the directory `ls` itself opens to list them. Not the pipe, not any other of ours.
        #expect(pipeEnds.allSatisfy { $0 > 2 })
        #expect(descriptors.allSatisfy { $0 <= 3 }, "inherited: \(descriptors)")
    }

    @Test("a time limit kills the program and what it started, and a program that finishes in time reports its exit")
    func timeout() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let pidFile = directory.appendingPathComponent("child.pid").path
        let started = ContinuousClock.now
        let outcome = try Spawn.run(
            "/bin/sh",
            arguments: ["-c", "sleep 300 & echo $! > \(pidFile); wait"],
            environment: ["PATH=/usr/bin:/bin"],
            output: directory.appendingPathComponent("out.log").path,
            timeout: .milliseconds(300)
        )
        #expect(outcome == .timedOut)
        #expect(ContinuousClock.now - started < .seconds(30))
        let child = try #require(
            pid_t(try String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))
        )
        // The child of the killed group is gone too (it may linger as a zombie of init for a moment).
        var gone = false
        for _ in 0..<500 where !gone {
            let stat = try? String(contentsOfFile: "/proc/\(child)/stat", encoding: .utf8)
            gone = kill(child, 0) != 0 || stat?.contains(") Z ") == true
            if !gone { usleep(10_000) }
        }
        #expect(gone, "the group's other process still runs")
        let quick = try Spawn.run(
            "/bin/sh",
            arguments: ["-c", "exit 3"],
            environment: [],
            output: directory.appendingPathComponent("out.log").path,
            timeout: .seconds(30)
        )
        #expect(quick == .exited(3))
    }
}
