import Foundation

extension TestSupport {
    /// `run`, which already waits off the cooperative pool; kept as the name the certificate and TLS tests use.
    @discardableResult
    static func runDetached(
        _ executable: String,
        _ arguments: [String],
        environment: [String: String] = [:],
        input: String? = nil
    ) async throws -> (status: Int32, stdout: String, stderr: String) {
        try await run(executable, arguments, environment: environment, input: input)
    }
}
