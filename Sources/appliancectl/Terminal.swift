import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Progress and notes on standard error, so standard output stays clean for results and `--json`.
enum Terminal {
    static let isInteractive = isatty(STDERR_FILENO) == 1

    static func note(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    static func bytes(_ count: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(count)
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(count) B" : String(format: "%.1f %@", value, units[unit])
    }
}

/// The size of a file in bytes, 0 when it cannot be read.
func fileSize(_ path: String) -> Int64 {
    var info = stat()
    return stat(path, &info) == 0 ? Int64(info.st_size) : 0
}

/// A progress bar with bytes, rate and (when the total is known) percentage and ETA (P10).
final class ProgressBar: Sendable {
    private let label: String
    private let total: Int64?
    private let start = Date()
    private let state = Mutex<(last: Date, bytes: Int64)>((.distantPast, 0))

    init(label: String, total: Int64?) {
        self.label = label
        self.total = total
    }

    func update(_ bytes: Int64) {
        let now = Date()
        let draw = state.withLock { state -> Bool in
            state.bytes = bytes
            guard now.timeIntervalSince(state.last) >= 0.1 else { return false }
            state.last = now
            return true
        }
        if draw && Terminal.isInteractive { render(bytes, final: false) }
    }

    func finish() {
        let bytes = state.withLock { $0.bytes }
        render(bytes, final: true)
    }

    private func render(_ bytes: Int64, final: Bool) {
        let elapsed = max(Date().timeIntervalSince(start), 0.001)
        let rate = Double(bytes) / elapsed
        var line = "\(label) \(Terminal.bytes(bytes))"
        if let total, total > 0 {
            let fraction = min(1, Double(bytes) / Double(total))
            let filled = Int(fraction * 30)
            line =
                "\(label) [\(String(repeating: "#", count: filled))\(String(repeating: ".", count: 30 - filled))] "
                + "\(Int(fraction * 100))% \(Terminal.bytes(bytes))/\(Terminal.bytes(total))"
            if !final && rate > 0 {
                line += " ETA \(Int(Double(total - bytes) / rate)) s"
            }
        }
        line += " \(Terminal.bytes(Int64(rate)))/s"
        if final { line += " in \(String(format: "%.1f", elapsed)) s" }
        let text = (Terminal.isInteractive ? "\r\u{1B}[K" : "") + line + (final ? "\n" : "")
        FileHandle.standardError.write(Data(text.utf8))
    }
}

/// A spinner naming the step while the tool waits (P10); a plain line when standard error is not a terminal.
final class Spinner: Sendable {
    private let label: String
    private let start = ContinuousClock.now
    private let task: Mutex<Task<Void, Never>?> = Mutex(nil)

    init(_ label: String) {
        self.label = label
        guard Terminal.isInteractive else {
            Terminal.note("… \(label)")
            return
        }
        let frames = Array("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")
        let start = start
        task.withLock {
            $0 = Task {
                var index = 0
                while !Task.isCancelled {
                    let seconds = (ContinuousClock.now - start).components.seconds
                    FileHandle.standardError.write(
                        Data("\r\u{1B}[K\(frames[index % frames.count]) \(label) \(seconds) s".utf8)
                    )
                    index += 1
                    try? await Task.sleep(for: .milliseconds(100))
                }
            }
        }
    }

    /// Pauses the spinner (a progress bar or a question takes the line).
    func pause() {
        task.withLock {
            $0?.cancel()
            $0 = nil
        }
        if Terminal.isInteractive { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }

    func finish(_ mark: String) {
        pause()
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        Terminal.note("\(mark) \(label) (\(String(format: "%.1f", seconds)) s)")
    }
}
