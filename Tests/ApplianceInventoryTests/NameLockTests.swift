import ApplianceInventory
import Foundation
import Testing

/// One run at a time per appliance name; the kernel frees the lock of a dead process.
@Suite struct NameLockTests {
    /// util-linux `flock(1)`, which the cross-process tests use to hold or probe a lock from another process.
    static let hasFlockTool = FileManager.default.isExecutableFile(atPath: "/usr/bin/flock")

    @Test func aSecondAcquireFailsAtOnceAndNamesTheHolder() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let lock = try NameLock.acquire(
            name: "new-vm",
            directory: directory.url,
            command: "appliancectl provision new-vm"
        )
        let error = try #require(throws: InventoryError.self) {
            try NameLock.acquire(name: "new-vm", directory: directory.url)
        }
        #expect(error.code == .locked)
        #expect(
            error.message
                == "new-vm is being provisioned by pid \(getpid()) (appliancectl provision new-vm); wait for it or kill it"
        )
        // Other names are independent.
        let other = try NameLock.acquire(name: "old-box", directory: directory.url)
        #expect(other.isHeld)

        lock.release()
        #expect(!lock.isHeld)
        let again = try NameLock.acquire(name: "new-vm", directory: directory.url)
        #expect(again.isHeld)
        lock.release()  // a second release does nothing to the new holder
        #expect(throws: InventoryError.self) { try NameLock.acquire(name: "new-vm", directory: directory.url) }
    }

    @Test func theLockIsReleasedWhenItGoesAway() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        do {
            let lock = try NameLock.acquire(name: "new-vm", directory: directory.url)
            #expect(lock.isHeld)
        }
        #expect(try NameLock.acquire(name: "new-vm", directory: directory.url).isHeld)
    }

    @Test(.enabled(if: hasFlockTool, "needs /usr/bin/flock (util-linux)"))
    func anotherProcessCannotTakeAHeldLock() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let lock = try NameLock.acquire(name: "new-vm", directory: directory.url)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/flock")
        process.arguments = ["--nonblock", "--conflict-exit-code", "9", lock.file.path, "true"]
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 9)
        lock.release()
    }

    @Test(.enabled(if: hasFlockTool, "needs /usr/bin/flock (util-linux)"))
    func theKernelReleasesTheLockOfADeadProcess() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let file = directory.url.appendingPathComponent("new-vm.lock")
        // The child locks the file the way NameLock does, writes its pid and command, says so and waits.
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = [
            "-c",
            """
            exec 9>>"$1" && /usr/bin/flock -n 9 || exit 3
            printf '%s appliancectl provision new-vm\\n' "$$" > "$1"
            echo ready
            exec sleep 30
            """,
            "sh", file.path,
        ]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        let ready = output.fileHandleForReading.availableData
        #expect(String(decoding: ready, as: UTF8.self) == "ready\n")

        let error = try #require(throws: InventoryError.self) {
            try NameLock.acquire(name: "new-vm", directory: directory.url)
        }
        #expect(
            error.message == "new-vm is being provisioned by pid \(process.processIdentifier) "
                + "(appliancectl provision new-vm); wait for it or kill it"
        )

        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        let lock = try NameLock.acquire(name: "new-vm", directory: directory.url)
        #expect(lock.isHeld)
    }

    @Test func badNamesAreRefused() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        for name in ["../etc/passwd", "", "UPPER", "a/b"] {
            let error = try #require(throws: InventoryError.self) {
                try NameLock.acquire(name: name, directory: directory.url)
            }
            #expect(error.code == .invalidArgument)
        }
    }
}
