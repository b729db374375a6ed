import Foundation

extension TestSupport {
    /// `run` on a thread of its own, so waiting for the program does not hold a thread of the cooperative pool.
    @discardableResult
    static func runDetached(
        _ executable: String,
        _ arguments: [String],
        environment: [String: String] = [:],
        input: String? = nil
    ) async throws -> (status: Int32, stdout: String, stderr: String) {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                continuation.resume(
                    with: Result { try run(executable, arguments, environment: environment, input: input) }
                )
            }
            thread.start()
        }
    }
}
