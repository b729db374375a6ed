import ApplianceMigration
import ArgumentParser
import Foundation

/// Why a command stopped at run time, with what to do about it. Flag problems stay `ValidationError` in
/// `validate()`; everything a command finds while running is a `CommandError` (or another module's error).
struct CommandError: Error, Sendable, CustomStringConvertible {
    struct Code: Hashable, Sendable {
        private enum Value: Hashable, Sendable {
            case failed
            case refused
        }

        private let value: Value

        private init(_ value: Value) {
            self.value = value
        }

        /// The command tried and failed (exit 1).
        static let failed = Code(.failed)
        /// A safety rule stopped the command before it changed anything (exit 3).
        static let refused = Code(.refused)
    }

    var code: Code
    var message: String

    init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// A failure (exit 1).
    init(_ message: String) {
        self.init(.failed, message)
    }

    var description: String { message }
}

/// The documented exit codes (README "Exit codes"), decided in one place for every command.
enum ExitStatus {
    static let done: Int32 = 0
    static let failed: Int32 = 1
    /// `status`: the appliance answers but reports itself unhealthy.
    static let unhealthy: Int32 = 2
    static let refused: Int32 = 3
    static let usage: Int32 = 64

    /// Whether an error is a refusal by a safety rule rather than a failure.
    static func isRefusal(_ error: any Error) -> Bool {
        if let error = error as? CommandError { return error.code == .refused }
        return RunSession.isRefusal(error)
    }

    /// Runs a parsed command and exits with the code its outcome maps to. Only parsing and `validate()` (before
    /// this) print the usage text; a run that fails prints `Error: …` and nothing else.
    static func run(_ command: any ParsableCommand) async -> Never {
        var command = command
        do {
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            exit(done)
        } catch let error as ExitCode {
            exit(error.rawValue)
        } catch let error as CleanExit {
            Appliancectl.exit(withError: error)
        } catch  where Appliancectl.exitCode(for: error) == .success {
            // `--help` reaches here as the help command's own error: ArgumentParser prints the help, exit 0.
            Appliancectl.exit(withError: error)
        } catch {
            FileHandle.standardError.write(Data("Error: \(error)\n".utf8))
            exit(isRefusal(error) ? refused : failed)
        }
    }
}
