import ArgumentParser
import Foundation

extension Applianced {
    /// Runs with the process's arguments as the kernel keeps them when Swift's are missing.
    ///
    /// Swift's Linux runtime finds argv by walking back from `environ` (swiftlang/swift#76080). A preloaded library
    /// whose first intercepted call moves `environ` before that leaves `CommandLine.arguments` empty: libfaketime
    /// does, since libswiftCore's own constructors call `stat()`, which libfaketime intercepts and answers by
    /// initialising itself with `setenv("FAKETIME_SHARED", …)`. Then every flag would be lost (`--data-dir`
    /// missing), so a box started under libfaketime, as the clock-skew test does, reads `/proc/self/cmdline`.
    static func main() async {
        guard CommandLine.arguments.isEmpty,
            let bytes = FileManager.default.contents(atPath: "/proc/self/cmdline"), !bytes.isEmpty
        else { return await main(nil) }
        let arguments = bytes.split(separator: 0, omittingEmptySubsequences: false).dropLast()
            .map { String(decoding: $0, as: UTF8.self) }
        await main(Array(arguments.dropFirst()))
    }
}
