import ApplianceMigration
import Foundation
import ProcedureEngine
import Synchronization

/// Turns run events into spinners and progress bars on standard error (P10).
final class RunConsole: Sendable {
    let quiet: Bool
    private let state = Mutex<(spinner: Spinner?, bars: [String: ProgressBar])>((nil, [:]))

    init(quiet: Bool) {
        self.quiet = quiet
    }

    func pause() {
        state.withLock { $0.spinner?.pause() }
    }

    func handle(_ event: ProcedureEvent) {
        guard !quiet else { return }
        switch event {
        case .stepStarted(_, let title, let resuming):
            let spinner = Spinner((resuming ? "(resuming) " : "") + title)
            state.withLock { $0.spinner = spinner }
        case .stepDone:
            let spinner = state.withLock { state -> Spinner? in
                defer { state.spinner = nil }
                return state.spinner
            }
            spinner?.finish("✔")
        case .note(let text):
            pause()
            Terminal.note("  \(text)")
        case .bytes(let label, let done, let total):
            let bar = state.withLock { state -> ProgressBar in
                state.spinner?.pause()
                if let bar = state.bars[label] { return bar }
                let bar = ProgressBar(label: "  " + label, total: total)
                state.bars[label] = bar
                return bar
            }
            bar.update(done)
        case .transferFinished(let label):
            let bar = state.withLock { $0.bars.removeValue(forKey: label) }
            bar?.finish()
        }
    }

    /// Prints where a run stands (or its report, with `--json`); throws the run's failure with what to do next.
    func finish(_ outcome: RunOutcome, json: Bool) throws {
        pause()
        if json {
            print(String(decoding: outcome.json, as: UTF8.self))
        } else {
            print("Run \(outcome.runId): \(outcome.state.rawValue)")
            for line in outcome.terminalLines { print(line) }
            print("Report: \(outcome.reportFiles.markdown.path) and \(outcome.reportFiles.json.path)")
        }
        if let failure = outcome.failure {
            throw CommandError(
                RunSession.isRefusal(failure) ? .refused : .failed,
                RunSession.advice(failure, runId: outcome.runId)
            )
        }
    }
}

/// Asking the operator on the terminal.
enum Confirmation {
    static func ask(_ question: String) -> Bool {
        guard isatty(STDIN_FILENO) == 1 else {
            Terminal.note("\(question)\nNo terminal to ask on; give --yes to go ahead.")
            return false
        }
        FileHandle.standardError.write(Data("\(question) [y/N] ".utf8))
        guard let answer = readLine()?.trimmingCharacters(in: .whitespaces).lowercased() else { return false }
        return answer == "y" || answer == "yes"
    }
}
